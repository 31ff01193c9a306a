//! [`WorkerPool`]: the submit family, observation ([`Stats`], `wait_idle`), and the shutdown family
//! (`shutdown`, `shutdown_timeout`, `shutdown_now`, `Drop`).

use std::fmt;
use std::time::Duration;

use crate::context;
use crate::error::{SubmitTimeoutError, TrySubmitError};
use crate::job::{Envelope, Job, JobHandle, Slot, Work, BOX_ABOVE};
use crate::queue::{Receiver, RecvTimeoutError, Sender};
use crate::shared::Shared;
use crate::stats::Stats;
use crate::sync::thread::JoinHandle;
use crate::sync::{Arc, Instant};
use crate::Builder;

/// A fixed set of worker threads fed through one bounded, lock-free queue.
///
/// Jobs go in with [`submit`](WorkerPool::submit) (fire-and-forget) or
/// [`spawn`](WorkerPool::spawn) (with a [`JobHandle`] to the result); a full queue makes both
/// block, which is the pool's backpressure. [`try_submit`](WorkerPool::try_submit) and
/// [`submit_timeout`](WorkerPool::submit_timeout) give the job back instead of blocking. A
/// panicking job is caught, counted and reported; its worker lives on. Shutting down
/// ([`shutdown`](WorkerPool::shutdown), or dropping the pool) runs every accepted job and joins
/// every thread.
///
/// `WorkerPool` is `Send + Sync`: share it by reference (`std::thread::scope`) or in an `Arc`.
///
/// # Examples
///
/// ```
/// use boundpool::WorkerPool;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
///
/// let pool = WorkerPool::new(4, 16);
/// let sum = Arc::new(AtomicU64::new(0));
/// for i in 1..=100 {
///     let sum = Arc::clone(&sum);
///     pool.submit(move || {
///         sum.fetch_add(i, Ordering::Relaxed);
///     });
/// }
/// let stats = pool.shutdown(); // runs every accepted job, joins the workers
/// assert_eq!(sum.load(Ordering::Relaxed), 5050);
/// assert_eq!(stats.completed, 100);
/// ```
///
/// Closures sent to the pool must be `Send`:
///
/// ```compile_fail
/// let pool = boundpool::WorkerPool::new(1, 1);
/// let not_send = std::rc::Rc::new(5);
/// pool.submit(move || drop(not_send));
/// ```
pub struct WorkerPool {
    shared: Arc<Shared>,
    /// The queue's only sender; `None` once the pool is closing.
    tx: Option<Sender<Envelope>>,
    threads: Vec<JoinHandle<()>>,
    /// Disconnects when every worker has exited (see `worker::run`).
    alive: Receiver<()>,
}

/// A deadline `timeout` from now, saturating far in the future.
pub(crate) fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .unwrap_or_else(|| now + Duration::from_secs(60 * 60 * 24 * 365 * 30))
}

/// Recovers the caller's closure from work the queue refused.
fn unbox<F: 'static>(work: Work) -> F {
    match work {
        Work::Plain(job) => match job.into_any().downcast::<F>() {
            Ok(job) => *job,
            Err(_) => unreachable!("boundpool: refused work is the caller's closure type"),
        },
        Work::Shared(_) => unreachable!("boundpool: submit sends plain work"),
    }
}

impl WorkerPool {
    /// A pool of `workers` threads and a queue of `capacity` slots.
    ///
    /// Shorthand for `WorkerPool::builder().workers(workers).capacity(capacity).build()`.
    ///
    /// # Panics
    ///
    /// If `workers` is 0, or if the operating system refuses to create a thread. Use
    /// [`builder`](WorkerPool::builder) to get these as a [`BuildError`](crate::BuildError).
    /// A `capacity` too large to allocate fails as any allocation does (see
    /// [`Builder::capacity`](crate::Builder::capacity)).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = boundpool::WorkerPool::new(4, 100);
    /// assert_eq!((pool.workers(), pool.capacity()), (4, 100));
    /// ```
    pub fn new(workers: usize, capacity: usize) -> WorkerPool {
        match Builder::new().workers(workers).capacity(capacity).build() {
            Ok(pool) => pool,
            Err(e) => {
                let cause =
                    std::error::Error::source(&e).map_or(String::new(), |c| format!(": {c}"));
                panic!("boundpool::WorkerPool::new({workers}, {capacity}): {e}{cause}")
            }
        }
    }

    /// A [`Builder`] to configure a pool.
    pub fn builder() -> Builder {
        Builder::new()
    }

