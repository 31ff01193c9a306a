//! Units of work and their results: what travels through the queue ([`Envelope`]), the shared
//! slot behind every job that has a waiter ([`Slot`]: `spawn`, scoped jobs, `map` items), the
//! public [`JobHandle`] / [`JobError`], and the [`Job`]s that `shutdown_now` hands back.
//!
//! A slot is claimed exactly once: by the worker that dequeues it, or by a thread waiting on it
//! while it is still queued (that thread runs it itself, so waiting never needs a free worker; the
//! worker that later dequeues the claimed slot skips it), or by cancellation.

use std::any::Any;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::time::Duration;

use crate::context::{self, Suspension};
use crate::sync::{lock, Arc, AtomicU64, Condvar, Instant, Mutex, Ordering, PoisonError};

/// A fire-and-forget job that can be given back as its concrete type.
pub(crate) trait PlainFn: Send {
    /// Runs the job.
    fn call(self: Box<Self>);
    /// The job as `Any`, to recover the caller's closure type (`TrySubmitError::Full(job)`).
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send>;
}

impl<F: FnOnce() + Send + 'static> PlainFn for F {
    #[inline]
    fn call(self: Box<Self>) {
        (*self)()
    }
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self
    }
}

/// A boxed fire-and-forget job: one allocation per `submit`.
pub(crate) type PlainJob = Box<dyn PlainFn>;

/// What a job's [`Slot`] needs of the pool its job runs on: to count the job as it runs, and to
/// run it nested or on a helper thread when a waiter claims it. The pool's shared state
/// implements it; this module knows nothing else of the pool.
pub(crate) trait Runner: Send + Sync {
    /// Counts a job accepted with `parity` as started on this thread; hand the result to
    /// [`finish`](Runner::finish).
    fn begin(self: Arc<Self>, parity: usize) -> Begun;
    /// Counts the job `begun` as finished, panicked or not.
    fn finish(&self, begun: Begun, panicked: bool);
    /// Runs `job`, which this thread claimed inside a job it is running: nested here, or on a
    /// helper thread past [`MAX_NESTING`](crate::MAX_NESTING).
    fn run_nested(&self, job: &mut (dyn FnMut() + Send));
    /// Whether this thread can run a job it claims, nested or on a helper thread (ask before
    /// claiming).
    fn can_nest(&self) -> bool;
    /// Panics in a waiting job that can do neither (see [`MAX_NESTING`](crate::MAX_NESTING)).
    fn too_deep(&self, wait: &str) -> !;
}

/// A job that [`Runner::begin`] counted as started: where its counters and frame are.
#[derive(Clone, Copy)]
pub(crate) struct Begun {
    /// The index of the worker running it, if it runs on one of its pool's workers.
    pub(crate) worker: Option<usize>,
    pub(crate) parity: usize,
    pub(crate) frame: context::FrameSlot,
}

/// A job whose slot is shared with a waiter (handle, scope, map).
pub(crate) trait SharedTask: Send + Sync {
    /// Claims the job if it is still queued and runs it with full accounting, delivering the
    /// result (or panic) to the slot; does nothing if it was claimed already.
    fn run(&self);
    /// Claims the job if it is still queued and drops it unrun: waiters see `Cancelled`.
    fn cancel(&self);
    /// Records when the job is being accepted.
    fn set_stamp(&self, stamp: Stamp);
    /// When the job was accepted (as recorded by [`set_stamp`](SharedTask::set_stamp)).
    fn stamp(&self) -> Stamp;
    /// Whether nobody has claimed the job yet.
    fn is_queued(&self) -> bool;
}

/// What a job is.
pub(crate) enum Work {
    /// `submit`: the closure alone.
    Plain(PlainJob),
    /// Everything with a waiter: the shared slot.
    Shared(Arc<dyn SharedTask>),
}

impl Work {
    #[inline]
    pub(crate) fn set_stamp(&self, stamp: Stamp) {
        if let Work::Shared(task) = self {
            task.set_stamp(stamp);
        }
    }
}

/// How many idle epochs the pool's counters tell apart (a power of two, at most 256 so that a
/// slot fits a byte): a `wait_idle` that begins while `EPOCH_SLOTS - 1` older epochs are still
/// draining waits for the oldest to drain before it can move the epoch on (see
/// `Shared::wait_idle`).
pub(crate) const EPOCH_SLOTS: usize = 8;

