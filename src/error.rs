//! The errors of the non-blocking and timed submits: each gives the job back untouched.

use std::error::Error;
use std::fmt;

/// The error of [`WorkerPool::try_submit`](crate::WorkerPool::try_submit) and
/// [`WorkerPool::try_spawn`](crate::WorkerPool::try_spawn): the job was not accepted.
///
/// The job comes back untouched, so it can be retried, run elsewhere or dropped. `Debug` prints
/// `Full(..)`, so `F` needs no `Debug` bound (closures have none).
///
/// # Examples
///
/// ```
/// use boundpool::{TrySubmitError, WorkerPool};
/// use std::sync::mpsc;
///
/// let pool = WorkerPool::new(1, 0); // capacity 0: a rendezvous queue
/// let (release, gate) = mpsc::channel::<()>();
/// let (started_tx, started) = mpsc::channel();
/// pool.submit(move || {
///     started_tx.send(()).unwrap();
///     gate.recv().ok(); // hold the only worker
/// });
/// started.recv().unwrap();
///
/// // The worker is busy and the queue holds nothing: the job comes back.
/// let (tx, rx) = mpsc::channel();
/// let err: TrySubmitError<_> = pool.try_submit(move || tx.send(42).unwrap()).unwrap_err();
/// assert!(err.is_full());
/// let job = err.into_inner();
/// job(); // still the original closure
/// assert_eq!(rx.recv().unwrap(), 42);
/// release.send(()).unwrap();
/// ```
#[non_exhaustive]
pub enum TrySubmitError<F> {
    /// The queue was full (and, at capacity 0, no worker was waiting for a job).
    Full(F),
}

impl<F> TrySubmitError<F> {
    /// Gives the job back.
    pub fn into_inner(self) -> F {
        match self {
            TrySubmitError::Full(job) => job,
        }
    }

    /// Whether the job came back because the queue was full (always, today).
    pub fn is_full(&self) -> bool {
        matches!(self, TrySubmitError::Full(_))
    }
}

impl<F> fmt::Debug for TrySubmitError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySubmitError::Full(_) => f.write_str("Full(..)"),
        }
    }
}

impl<F> fmt::Display for TrySubmitError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySubmitError::Full(_) => f.write_str("submitting on a full queue"),
        }
    }
}

impl<F> Error for TrySubmitError<F> {}

/// The error of [`WorkerPool::submit_timeout`](crate::WorkerPool::submit_timeout): the queue
/// stayed full until the deadline.
///
/// The job comes back untouched. `Debug` prints `Timeout(..)`, so `F` needs no `Debug` bound.
///
/// # Examples
///
/// ```
/// use boundpool::WorkerPool;
/// use std::sync::mpsc;
/// use std::time::Duration;
///
/// let pool = WorkerPool::new(1, 0);
/// let (release, gate) = mpsc::channel::<()>();
/// let (started_tx, started) = mpsc::channel();
/// pool.submit(move || {
///     started_tx.send(()).unwrap();
///     gate.recv().ok();
/// });
/// started.recv().unwrap();
///
/// let err = pool.submit_timeout(|| (), Duration::from_millis(10)).unwrap_err();
/// assert!(err.is_timeout());
/// let _job = err.into_inner();
/// release.send(()).unwrap();
/// ```
#[non_exhaustive]
pub enum SubmitTimeoutError<F> {
    /// The queue was still full when the timeout elapsed.
    Timeout(F),
}

impl<F> SubmitTimeoutError<F> {
    /// Gives the job back.
    pub fn into_inner(self) -> F {
        match self {
            SubmitTimeoutError::Timeout(job) => job,
        }
    }

    /// Whether the job came back because the timeout elapsed (always, today).
    pub fn is_timeout(&self) -> bool {
        matches!(self, SubmitTimeoutError::Timeout(_))
    }
}

impl<F> fmt::Debug for SubmitTimeoutError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubmitTimeoutError::Timeout(_) => f.write_str("Timeout(..)"),
        }
    }
}

impl<F> fmt::Display for SubmitTimeoutError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubmitTimeoutError::Timeout(_) => f.write_str("timed out submitting on a full queue"),
        }
    }
}

impl<F> Error for SubmitTimeoutError<F> {}