    pub(crate) fn from_parts(
        shared: Arc<Shared>,
        tx: Sender<Envelope>,
        threads: Vec<JoinHandle<()>>,
        alive: Receiver<()>,
    ) -> WorkerPool {
        WorkerPool {
            shared,
            tx: Some(tx),
            threads,
            alive,
        }
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    #[inline]
    pub(crate) fn sender(&self) -> &Sender<Envelope> {
        match &self.tx {
            Some(tx) => tx,
            None => unreachable!("boundpool: the queue closes only when the pool is consumed"),
        }
    }

    /// Sends work, blocking while the queue is full (caller-runs on the pool's own threads).
    #[inline]
    pub(crate) fn send_blocking(&self, work: Work) {
        if self.shared.send(self.sender(), work, None).is_err() {
            unreachable!("boundpool: without a deadline a send returns once the job is in or ran");
        }
    }

    /// Runs `job` on a worker, fire-and-forget.
    ///
    /// **Blocks while the queue is full**, until a worker makes room (backpressure). A blocked
    /// producer parks and is woken once the queue has drained to a low-water mark (a quarter of
    /// the capacity), so it wakes once per many jobs. It never sleeps on beside a free slot:
    /// once the queue has not moved for 1 ms while a slot is free (the workers may be waiting
    /// for what this thread does next), it takes the slot, within about 2 ms. What is promised
    /// is the bound (never more than `capacity` jobs queued) and that liveness, not the exact
    /// moment of resumption, nor fairness among producers.
    ///
    /// If the job panics, the panic is caught, counted in [`Stats::panicked`] and handed to the
    /// [`panic_handler`](Builder::panic_handler); the worker lives on.
    ///
    /// **Re-entrancy:** called from inside one of this pool's jobs while the queue is full, it
    /// does not block, since that thread may be the one the queue is waiting for:
    ///
    /// - the job runs inline on the calling thread (caller-runs), nested in the calling job, as
    ///   long as fewer than [`MAX_NESTING`](crate::MAX_NESTING) jobs are nested there; so a loop
    ///   of such submits keeps memory flat (each job finishes before the next is made);
    /// - deeper (a chain of jobs that each submit the next), it is accepted beyond the capacity,
    ///   into the [overflow](Stats::overflow) that the workers run before the queue, and `submit`
    ///   returns at once; a chain of any length so nests at most `MAX_NESTING` jobs on a stack;
    /// - deeper still with `workers + capacity` jobs already overflowed, it runs on a helper
    ///   thread (named like the caller, with the pool's stack size and hooks) while the caller
    ///   waits, so the overflow stays bounded.
    ///
    /// Caller-runs runs the job under whatever locks the calling job holds: a job that holds a
    /// `Mutex`, submits into its own full pool, and gets back a job that takes the same lock,
    /// deadlocks (std's `Mutex` is not re-entrant). Two pools whose jobs make blocking submits
    /// into each other can also deadlock when both queues are full, like two locks taken in
    /// opposite orders. Both cycles are the program's; break them with
    /// [`try_submit`](WorkerPool::try_submit) or [`submit_timeout`](WorkerPool::submit_timeout),
    /// which never run a job inline.
    ///
    /// # Examples
    ///
    /// ```
    /// use boundpool::WorkerPool;
    /// use std::sync::mpsc;
    ///
    /// let pool = WorkerPool::new(2, 4);
    /// let (tx, rx) = mpsc::channel();
    /// for i in 0..10 {
    ///     let tx = tx.clone();
    ///     pool.submit(move || tx.send(i * 2).unwrap());
    /// }
    /// drop(tx);
    /// let mut doubled: Vec<i32> = rx.iter().collect();
    /// doubled.sort();
    /// assert_eq!(doubled, (0..10).map(|i| i * 2).collect::<Vec<_>>());
    /// ```
    #[inline]
    pub fn submit<F>(&self, job: F)
    where
        F: FnOnce() + Send + 'static,
    {
        self.send_blocking(Work::Plain(Box::new(job)));
    }

    /// Runs `job` on a worker if the queue has room now; never blocks.
    ///
    /// # Errors
    ///
    /// [`TrySubmitError::Full`] with the job, untouched, if the queue is full (at capacity 0: if
    /// no worker is waiting for a job). This holds on the pool's own threads too: there is no
    /// caller-runs here.
    ///
    /// # Examples
    ///
    /// ```
    /// use boundpool::WorkerPool;
    ///
    /// let pool = WorkerPool::new(1, 16);
    /// match pool.try_submit(|| println!("hello")) {
    ///     Ok(()) => {}
    ///     Err(full) => full.into_inner()(), // no room: run it here instead
    /// }
    /// ```
    pub fn try_submit<F>(&self, job: F) -> Result<(), TrySubmitError<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        self.shared
            .try_send(self.sender(), Work::Plain(Box::new(job)))
            .map_err(|work| TrySubmitError::Full(unbox(work)))
    }