/// When a job was accepted: the slot of the idle epoch it was counted in (its "parity", the epoch
/// modulo `EPOCH_SLOTS`), and its place among the jobs ever counted in that slot (the low 32
/// bits of the count before it). `wait_idle`
/// tells by it whether a queued job was accepted before the wait began (see
/// [`Stamp::is_before`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Stamp {
    /// Below `EPOCH_SLOTS`.
    pub(crate) parity: usize,
    /// The low 32 bits of `Shared::accepted[parity]` before this job was counted in it.
    pub(crate) seq: u32,
}

impl Stamp {
    /// Whether the job was counted before `accepted` (both per-parity counts) was read. The
    /// counts only grow, so a job whose place is below the count read was counted before the
    /// reading; compared modulo 2^32, which is exact while fewer than 2^31 jobs of one parity are
    /// accepted between the job and the reading.
    #[inline]
    pub(crate) fn is_before(self, accepted: [u64; EPOCH_SLOTS]) -> bool {
        let count = accepted[self.parity] as u32;
        count.wrapping_sub(self.seq).wrapping_sub(1) < 1 << 31
    }

    fn pack(self) -> u64 {
        (u64::from(self.seq) << 8) | self.parity as u64
    }

    fn unpack(word: u64) -> Stamp {
        Stamp {
            parity: (word & 0xff) as usize,
            seq: (word >> 8) as u32,
        }
    }
}

/// What travels through the queue: the job and, for a plain job, its [`Stamp`] (a shared slot
/// records its own), or a wake-up for a worker. 24 bytes, so that a queue slot with crossbeam's
/// stamp is 32 bytes: two slots to a cache line, none straddling two (a 32-byte envelope made a
/// 40-byte slot, and more lines to move between the producer's and the workers' caches). The
/// plain variant's stamp is split so that its slot byte and sequence fit beside the tag.
pub(crate) enum Envelope {
    Plain(PlainJob, u8, u32),
    Shared(Arc<dyn SharedTask>),
    /// No job: wakes a worker blocked on the empty queue so that it looks at the overflow (see
    /// `Shared::wake_a_worker`).
    Wake,
}

// The layout the comment above relies on, checked at compile time (shuttle's `Arc` differs).
#[cfg(all(target_pointer_width = "64", not(shuttle)))]
const _: () = assert!(std::mem::size_of::<Envelope>() == 24);

impl Envelope {
    /// Seals `work` accepted with `stamp`.
    #[inline]
    pub(crate) fn new(work: Work, stamp: Stamp) -> Envelope {
        match work {
            Work::Plain(job) => Envelope::Plain(job, stamp.parity as u8, stamp.seq),
            Work::Shared(task) => Envelope::Shared(task),
        }
    }

    /// When the job inside was accepted; `None` for a wake-up.
    pub(crate) fn stamp(&self) -> Option<Stamp> {
        match self {
            Envelope::Plain(_, parity, seq) => Some(Stamp {
                parity: usize::from(*parity),
                seq: *seq,
            }),
            Envelope::Shared(task) => Some(task.stamp()),
            Envelope::Wake => None,
        }
    }

    /// The work inside; `None` for a wake-up.
    #[inline]
    pub(crate) fn into_work(self) -> Option<Work> {
        match self {
            Envelope::Plain(job, _, _) => Some(Work::Plain(job)),
            Envelope::Shared(task) => Some(Work::Shared(task)),
            Envelope::Wake => None,
        }
    }
}

/// Something a thread can wait on for an `R`: the typed face of a [`Slot`].
pub(crate) trait Awaitable<R>: Send + Sync {
    /// Waits for the job (running it here if it is still queued) and takes its result.
    fn join(&self) -> Result<R, JobError>;
    /// Whether the job has finished (or was cancelled).
    fn is_finished(&self) -> bool;
    /// Waits (without running the job here) until it finished or `timeout` passed.
    fn wait_timeout(&self, timeout: Duration) -> bool;
}

/// Where a slotted job is in its life.
pub(crate) enum State<F, R> {
    /// Not claimed yet: the closure waits here, with the pool it is to be counted in. The pool is
    /// let go of once the job has run (or been cancelled), so that a finished handle kept around
    /// holds its result and nothing of the pool (whose queue alone may be hundreds of MB).
    Queued(F, Arc<dyn Runner>),
    /// Claimed and running.
    Running,
    /// Finished, panicked or cancelled; the result waits for the handle.
    Done(Result<R, JobError>),
    /// The result was taken by `join`.
    Taken,
}

