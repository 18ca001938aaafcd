//! Runs the built `entrypoint-guard` binary for the `review` CLI tests.

#![allow(dead_code)] // each test crate uses its own part of these helpers

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What a run of the binary produced.
#[derive(Debug)]
pub struct Run {
    /// The exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// The crate root: tests run the binary from there so reports name
/// `examples/...` the way a user typing the README's command sees them.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `entrypoint-guard args...` in the crate root with `stdin` on standard input.
pub fn run(args: &[&str], stdin: Option<&str>) -> Run {
    run_in(&root(), args, stdin)
}

/// Runs `entrypoint-guard args...` in `dir`.
pub fn run_in(dir: &Path, args: &[&str], stdin: Option<&str>) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_entrypoint-guard"))
        .args(args)
        .current_dir(dir)
        .env_remove("ENTRYPOINT_GUARD_CONFIG")
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the entrypoint-guard binary runs");
    let mut input = child.stdin.take().expect("stdin is piped");
    let text = stdin.unwrap_or_default().to_string();
    let writer = std::thread::spawn(move || {
        // The binary may exit before reading (usage errors): ignore EPIPE.
        let _ = input.write_all(text.as_bytes());
    });
    let out = child.wait_with_output().expect("the entrypoint-guard binary finishes");
    writer.join().expect("stdin writer");
    Run {
        code: out.status.code().expect("exited, not killed by a signal"),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    }
}

/// `review -f examples/ --images examples/images.yaml` plus `extra` arguments.
pub fn review_examples(extra: &[&str]) -> Run {
    let mut args = vec!["review", "-f", "examples/", "--images", "examples/images.yaml"];
    args.extend_from_slice(extra);
    run(&args, None)
}

/// The path of an external tool the test needs; fails loudly when missing.
pub fn require_tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("`{name}` is not installed, and this test needs it: run scripts/testenv/install.sh (as root)")
        })
}

/// Runs an external tool with `stdin`; returns (exit code, stdout, stderr).
pub fn tool(program: &Path, args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(program)
        .args(args)
        .current_dir(root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{} runs: {e}", program.display()));
    let mut input = child.stdin.take().expect("stdin is piped");
    let text = stdin.to_string();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(text.as_bytes());
    });
    let out = child.wait_with_output().expect("the tool finishes");
    writer.join().expect("stdin writer");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