    /// Runs `job` on a worker, waiting at most `timeout` for room in the queue.
    ///
    /// A full queue is waited on as in [`submit`](WorkerPool::submit): a short spin, then parked
    /// until the workers have drained the queue to a quarter of its capacity, so that a blocked
    /// producer wakes once per many jobs. Here the wait also ends at the deadline, where the job
    /// gets one last try.
    ///
    /// # Errors
    ///
    /// [`SubmitTimeoutError::Timeout`] with the job, untouched, if the queue was full at that
    /// last try. A slot may have been free for a moment in between: the wait resumes at the
    /// low-water mark, not at the first free slot. There is no caller-runs here, on any
    /// thread.
    ///
    /// # Examples
    ///
    /// ```
    /// use boundpool::WorkerPool;
    /// use std::time::Duration;
    ///
    /// let pool = WorkerPool::new(2, 4);
    /// pool.submit_timeout(|| (), Duration::from_secs(1)).expect("an idle pool has room");
    /// ```
    pub fn submit_timeout<F>(&self, job: F, timeout: Duration) -> Result<(), SubmitTimeoutError<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        let deadline = deadline_after(timeout);
        self.shared
            .send(self.sender(), Work::Plain(Box::new(job)), Some(deadline))
            .map_err(|work| SubmitTimeoutError::Timeout(unbox(work)))
    }

    /// Runs `job` on a worker and returns a [`JobHandle`] to its result.
    ///
    /// Blocks while the queue is full, exactly as [`submit`](WorkerPool::submit) (caller-runs
    /// included). A panic in the job goes to the handle, not to the panic handler.
    ///
    /// # Examples
    ///
    /// ```
    /// use boundpool::WorkerPool;
    ///
    /// let pool = WorkerPool::new(4, 16);
    /// let handles: Vec<_> = ["a", "bb", "ccc"]
    ///     .into_iter()
    ///     .map(|s| pool.spawn(move || s.len()))
    ///     .collect();
    /// let lens: Vec<usize> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    /// assert_eq!(lens, [1, 2, 3]);
    /// ```
    pub fn spawn<F, R>(&self, job: F) -> JobHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        if std::mem::size_of::<F>() > BOX_ABOVE {
            self.spawn_slot(Box::new(job))
        } else {
            self.spawn_slot(job)
        }
    }

    /// [`spawn`](WorkerPool::spawn) with the closure as it goes into the slot (boxed if large).
    fn spawn_slot<G, R>(&self, job: G) -> JobHandle<R>
    where
        G: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let slot = Arc::new(Slot::new(job, Arc::clone(&self.shared)));
        self.send_blocking(Work::Shared(slot.clone()));
        JobHandle::new(slot)
    }

    /// [`spawn`](WorkerPool::spawn) if the queue has room now; never blocks.
    ///
    /// # Errors
    ///
    /// [`TrySubmitError::Full`] with the job, untouched, if the queue is full.
    ///
    /// # Examples
    ///
    /// ```
    /// use boundpool::WorkerPool;
    ///
    /// let pool = WorkerPool::new(1, 4);
    /// let value = match pool.try_spawn(|| 6 * 7) {
    ///     Ok(handle) => handle.join().unwrap(),
    ///     Err(full) => full.into_inner()(),
    /// };
    /// assert_eq!(value, 42);
    /// ```
    pub fn try_spawn<F, R>(&self, job: F) -> Result<JobHandle<R>, TrySubmitError<F>>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        if std::mem::size_of::<F>() > BOX_ABOVE {
            self.try_spawn_slot(Box::new(job))
                .map_err(|job| TrySubmitError::Full(*job))
        } else {
            self.try_spawn_slot(job).map_err(TrySubmitError::Full)
        }
    }

    /// [`try_spawn`](WorkerPool::try_spawn) with the closure as it goes into the slot; gives it
    /// back if the queue is full.
    fn try_spawn_slot<G, R>(&self, job: G) -> Result<JobHandle<R>, G>
    where
        G: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let slot = Arc::new(Slot::new(job, Arc::clone(&self.shared)));
        match self
            .shared
            .try_send(self.sender(), Work::Shared(slot.clone()))
        {
            Ok(()) => Ok(JobHandle::new(slot)),
            Err(work) => {
                drop(work);
                match slot.take_unclaimed() {
                    Some(job) => Err(job),
                    None => unreachable!("boundpool: refused work was never claimed"),
                }
            }
        }
    }

    /// The pool's counters now. See [`Stats`].
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// The number of worker threads.
    pub fn workers(&self) -> usize {
        self.shared.workers
    }

    /// The queue's capacity.
    pub fn capacity(&self) -> usize {
        self.shared.capacity
    }

    /// Blocks until every job accepted **before this call** has finished.
    ///
    /// Jobs accepted after the call began do not hold it up, so a steady stream of submissions
    /// from other threads cannot starve the waiter. (The pool tells 8 idle epochs apart: a call
    /// made while 7 earlier waits are still waiting for their jobs also waits for the jobs
    /// accepted until the oldest of those is done.) Jobs accepted through every path count
    /// (`submit`, `spawn`, scoped jobs, `map`). The pool keeps running; call it as often and from
    /// as many threads as you like.
    ///
    /// Called from inside one of the pool's jobs, it does not wait for the jobs beneath it on its
    /// own thread (its own job included) nor for jobs suspended in a boundpool wait (`join`,
    /// `scope`, `map`, `wait_idle`) on other threads, which would otherwise wait for each other
    /// forever. There it also helps: it runs queued jobs accepted before the call itself (nested
    /// up to [`MAX_NESTING`](crate::MAX_NESTING) deep, on a helper thread past that), so it
    /// finishes even when every worker is waiting; a job accepted after the call is never run
    /// beneath it (it might wait for the waiting job, or take a lock it holds), but set aside
    /// for the workers, ahead of the queue ([`Stats::overflow`]). (A job it runs that calls
    /// `wait_idle` in turn runs the jobs accepted before *that* call, which may include jobs
    /// accepted after the outer call: the outer wait waits for those too, through the inner
    /// one, so running them there creates no wait that was not already there.)
    ///
    /// # Examples
    ///
    /// ```
    /// use boundpool::WorkerPool;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    ///
    /// let pool = WorkerPool::new(2, 64);
    /// let done = Arc::new(AtomicUsize::new(0));
    /// for _ in 0..50 {
    ///     let done = Arc::clone(&done);
    ///     pool.submit(move || {
    ///         done.fetch_add(1, Ordering::SeqCst);
    ///     });
    /// }
    /// pool.wait_idle();
    /// assert_eq!(done.load(Ordering::SeqCst), 50);
    /// ```
    pub fn wait_idle(&self) {
        self.shared.wait_idle(self.sender(), None);
    }

    /// [`wait_idle`](WorkerPool::wait_idle) for at most `timeout`; true if every job accepted
    /// before the call finished in time.
    ///
    /// Unlike `wait_idle`, it never runs a job on the calling thread, also inside a job: it
    /// keeps its timeout.
    pub fn wait_idle_timeout(&self, timeout: Duration) -> bool {
        self.shared
            .wait_idle(self.sender(), Some(deadline_after(timeout)))
    }

    /// Graceful shutdown: closes the queue, lets the workers run every job already accepted,
    /// joins every thread, and returns the final [`Stats`].
    ///
    /// Called on one of the pool's own threads (the last `Arc<WorkerPool>` released inside a
    /// job), it closes the queue and joins no thread: the workers drain the queue and exit on
    /// their own, and the returned stats are those of that moment.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = boundpool::WorkerPool::new(2, 100);
    /// for _ in 0..100 {
    ///     pool.submit(|| std::thread::yield_now());
    /// }
    /// let stats = pool.shutdown();
    /// assert_eq!((stats.completed, stats.queued, stats.active), (100, 0, 0));
    /// ```
    pub fn shutdown(mut self) -> Stats {
        self.close_and_join(None);
        self.stats()
    }

    /// Like [`shutdown`](WorkerPool::shutdown), but waits at most `timeout` for the workers.
    ///
    /// # Errors
    ///
    /// `Err(stats)` if workers were still running at the deadline (or if called on one of the
    /// pool's own threads, which cannot wait for itself). Those workers are detached: they finish
    /// the accepted jobs on their own and exit.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let pool = boundpool::WorkerPool::new(2, 4);
    /// pool.submit(|| ());
    /// let stats = pool.shutdown_timeout(Duration::from_secs(10)).expect("a tiny job ends in time");
    /// assert_eq!(stats.completed, 1);
    /// ```
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Result<Stats, Stats> {
        let joined = self.close_and_join(Some(deadline_after(timeout)));
        let stats = self.stats();
        if joined {
            Ok(stats)
        } else {
            Err(stats)
        }
    }

    /// Stops at once: workers take no new job from the queue, the jobs running are waited for,
    /// and the jobs accepted but never started come back: those in the queue in queue (FIFO)
    /// order, then those held in the [overflow](Stats::overflow).
    ///
    /// Nothing accepted is lost: each returned [`Job`] can be [`run`](Job::run) later (or
    /// elsewhere) or dropped, which cancels it (a `spawn` job's handle then reports
    /// [`JobError::Cancelled`](crate::JobError::Cancelled)). A job a waiter already took out of
    /// the queue to run itself is not among them. A worker that was just taking a job as this was
    /// called may still run that one job. Called on one of the pool's own threads, it cannot wait
    /// for the running jobs (its own is one of them) and returns without joining.
    ///
    /// # Examples
    ///
    /// ```
    /// use boundpool::WorkerPool;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::{mpsc, Arc};
    ///
    /// let pool = WorkerPool::new(1, 10);
    /// let (release, gate) = mpsc::channel::<()>();
    /// let (started_tx, started) = mpsc::channel();
    /// pool.submit(move || {
    ///     started_tx.send(()).unwrap();
    ///     gate.recv().ok();
    /// });
    /// started.recv().unwrap(); // the only worker is busy
    /// let ran = Arc::new(AtomicUsize::new(0));
    /// for _ in 0..5 {
    ///     let ran = Arc::clone(&ran);
    ///     pool.submit(move || {
    ///         ran.fetch_add(1, Ordering::SeqCst);
    ///     });
    /// }
    /// // Until the stop is seen, the released worker may start a few more jobs.
    /// release.send(()).unwrap();
    /// let unstarted = pool.shutdown_now();
    /// assert_eq!(ran.load(Ordering::SeqCst) + unstarted.len(), 5); // nothing lost
    /// for job in unstarted {
    ///     job.run(); // or drop it to cancel it
    /// }
    /// assert_eq!(ran.load(Ordering::SeqCst), 5);
    /// ```
    pub fn shutdown_now(mut self) -> Vec<Job> {
        self.shared.set_stop_now();
        let mut unstarted = Vec::new();
        while let Ok(envelope) = self.shared.rx.try_recv() {
            unstarted.extend(Job::from_envelope(envelope));
        }
        self.close_and_join(None);
        // What the jobs that were running overflowed or queued meanwhile (the workers took none
        // of it once they saw the stop), after what was queued before.
        let overflow = self.shared.drain_overflow();
        unstarted.extend(overflow.into_iter().filter_map(Job::from_envelope));
        while let Ok(envelope) = self.shared.rx.try_recv() {
            unstarted.extend(Job::from_envelope(envelope));
        }
        unstarted
    }

    /// Closes the queue and joins the workers, until `deadline` if there is one; true if every
    /// worker was joined. On one of the pool's own threads joins nothing (and returns false).
    fn close_and_join(&mut self, deadline: Option<Instant>) -> bool {
        self.tx = None;
        if context::in_pool(&*self.shared) {
            self.threads.clear(); // detach: joining would wait for this very thread
            return false;
        }
        if let Some(deadline) = deadline {
            if let Err(RecvTimeoutError::Timeout) = self.alive.recv_deadline(deadline) {
                self.threads.clear();
                return false;
            }
        }
        for thread in self.threads.drain(..) {
            // Workers catch every panic of user code; a join error would be a boundpool bug.
            let _ = thread.join();
        }
        true
    }
}

impl Default for WorkerPool {
    /// `num_cpus::get()` workers and a queue of twice as many slots.
    ///
    /// # Panics
    ///
    /// If the operating system refuses to create a thread.
    fn default() -> WorkerPool {
        match Builder::new().build() {
            Ok(pool) => pool,
            Err(e) => panic!("boundpool::WorkerPool::default(): {e}"),
        }
    }
}

impl Drop for WorkerPool {
    /// Same as [`shutdown`](WorkerPool::shutdown): runs every accepted job and joins the workers
    /// (on one of the pool's own threads: closes the queue and joins nothing).
    fn drop(&mut self) {
        if self.tx.is_some() {
            self.close_and_join(None);
        }
    }
}

impl fmt::Debug for WorkerPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerPool")
            .field("stats", &self.stats())
            .finish()
    }
}
