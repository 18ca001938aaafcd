//! A child process of a test in its own process group, logging to a file,
//! that never outlives the test: it is killed (with its group) when dropped,
//! and the kernel kills it if the test process dies first.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A started child process.
pub struct Process {
    name: String,
    child: Option<Child>,
    /// Where its stdout and stderr go.
    pub log: PathBuf,
}

impl Process {
    /// Starts `program args...` with stdout and stderr appended to `log`.
    ///
    /// The child leads a new process group (so stopping it reaches anything it
    /// starts) and gets SIGKILL when the thread that spawned it exits: a test
    /// killed by a timeout leaves no etcd or API server behind.
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[String],
        log: &Path,
        env: &[(&str, &str)],
    ) -> Result<Process, String> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| format!("{}: {e}", log.display()))?;
        let err_file = file.try_clone().map_err(|e| format!("{}: {e}", log.display()))?;
        let mut command = Command::new(program);
        command
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err_file)
            .process_group(0);
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start {name} ({}): {e}", program.display()))?;
        Ok(Process {
            name: name.to_string(),
            child: Some(child),
            log: log.to_path_buf(),
        })
    }

    /// `Some(description)` when the process has exited (with the end of its log).
    pub fn exited(&mut self) -> Option<String> {
        let child = self.child.as_mut()?;
        let status = child.try_wait().ok().flatten()?;
        Some(format!(
            "{} exited ({status}); end of {}:\n{}",
            self.name,
            self.log.display(),
            tail(&self.log, 30)
        ))
    }

    /// The process id.
    pub fn id(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Sends `signal` to the process group, waits up to `grace` for the
    /// process to exit, then kills the group. Returns whether it exited on
    /// `signal` alone.
    pub fn stop(&mut self, signal: i32, grace: Duration) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        let group = -(child.id() as i32);
        // SAFETY: kill(2) with a negative pid signals our child's group only.
        unsafe { libc::kill(group, signal) };
        let until = Instant::now() + grace;
        while Instant::now() < until {
            if let Ok(Some(_)) = child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: as above.
        unsafe { libc::kill(group, libc::SIGKILL) };
        let _ = child.wait();
        false
    }

    /// Kills the process group at once and reaps the process.
    pub fn kill(&mut self) {
        self.stop(libc::SIGKILL, Duration::from_secs(10));
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The last `lines` lines of `path`, for error messages.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
