//! The chalk wrapper parser and the prepend fix, on arbitrary Entrypoints and commands.
#![no_main]

use entrypoint_guard::engine::chalk::{self, Wrapping};
use libfuzzer_sys::fuzz_target;

/// Splits fuzz input into string items on NUL bytes: entrypoint | command.
fn items(data: &[u8]) -> (Vec<String>, Vec<String>) {
    let text = String::from_utf8_lossy(data);
    let (e, c) = text.split_once('\u{1}').unwrap_or((&text, "sh"));
    let split = |s: &str| s.split('\0').map(str::to_string).collect::<Vec<_>>();
    (split(e), split(c))
}

fuzz_target!(|data: &[u8]| {
    let prefix = vec!["/chalk".to_string(), "exec".to_string()];
    let (entrypoint, command) = items(data);
    let Wrapping::Wrapped(wrapper) = chalk::parse(&entrypoint, &prefix) else {
        assert!(!entrypoint.starts_with(&prefix));
        return;
    };
    assert!(entrypoint.starts_with(&prefix));
    let fixed = wrapper.prepend(&prefix, &command);
    // The fix runs command[0] under chalk with the image's flags and keeps command[1..] in order.
    assert!(fixed.starts_with(&prefix));
    assert!(fixed.ends_with(&command[1..]));
    let at = fixed.len() - command.len() + 1;
    assert_eq!(&fixed[at - 3..at], ["--exec-command-name", command[0].as_str(), "--"]);
    // The fixed command is itself a wrapper that names command[0].
    match chalk::parse(&fixed, &prefix) {
        Wrapping::Wrapped(again) => {
            assert_eq!(again.exec_command_name.as_deref(), Some(command[0].as_str()));
            assert!(!again.is_bare());
        }
        Wrapping::NotWrapped => panic!("a prepended command must parse as wrapped"),
    }
});
