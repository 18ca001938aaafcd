//! The log writer: lines go to stderr through a bounded, lossy queue drained
//! by one background thread, so a request never waits on logging. When
//! stderr is slow (a full pipe, a stalled log collector) and the queue is
//! full, new lines are dropped and counted ([`dropped_lines`], exported as
//! `entrypoint_guard_log_lines_dropped_total`) instead of blocking the Tokio
//! workers that emit them.

use std::io::Write;
use std::sync::OnceLock;

use tracing_appender::non_blocking::{ErrorCounter, NonBlocking, NonBlockingBuilder, WorkerGuard};

/// Lines the queue holds. At a few hundred bytes a line this is a few MiB at
/// most (counted in the chart's memory arithmetic), and minutes of normal
/// logging: enough to ride out a slow collector without losing lines.
pub(crate) const QUEUE_LINES: usize = 8192;

static DROPPED: OnceLock<ErrorCounter> = OnceLock::new();

/// A lossy writer to `out` queueing at most `lines` lines; the first one
/// made in the process is the one [`dropped_lines`] reports. Keep the guard
/// until exit: dropping it flushes the queue.
pub(crate) fn lossy_writer<W: Write + Send + 'static>(out: W, lines: usize) -> (NonBlocking, WorkerGuard) {
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(lines)
        .thread_name("log-writer")
        .finish(out);
    let _ = DROPPED.set(writer.error_counter());
    (writer, guard)
}

/// Bytes of lines gathered into one write to stderr.
const BATCH_BYTES: usize = 64 * 1024;

/// stderr, written in batches: the writer thread writes the lines it finds
/// queued together and flushes when the queue is empty (tracing-appender's
/// worker does), so a busy webhook makes one `write` per batch of lines
/// instead of one per line, and a quiet one still shows each line at once.
pub(crate) fn batched_stderr() -> std::io::BufWriter<std::io::Stderr> {
    std::io::BufWriter::with_capacity(BATCH_BYTES, std::io::stderr())
}

/// Log lines dropped so far because the queue was full (0 before logging is set up).
pub(crate) fn dropped_lines() -> u64 {
    DROPPED.get().map_or(0, |c| c.dropped_lines() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// A writer that blocks on its first write until released, as a stalled
    /// stderr pipe does.
    struct Stalled {
        release: mpsc::Receiver<()>,
        started: mpsc::Sender<()>,
        stalled: bool,
    }

    impl Write for Stalled {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if !self.stalled {
                self.stalled = true;
                let _ = self.started.send(());
                let _ = self.release.recv();
            }
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A writer recording each write it is asked for, blocking on the
    /// first until released.
    struct Recording {
        writes: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
        stall: Stalled,
    }

    impl Write for Recording {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.writes
                .lock()
                .unwrap()
                .push(String::from_utf8_lossy(buf).into_owned());
            self.stall.write(buf)
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_queued_together_leave_in_one_write() {
        let (release_tx, release) = mpsc::channel();
        let (started, started_rx) = mpsc::channel();
        let writes = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let recording = Recording {
            writes: writes.clone(),
            stall: Stalled {
                release,
                started,
                stalled: false,
            },
        };
        // Built as `lossy_writer` builds it, without claiming the process's
        // dropped-lines counter, which the test below reads.
        let (mut writer, guard) = NonBlockingBuilder::default()
            .lossy(true)
            .buffered_lines_limit(64)
            .finish(std::io::BufWriter::with_capacity(BATCH_BYTES, recording));
        writer.write_all(b"first\n").unwrap();
        // The queue was empty after it: flushed on its own, and stuck there.
        started_rx.recv().unwrap();
        for i in 0..5 {
            writer.write_all(format!("line {i}\n").as_bytes()).unwrap();
        }
        release_tx.send(()).unwrap();
        drop(guard);
        assert_eq!(
            *writes.lock().unwrap(),
            ["first\n", "line 0\nline 1\nline 2\nline 3\nline 4\n"]
        );
    }

    #[test]
    fn a_full_queue_drops_and_counts_lines_instead_of_blocking() {
        let (release_tx, release) = mpsc::channel();
        let (started, started_rx) = mpsc::channel();
        let (mut writer, guard) = lossy_writer(
            Stalled {
                release,
                started,
                stalled: false,
            },
            4,
        );
        writer.write_all(b"first\n").unwrap();
        // The worker holds the first line and is stuck writing it.
        started_rx.recv().unwrap();
        // Every one of these returns at once although nothing is written:
        // 4 fit in the queue, the other 16 are dropped.
        for i in 0..20 {
            writer.write_all(format!("line {i}\n").as_bytes()).unwrap();
        }
        assert_eq!(dropped_lines(), 16);
        release_tx.send(()).unwrap();
        drop(guard);
    }
}
