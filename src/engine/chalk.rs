//! The chalk wrapper model: what an image's Entrypoint says about how chalk
//! wrapped it, and the two ways to put a container's `command` back under it.
//!
//! `chalk docker build --wrap` rewrites the image ENTRYPOINT as
//! `[/chalk, exec, F..., --, S...]`: `F` are chalk's own flags (among them
//! `--exec-command-name X`, naming the program chalk runs) and `S` are the
//! original ENTRYPOINT's arguments. Very old releases wrote no `--`.

/// Chalk flags that take a value as the next item. Only needed for the old
/// form without `--`, where flags and the wrapped arguments are not separated.
const VALUE_FLAGS: &[&str] = &[
    "--exec-command-name",
    "--log-level",
    "--config-file",
    "--report-template",
    "--symlink-behavior",
];

const EXEC_COMMAND_NAME: &str = "--exec-command-name";
const SEPARATOR: &str = "--";

/// How an image Entrypoint relates to the chalk wrapper.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wrapping {
    /// The Entrypoint does not start with the wrapper prefix.
    NotWrapped,
    /// The Entrypoint runs the wrapper.
    Wrapped(Wrapper),
}

/// A parsed chalk wrapper Entrypoint `[prefix..., F..., --, S...]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wrapper {
    /// Chalk's own flags `F`, without any `--exec-command-name` pair.
    pub flags: Vec<String>,
    /// The value of `--exec-command-name`, if the wrapper names a program.
    pub exec_command_name: Option<String>,
    /// Whether the Entrypoint has the `--` separator (absent in very old releases).
    pub has_separator: bool,
    /// What follows `--`: the original ENTRYPOINT's arguments `S`.
    pub wrapped_args: Vec<String>,
}

/// Parses an image Entrypoint against the wrapper `prefix` (e.g. `["/chalk", "exec"]`).
pub fn parse(entrypoint: &[String], prefix: &[String]) -> Wrapping {
    if prefix.is_empty() || !entrypoint.starts_with(prefix) {
        return Wrapping::NotWrapped;
    }
    let rest = &entrypoint[prefix.len()..];
    let (flag_items, wrapped_args, has_separator) = match separator(rest) {
        Some(i) => (&rest[..i], rest[i + 1..].to_vec(), true),
        None => {
            let end = end_of_flags(rest);
            (&rest[..end], rest[end..].to_vec(), false)
        }
    };
    let mut flags = Vec::with_capacity(flag_items.len());
    let mut exec_command_name = None;
    let mut items = flag_items.iter();
    while let Some(item) = items.next() {
        if item == EXEC_COMMAND_NAME {
            // A dangling flag with no value names nothing; drop it either way.
            exec_command_name = items.next().cloned();
        } else if let Some(value) = item.strip_prefix("--exec-command-name=") {
            exec_command_name = Some(value.to_string());
        } else {
            flags.push(item.clone());
        }
    }
    Wrapping::Wrapped(Wrapper {
        flags,
        exec_command_name,
        has_separator,
        wrapped_args,
    })
}

/// The index of the `--` that ends chalk's flags. The value of
/// `--exec-command-name` is skipped: a program may be named `--`.
fn separator(items: &[String]) -> Option<usize> {
    let mut i = 0;
    while i < items.len() {
        match items[i].as_str() {
            SEPARATOR => return Some(i),
            EXEC_COMMAND_NAME => i += 2,
            _ => i += 1,
        }
    }
    None
}

/// Where the flags end in an Entrypoint without `--`: at the first item that
/// is neither a flag nor the value of a flag that takes one.
fn end_of_flags(items: &[String]) -> usize {
    let mut i = 0;
    while i < items.len() {
        let item = &items[i];
        if !item.starts_with('-') {
            break;
        }
        i += if VALUE_FLAGS.contains(&item.as_str()) { 2 } else { 1 };
    }
    i.min(items.len())
}

impl Wrapper {
    /// Whether the wrapper adds no program of its own: no
    /// `--exec-command-name`, nothing after `--`, and the `--` is there.
    ///
    /// Only then does `E + args` run exactly `args` under chalk, so only then
    /// is moving `command` into `args` right. Chalk flags such as
    /// `--heartbeat` are kept by the image Entrypoint either way.
    pub fn is_bare(&self) -> bool {
        self.has_separator && self.exec_command_name.is_none() && self.wrapped_args.is_empty()
    }