struct Inner<F, R> {
    state: State<F, R>,
    /// Threads blocked on `done` (notify only when there are some: a notify is a syscall).
    waiting: usize,
}

/// The shared slot of a job with a waiter: the closure until it runs, then its result.
pub(crate) struct Slot<F, R> {
    inner: Mutex<Inner<F, R>>,
    done: Condvar,
    /// The job's [`Stamp`], packed.
    stamp: AtomicU64,
}

/// Closures larger than this many bytes are boxed before they go into a [`Slot`] (see
/// `WorkerPool::spawn`): a slot's closure is moved by value on its way to the call (out of the
/// slot, into `catch_unwind`), and each move of a large closure is a copy on the running
/// thread's stack. Boxed, only the box moves, and the closure is copied onto the stack once, by
/// the call itself, as a `submit`ted job is: a 1.5 MiB capture runs on a 2 MiB worker stack.
pub(crate) const BOX_ABOVE: usize = 1024;

impl<F, R> Slot<F, R>
where
    F: FnOnce() -> R + Send,
    R: Send,
{
    pub(crate) fn new<P: Runner + 'static>(job: F, shared: Arc<P>) -> Slot<F, R> {
        Slot {
            inner: Mutex::new(Inner {
                state: State::Queued(job, shared),
                waiting: 0,
            }),
            done: Condvar::new(),
            stamp: AtomicU64::new(0),
        }
    }

    /// Takes the closure (and its pool) if nobody has claimed it.
    fn claim(&self) -> Option<(F, Arc<dyn Runner>)> {
        let mut inner = lock(&self.inner);
        match std::mem::replace(&mut inner.state, State::Running) {
            State::Queued(job, shared) => Some((job, shared)),
            other => {
                inner.state = other;
                None
            }
        }
    }

    /// Takes the closure back out of a slot that was never handed to anyone (a failed
    /// `try_spawn`).
    pub(crate) fn take_unclaimed(&self) -> Option<F> {
        self.claim().map(|(job, _)| job)
    }

    /// Runs a claimed closure with accounting and publishes the result. The counters are updated
    /// under the slot's lock, before the result becomes visible, so a waiter released by the
    /// result sees them, and a `wait_idle` released by the counters finds the result in place.
    /// The pool is let go of last, outside the lock.
    fn execute(&self, job: F, shared: Arc<dyn Runner>) {
        let begun = Arc::clone(&shared).begin(self.stamp().parity);
        let result = panic::catch_unwind(AssertUnwindSafe(job));
        let mut inner = lock(&self.inner);
        shared.finish(begun, result.is_err());
        inner.state = State::Done(result.map_err(|p| JobError::Panicked(PanicPayload::new(p))));
        if inner.waiting > 0 {
            self.done.notify_all();
        }
        drop(inner);
        drop(shared);
    }

    /// Blocks until the slot is done or `deadline` passes; true if done.
    fn wait_done(&self, deadline: Option<Instant>) -> bool {
        let is_done = |s: &State<F, R>| matches!(s, State::Done(_) | State::Taken);
        if is_done(&lock(&self.inner).state) {
            return true;
        }
        // This thread's own jobs are now suspended in a boundpool wait (see `wait_idle`).
        let _suspension = Suspension::new();
        let mut inner = lock(&self.inner);
        inner.waiting += 1;
        let done = loop {
            if is_done(&inner.state) {
                break true;
            }
            inner = match deadline {
                None => self
                    .done
                    .wait(inner)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        break false;
                    }
                    self.done
                        .wait_timeout(inner, d - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        };
        inner.waiting -= 1;
        done
    }
}

impl<F, R> Slot<F, R> {
    /// Moves whatever the slot still holds out (for a scoped job's drop: its closure, captures and
    /// unjoined result must be gone before the scope's count drops).
    pub(crate) fn take_state(&mut self) -> State<F, R> {
        let inner = self.inner.get_mut().unwrap_or_else(PoisonError::into_inner);
        std::mem::replace(&mut inner.state, State::Taken)
    }

    fn stamp(&self) -> Stamp {
        Stamp::unpack(self.stamp.load(Ordering::Relaxed))
    }
}

