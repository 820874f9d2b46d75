//! The async runtime a binary runs on, sized by its `worker_threads` key.
//!
//! One thread is the default: a Hookline process is scaled by running more
//! of them, and on a single thread a webhook's hand-offs (HTTP connection →
//! NATS connection task → back; pull loop → worker task → file writer task)
//! are plain task switches instead of cross-thread wake-ups (futex calls
//! and work stealing): the processor spends about 40 % less CPU per webhook
//! and ingest about 30 % less per request (see docs/performance.md).

use std::io;

/// Builds the runtime: `worker_threads` 1 is a current-thread runtime, 0 a
/// multi-thread runtime with one worker per core, n a multi-thread runtime
/// with n workers.
///
/// # Errors
/// The OS refused the runtime's threads or its I/O driver.
pub fn build(worker_threads: usize) -> io::Result<tokio::runtime::Runtime> {
    match worker_threads {
        1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        0 => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build(),
    }
}

/// The largest `worker_threads` accepted (a typo guard, not a tuning limit).
pub const MAX_WORKER_THREADS: usize = 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shape_runs_a_task_to_completion() {
        for threads in [0, 1, 3] {
            let runtime = build(threads).expect("runtime");
            let answer = runtime.block_on(async { tokio::spawn(async { 42 }).await });
            assert_eq!(answer.ok(), Some(42), "worker_threads = {threads}");
            let workers = runtime.metrics().num_workers();
            match threads {
                0 => assert!(workers >= 1),
                n => assert_eq!(workers, n),
            }
        }
    }
}