    /// The `command` that runs `command` under this wrapper, keeping the
    /// image's chalk flags: `[prefix..., F'..., --exec-command-name, C0, --, C1...]`.
    pub fn prepend(&self, prefix: &[String], command: &[String]) -> Vec<String> {
        let (program, program_args) = command.split_first().expect("prepend needs a non-empty command");
        let mut out = Vec::with_capacity(prefix.len() + self.flags.len() + 3 + program_args.len());
        out.extend(prefix.iter().cloned());
        out.extend(self.flags.iter().cloned());
        out.push(EXEC_COMMAND_NAME.to_string());
        out.push(program.clone());
        out.push(SEPARATOR.to_string());
        out.extend(program_args.iter().cloned());
        out
    }
}

/// The prepend fix when nothing is known of the image's flags: the bare
/// wrapper with `--exec-command-name`.
pub fn prepend_bare(prefix: &[String], command: &[String]) -> Vec<String> {
    Wrapper {
        flags: Vec::new(),
        exec_command_name: None,
        has_separator: true,
        wrapped_args: Vec::new(),
    }
    .prepend(prefix, command)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn wrapped(e: &[&str]) -> Wrapper {
        match parse(&v(e), &v(&["/chalk", "exec"])) {
            Wrapping::Wrapped(w) => w,
            Wrapping::NotWrapped => panic!("{e:?} should parse as wrapped"),
        }
    }

    #[test]
    fn parses_the_four_wrap_shapes() {
        let bare = wrapped(&["/chalk", "exec", "--"]);
        assert!(bare.is_bare());

        let one = wrapped(&["/chalk", "exec", "--exec-command-name", "echo", "--"]);
        assert_eq!(one.exec_command_name.as_deref(), Some("echo"));
        assert!(!one.is_bare());

        let two = wrapped(&["/chalk", "exec", "--exec-command-name", "one", "--", "entrypoint"]);
        assert_eq!(two.wrapped_args, v(&["entrypoint"]));

        let shell = wrapped(&[
            "/chalk",
            "exec",
            "--exec-command-name",
            "/bin/sh",
            "--",
            "-c",
            "echo hello",
        ]);
        assert_eq!(shell.exec_command_name.as_deref(), Some("/bin/sh"));
        assert_eq!(shell.wrapped_args, v(&["-c", "echo hello"]));
    }

    #[test]
    fn keeps_other_flags_and_drops_exec_command_name() {
        let w = wrapped(&[
            "/chalk",
            "exec",
            "--heartbeat",
            "--exec-command-name=py",
            "--log-level",
            "error",
            "--",
        ]);
        assert_eq!(w.flags, v(&["--heartbeat", "--log-level", "error"]));
        assert_eq!(
            w.prepend(&v(&["/chalk", "exec"]), &v(&["sh", "-c", "x"])),
            v(&[
                "/chalk",
                "exec",
                "--heartbeat",
                "--log-level",
                "error",
                "--exec-command-name",
                "sh",
                "--",
                "-c",
                "x"
            ])
        );
    }

    #[test]
    fn old_forms_without_separator() {
        let w = wrapped(&["/chalk", "exec"]);
        assert!(!w.has_separator && !w.is_bare());
        let w = wrapped(&[
            "/chalk",
            "exec",
            "--log-level",
            "error",
            "--exec-command-name",
            "echo",
            "hi",
        ]);
        assert_eq!(w.flags, v(&["--log-level", "error"]));
        assert_eq!(w.exec_command_name.as_deref(), Some("echo"));
        assert_eq!(w.wrapped_args, v(&["hi"]));
    }

    #[test]
    fn a_program_named_like_the_separator_round_trips() {
        let prefix = v(&["/chalk", "exec"]);
        let fixed = wrapped(&["/chalk", "exec", "--"]).prepend(&prefix, &v(&["--", "x"]));
        assert_eq!(fixed, v(&["/chalk", "exec", "--exec-command-name", "--", "--", "x"]));
        let again = wrapped(&fixed.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(again.exec_command_name.as_deref(), Some("--"));
        assert_eq!(again.wrapped_args, v(&["x"]));
    }

    #[test]
    fn not_wrapped() {
        let p = v(&["/chalk", "exec"]);
        assert_eq!(parse(&v(&["python"]), &p), Wrapping::NotWrapped);
        assert_eq!(parse(&[], &p), Wrapping::NotWrapped);
        assert_eq!(parse(&v(&["/chalk"]), &p), Wrapping::NotWrapped);
    }
}
