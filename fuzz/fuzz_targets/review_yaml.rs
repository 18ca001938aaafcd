//! The offline review of an arbitrary YAML stream: splitting, parsing,
//! locating and fixing never panic, and every fixed document re-reviews clean.
//! Writing the fixes back (`review --write`) never panics either, and a
//! second write over the written text changes nothing.
#![no_main]

use entrypoint_guard::engine::Policy;
use entrypoint_guard::image::{Facts, ImageFacts, OfflineResolver};
use entrypoint_guard::review::reviewer::Reviewer;
use entrypoint_guard::review::source::Source;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut facts = Facts::new();
    let bare = vec!["/chalk".to_string(), "exec".to_string(), "--".to_string()];
    facts.insert("registry.example/app:1.0", ImageFacts::known(bare, None));
    let reviewer = Reviewer::new(Policy::default(), OfflineResolver::new(facts));
    let source = Source { name: "fuzz.yaml".into(), text: text.to_string(), json: false };
    let mut problems = Vec::new();
    let file = reviewer.review(&source, &mut problems);
    let edit = entrypoint_guard::review::write::plan(&file, true);
    if edit.changes() {
        let again = Source { text: edit.after.clone(), ..source };
        let rewritten = reviewer.review(&again, &mut Vec::new());
        let second = entrypoint_guard::review::write::plan(&rewritten, true);
        assert_eq!(second.after, edit.after, "a second write changed the file again");
    }
    let locator = entrypoint_guard::review::locate::Locator::new(text);
    let _ = locator.find("/spec/containers/0");
});
