//! A progress line on stderr, only for a person watching a terminal.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Receives progress events from [`super::audit::run_with_progress`].
pub trait Progress: Send + Sync {
    /// One kind in one scope has been listed.
    fn listed(&self, done: usize, total: usize);
    /// One object has been inspected.
    fn inspected(&self, done: usize, total: usize);
    /// The audit is over: clean up whatever was drawn.
    fn finish(&self);
}

/// Reports nothing (for `serve` and for pipes).
#[derive(Debug, Default)]
pub struct Silent;

impl Progress for Silent {
    fn listed(&self, _: usize, _: usize) {}
    fn inspected(&self, _: usize, _: usize) {}
    fn finish(&self) {}
}

/// Redraws one line on stderr once the audit has run for a moment, so quick
/// audits print nothing and logs or redirected stderr never see it.
#[derive(Debug)]
pub(crate) struct TerminalLine {
    started: Instant,
    delay: Duration,
    drawn: Mutex<bool>,
}

impl TerminalLine {
    /// A progress line if stderr is a terminal, else [`Silent`].
    pub(crate) fn for_stderr() -> Box<dyn Progress> {
        if std::io::stderr().is_terminal() {
            Box::new(TerminalLine {
                started: Instant::now(),
                delay: Duration::from_millis(500),
                drawn: Mutex::new(false),
            })
        } else {
            Box::new(Silent)
        }
    }

    fn draw(&self, text: String) {
        if self.started.elapsed() < self.delay {
            return;
        }
        let mut drawn = self.drawn.lock().unwrap_or_else(|e| e.into_inner());
        let mut err = std::io::stderr().lock();
        // `\x1b[K` clears what a longer previous line left behind.
        let _ = write!(err, "\r{text}\x1b[K");
        let _ = err.flush();
        *drawn = true;
    }
}

impl Progress for TerminalLine {
    fn listed(&self, done: usize, total: usize) {
        self.draw(format!("audit: listed {done}/{total} collections"));
    }

    fn inspected(&self, done: usize, total: usize) {
        self.draw(format!("audit: inspected {done}/{total} objects"));
    }

    fn finish(&self) {
        let drawn = self.drawn.lock().unwrap_or_else(|e| e.into_inner());
        if *drawn {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K");
            let _ = err.flush();
        }
    }
}
