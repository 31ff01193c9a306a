//! [`Stats`]: a reading of a pool's counters. A leaf module: `shared` fills it in, `pool` hands
//! it out.

/// A reading of a pool's counters, from [`WorkerPool::stats`](crate::WorkerPool::stats) or a shutdown.
///
/// Each field is exact when read; the fields are not read at one atomic instant, so under load
/// `queued + active + completed` may not add up to what was submitted at any one moment. A job
/// counts whichever thread ran it: a worker, a caller (caller-runs), or a thread that waited on it.
///
/// # Examples
///
/// ```
/// use boundpool::WorkerPool;
///
/// let pool = WorkerPool::new(2, 8);
/// for _ in 0..10 {
///     pool.submit(|| ());
/// }
/// pool.wait_idle();
/// let stats = pool.stats();
/// assert_eq!((stats.workers, stats.capacity), (2, 8));
/// assert_eq!((stats.queued, stats.active, stats.completed), (0, 0, 10));
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// The number of worker threads.
    pub workers: usize,
    /// The queue's capacity.
    pub capacity: usize,
    /// Jobs accepted and not yet started: those in the queue (at most `capacity`) plus the
    /// [`overflow`](Stats::overflow).
    ///
    /// A job that a waiter took out of play to run itself (a `join`, the end of a scope, a
    /// `map` consumer) counts as started, but its place in the queue stays taken until a worker
    /// reaches it and skips it. So `queued < capacity` does not promise that the next
    /// [`try_submit`](crate::WorkerPool::try_submit) finds room.
    pub queued: usize,
    /// Jobs held beyond the queue's capacity, which the workers take before the queued ones.
    /// Always 0 unless a pool's own jobs wait on it or submit to it:
    ///
    /// - a job nested [`MAX_NESTING`](crate::MAX_NESTING) deep on its thread that submits to its
    ///   own full pool (a chain of jobs each submitting the next), about `workers + capacity`
    ///   such jobs at most (see [`WorkerPool::submit`](crate::WorkerPool::submit));
    /// - jobs that a [`wait_idle`](crate::WorkerPool::wait_idle) inside a job took out of the queue but
    ///   may not run (they were accepted after it began): only while a job it waits for has not
    ///   started, so usually at most the `capacity - 1` that can be queued ahead of it (more
    ///   only while that job is between being counted and being sent or started).
    pub overflow: usize,
    /// Jobs started and not yet finished; a job suspended while its thread helps (runs a job it
    /// waits on) still counts.
    pub active: usize,
    /// Jobs finished, panicked or not.
    pub completed: u64,
    /// Jobs that panicked.
    pub panicked: u64,
}