impl<F, R> SharedTask for Slot<F, R>
where
    F: FnOnce() -> R + Send,
    R: Send,
{
    fn run(&self) {
        if let Some((job, shared)) = self.claim() {
            self.execute(job, shared);
        }
    }

    fn cancel(&self) {
        let job = {
            let mut inner = lock(&self.inner);
            if !matches!(inner.state, State::Queued(..)) {
                return;
            }
            let job = std::mem::replace(&mut inner.state, State::Done(Err(JobError::Cancelled)));
            if inner.waiting > 0 {
                self.done.notify_all();
            }
            job
        };
        // The closure (and its captures) drops outside the lock.
        drop(job);
    }

    fn set_stamp(&self, stamp: Stamp) {
        self.stamp.store(stamp.pack(), Ordering::Relaxed);
    }

    fn stamp(&self) -> Stamp {
        Slot::stamp(self)
    }

    fn is_queued(&self) -> bool {
        matches!(lock(&self.inner).state, State::Queued(..))
    }
}

impl<F, R> Awaitable<R> for Slot<F, R>
where
    F: FnOnce() -> R + Send,
    R: Send,
{
    fn join(&self) -> Result<R, JobError> {
        // Only a thread running a job of a boundpool pool runs the job it waits on: it may be
        // what the job is waiting for (a worker of a one-worker pool), and its own job is
        // suspended meanwhile, so the pool's bound holds. Any other thread blocks until a worker
        // has run the job (see DESIGN: waiting never runs a job off the pool).
        if context::in_any_job() {
            let pool = match &lock(&self.inner).state {
                State::Queued(_, pool) => Some(Arc::clone(pool)),
                _ => None,
            };
            if let Some(pool) = pool.filter(|pool| !pool.can_nest()) {
                pool.too_deep("join");
            }
            if let Some((job, shared)) = self.claim() {
                let pool = Arc::clone(&shared);
                let mut claimed = Some((job, shared));
                pool.run_nested(&mut || {
                    if let Some((job, shared)) = claimed.take() {
                        self.execute(job, shared);
                    }
                });
            }
        }
        self.wait_done(None);
        let mut inner = lock(&self.inner);
        match std::mem::replace(&mut inner.state, State::Taken) {
            State::Done(result) => result,
            // `join` takes the handle by value, so the result is taken once; a slot is done here.
            _ => Err(JobError::Cancelled),
        }
    }

    fn is_finished(&self) -> bool {
        matches!(lock(&self.inner).state, State::Done(_) | State::Taken)
    }

    fn wait_timeout(&self, timeout: Duration) -> bool {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => self.wait_done(Some(deadline)),
            None => self.wait_done(None),
        }
    }
}

/// A handle to the result of a job started with [`WorkerPool::spawn`](crate::WorkerPool::spawn).
///
/// [`join`](JobHandle::join) waits for the result. Called inside a job of a boundpool pool on a
/// job that is still queued, it takes the job out of the queue and runs it on its own thread
/// (its own job is suspended meanwhile), so joining never needs a free worker and cannot
/// deadlock, even from inside a job on a one-worker pool. Called anywhere else (`main`, a
/// request handler), it never runs the job: it blocks until a worker has, so the job always runs
/// on a pool thread and the pool's bound on concurrent jobs holds. Dropping the handle detaches
/// the job: it still runs, and its result is dropped.
///
/// A finished handle holds the job's result and nothing of the pool: keeping it after the pool
/// has shut down keeps no queue or thread alive.
///
/// # Examples
///
/// ```
/// use boundpool::WorkerPool;
///
/// let pool = WorkerPool::new(2, 8);
/// let handles: Vec<_> = (1..=4u64).map(|n| pool.spawn(move || n * n)).collect();
/// let squares: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
/// assert_eq!(squares, [1, 4, 9, 16]);
/// ```
pub struct JobHandle<R> {
    slot: Arc<dyn Awaitable<R>>,
}

impl<R> JobHandle<R> {
    pub(crate) fn new(slot: Arc<dyn Awaitable<R>>) -> JobHandle<R> {
        JobHandle { slot }
    }

