//! The Tokio runtime a front end runs its async work on (`serve`, `audit`,
//! `review --resolve`): built in one place, the same way for each.

/// A multi-threaded runtime with I/O and timers, on `worker_threads`
/// threads (`None`: one per core).
pub(crate) fn build(worker_threads: Option<usize>) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = worker_threads {
        builder.worker_threads(threads);
    }
    builder.enable_all().build()
}