    /// Waits for the job and returns its value.
    ///
    /// Inside a job of a boundpool pool, a job still queued is run by this thread (the worker
    /// that later dequeues it skips it), nested on its stack up to [`MAX_NESTING`](crate::MAX_NESTING)
    /// deep and on a helper thread past that. Anywhere else, and whenever the job is already
    /// running, this thread blocks until it finishes.
    ///
    /// # Errors
    ///
    /// [`JobError::Panicked`] if the job panicked (the payload is inside, intact), or
    /// [`JobError::Cancelled`] if it was dropped unrun (see
    /// [`WorkerPool::shutdown_now`](crate::WorkerPool::shutdown_now)).
    ///
    /// # Examples
    ///
    /// ```
    /// use boundpool::WorkerPool;
    ///
    /// let pool = WorkerPool::new(1, 4);
    /// let ok = pool.spawn(|| "done");
    /// let bad = pool.spawn(|| -> u8 { panic!("no luck") });
    /// assert_eq!(ok.join().unwrap(), "done");
    /// let err = bad.join().unwrap_err();
    /// assert_eq!(err.panic_message(), Some("no luck"));
    /// ```
    pub fn join(self) -> Result<R, JobError> {
        self.slot.join()
    }

    /// Whether the job has finished (or was cancelled), without blocking.
    ///
    /// # Examples
    ///
    /// ```
    /// use boundpool::WorkerPool;
    /// use std::time::Duration;
    ///
    /// let pool = WorkerPool::new(1, 4);
    /// let handle = pool.spawn(|| 7);
    /// assert!(handle.wait_timeout(Duration::from_secs(10)));
    /// assert!(handle.is_finished());
    /// assert_eq!(handle.join().unwrap(), 7);
    /// ```
    pub fn is_finished(&self) -> bool {
        self.slot.is_finished()
    }

    /// Waits at most `timeout` for the job to finish; true once it has (or was cancelled).
    ///
    /// Unlike [`join`](JobHandle::join), this never runs the job on the calling thread.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.slot.wait_timeout(timeout)
    }
}

impl<R> fmt::Debug for JobHandle<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// The payload of a job's panic, as caught on the thread that ran it.
///
/// Held so that [`JobError`] is `Send + Sync` (a bare `Box<dyn Any + Send>` is not `Sync`). The
/// message of a `&str` or `String` payload (what `panic!` produces) is kept readable beside it.
pub struct PanicPayload {
    message: Option<String>,
    /// `std`'s mutex in every build: it only makes the payload `Sync`, and is no part of the
    /// pool's synchronisation (so the shuttle build does not model it).
    payload: std::sync::Mutex<Box<dyn Any + Send>>,
}

impl PanicPayload {
    pub(crate) fn new(payload: Box<dyn Any + Send>) -> PanicPayload {
        let message = payload
            .downcast_ref::<&'static str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned());
        PanicPayload {
            message,
            payload: std::sync::Mutex::new(payload),
        }
    }

    /// The panic message, if the payload was a `&str` or a `String`.
    pub fn message(&self) -> Option<&str> {
        self.message.as_deref()
    }

    /// The original payload, for [`std::panic::resume_unwind`] or a downcast.
    pub fn into_inner(self) -> Box<dyn Any + Send> {
        self.payload
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for PanicPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.message {
            Some(m) => f.debug_tuple("PanicPayload").field(m).finish(),
            None => f.write_str("PanicPayload(..)"),
        }
    }
}

/// Why a job produced no value.
///
/// `JobError` is `Send + Sync + 'static` and implements [`std::error::Error`], so `?` converts it
/// into `Box<dyn Error + Send + Sync>` or `anyhow::Error`.
///
/// # Examples
///
/// ```
/// use boundpool::{JobError, WorkerPool};
///
/// let pool = WorkerPool::new(1, 4);
/// let handle = pool.spawn(|| -> u32 { panic!("bad input: {}", 42) });
/// match handle.join() {
///     Err(JobError::Panicked(p)) => assert_eq!(p.message(), Some("bad input: 42")),
///     other => panic!("unexpected: {other:?}"),
/// }
/// ```
#[non_exhaustive]
pub enum JobError {
    /// The job panicked; the payload is inside, intact.
    Panicked(PanicPayload),
    /// The job was dropped without running (a [`Job`] from
    /// [`shutdown_now`](crate::WorkerPool::shutdown_now) that was dropped).
    Cancelled,
}

impl JobError {
    /// Whether the job panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self, JobError::Panicked(_))
    }

    /// Whether the job was cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, JobError::Cancelled)
    }

    /// The panic message, if the job panicked with a `&str` or `String` payload.
    pub fn panic_message(&self) -> Option<&str> {
        match self {
            JobError::Panicked(p) => p.message(),
            JobError::Cancelled => None,
        }
    }

    /// The panic payload, for [`std::panic::resume_unwind`].
    ///
    /// # Panics
    ///
    /// If the job was [`Cancelled`](JobError::Cancelled) (there is no payload); use
    /// [`try_into_panic`](JobError::try_into_panic) to avoid that.
    ///
    /// # Examples
    ///
    /// ```
    /// use boundpool::WorkerPool;
    ///
    /// let pool = WorkerPool::new(1, 4);
    /// let err = pool.spawn(|| std::panic::panic_any(7u8)).join().unwrap_err();
    /// let payload = err.into_panic();
    /// assert_eq!(payload.downcast_ref::<u8>(), Some(&7));
    /// ```
    pub fn into_panic(self) -> Box<dyn Any + Send> {
        match self.try_into_panic() {
            Ok(payload) => payload,
            Err(_) => panic!("`JobError::into_panic` called on a cancelled job"),
        }
    }

    /// The panic payload, or the error itself if the job did not panic.
    ///
    /// # Errors
    ///
    /// The error itself when it is not a panic ([`Cancelled`](JobError::Cancelled)).
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send>, JobError> {
        match self {
            JobError::Panicked(p) => Ok(p.into_inner()),
            other => Err(other),
        }
    }
}

impl fmt::Debug for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobError::Panicked(p) => f.debug_tuple("Panicked").field(p).finish(),
            JobError::Cancelled => f.write_str("Cancelled"),
        }
    }
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobError::Panicked(p) => match p.message() {
                Some(m) => write!(f, "job panicked: {m}"),
                None => f.write_str("job panicked"),
            },
            JobError::Cancelled => f.write_str("job was cancelled before it ran"),
        }
    }
}

impl std::error::Error for JobError {}

/// A job that was accepted but never started, handed back by
/// [`WorkerPool::shutdown_now`](crate::WorkerPool::shutdown_now).
///
/// [`run`](Job::run) runs it on the calling thread; dropping it cancels it (the closure is
/// dropped unrun, and the [`JobHandle`] of a `spawn` job reports [`JobError::Cancelled`]).
///
/// # Examples
///
/// ```
/// use boundpool::WorkerPool;
/// use std::sync::mpsc;
///
/// let pool = WorkerPool::new(1, 4);
/// let (release, gate) = mpsc::channel::<()>();
/// let (started_tx, started) = mpsc::channel();
/// pool.submit(move || {
///     started_tx.send(()).unwrap();
///     gate.recv().ok();
/// });
/// started.recv().unwrap();
/// let first = pool.spawn(|| 5);
/// let second = pool.spawn(|| 6);
///
/// release.send(()).unwrap();
/// // Until the stop is seen, the released worker may start jobs; the rest come back.
/// for job in pool.shutdown_now() {
///     job.run(); // runs it here; dropping it instead would cancel it
/// }
/// assert_eq!((first.join().unwrap(), second.join().unwrap()), (5, 6));
/// ```
pub struct Job {
    work: Option<Work>,
}

impl Job {
    /// Wraps what was taken from the queue; `None` for a wake-up and for a slot a waiter
    /// already claimed.
    pub(crate) fn from_envelope(envelope: Envelope) -> Option<Job> {
        match envelope.into_work()? {
            Work::Shared(task) if !task.is_queued() => None,
            work => Some(Job { work: Some(work) }),
        }
    }

    /// Runs the job on the calling thread.
    ///
    /// A fire-and-forget job's panic unwinds into the caller. A job with a handle (`spawn`)
    /// delivers its value or its panic to its [`JobHandle`], as on a worker; if a `join` already
    /// ran it (a `join` runs a job that is still waiting), this does nothing.
    ///
    /// # Panics
    ///
    /// If the job was submitted with [`submit`](crate::WorkerPool::submit) (or its `try_` and
    /// `_timeout` forms) and panics: the panic is the job's own, resumed here. A job with a
    /// handle never panics here.
    pub fn run(mut self) {
        match self.work.take() {
            Some(Work::Plain(job)) => job.call(),
            Some(Work::Shared(task)) => task.run(),
            None => {}
        }
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        if let Some(Work::Shared(task)) = self.work.take() {
            task.cancel();
        }
    }
}

impl fmt::Debug for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.work {
            Some(Work::Plain(_)) => "submit",
            Some(Work::Shared(_)) => "with handle",
            None => "taken",
        };
        f.debug_struct("Job").field("kind", &kind).finish()
    }
}
