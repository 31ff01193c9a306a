//! The state the pool, its workers and every job slot share: the counters behind [`Stats`], the
//! idle epochs behind `wait_idle`, the parking lot of producers blocked on a full queue, the hooks,
//! and the accounting that every path running a job goes through ([`Shared::begin`]).
//!
//! # Counting without a shared hot cache line
//! Each worker owns a cache-padded [`Counters`] block that only it writes; jobs run by any other
//! thread (caller-runs, a waiter running the job it waits on) go to one shared block. Producers add
//! to `accepted`. Sums are read in an order that makes every field a sound bound (see
//! [`Shared::stats`] and [`Shared::unsuspended_in_flight`]).
//!
//! # Idle epochs
//! Every job is stamped with the parity of the current epoch when it is accepted. `wait_idle`
//! flips the epoch and waits for the old parity to have no job that is in flight and not suspended;
//! jobs accepted after the flip carry the other parity and cannot hold it up, so a stream of new
//! submissions cannot starve a waiter. At most one old epoch drains at a time, so two parities do.
//!
//! The epochs' counts pass over jobs suspended in a boundpool wait (a `wait_idle` inside a job
//! must not wait for a job that may be waiting for it). A job suspended for the first time is
//! registered as lingering under its epoch until it finishes; a `wait_idle` outside every job
//! waits for the lingering jobs of the epochs it waits for as well.

use std::any::Any;
use std::collections::BTreeMap;
use std::panic::{self, AssertUnwindSafe};
use std::time::Duration;

use crate::context::{self, Suspension};
use crate::job::{Envelope, Work};
use crate::pool::Stats;
use crate::queue::{Receiver, SendTimeoutError, Sender, TrySendError};
use crate::sync::{Arc, Condvar, Instant, Mutex, MutexGuard, PoisonError};
use crate::sync::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// A user callback run on worker threads.
pub(crate) type Hook = Arc<dyn Fn() + Send + Sync + 'static>;
/// The user's panic handler.
pub(crate) type PanicHandler = Arc<dyn Fn(Box<dyn Any + Send>) + Send + Sync + 'static>;

/// How long a producer spins on a full queue before it parks: about the cost of a futex wake-up
/// here, so that a queue that drains within that time never costs a sleep.
const SPIN: Duration = Duration::from_micros(15);
/// A parked producer re-checks the queue at least this often. Wake-ups do not depend on it (the
/// workers wake producers, see [`Shared::after_dequeue`]); it bounds the cost of a missed one
/// should crossbeam-channel ever weaken the orderings the protocol relies on.
const PARK_GUARD: Duration = Duration::from_millis(50);
/// At capacity 0 a producer blocks in the channel's own `send`, in slices this long, so that it
/// re-reads the idle epoch now and then (a job stamped long ago could hold up a `wait_idle`).
const RENDEZVOUS_SLICE: Duration = Duration::from_millis(2);

/// Locks a mutex, ignoring poisoning: boundpool never runs user code while holding its own locks,
/// and a poisoned lock must never take the pool down.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Drops `value`, catching a panic in its `Drop`: boundpool drops user values (results nobody
/// joined, panic payloads) on its own threads, and such a panic must never unwind through a
/// worker (it would kill it) nor skip the bookkeeping after the drop. Returns the panic's payload,
/// if any, for callers that report it.
pub(crate) fn drop_catching<T>(value: T) -> Option<Box<dyn Any + Send>> {
    panic::catch_unwind(AssertUnwindSafe(move || drop(value))).err()
}

/// [`drop_catching`], discarding the panic. Should the payload's own `Drop` panic as well, it is
/// leaked rather than allowed to unwind.
pub(crate) fn drop_quietly<T>(value: T) {
    if let Some(payload) = drop_catching(value) {
        if let Some(again) = drop_catching(payload) {
            std::mem::forget(again);
        }
    }
}

/// Aligns its content to 128 bytes (two cache lines: x86 prefetches pairs) so that counters
/// written by different threads never share a line.
#[repr(align(128))]
#[derive(Default)]
pub(crate) struct Padded<T>(pub(crate) T);

/// Per-runner counters; monotonic.
#[derive(Default)]
pub(crate) struct Counters {
    /// Jobs started.
    started: AtomicU64,
    /// Jobs finished (panicked or not), by the parity of the epoch they were accepted in.
    finished: [AtomicU64; 2],
    /// Jobs that panicked.
    panicked: AtomicU64,
}

/// Adds one to `c`. A block with a single writer (a worker's own) uses a load and a store instead
/// of a locked read-modify-write; the store keeps the requested ordering.
#[inline]
fn bump(c: &AtomicU64, single_writer: bool, order: Ordering) {
    if single_writer {
        c.store(c.load(Ordering::Relaxed).wrapping_add(1), order);
    } else {
        c.fetch_add(1, order);
    }
}

/// Flags read on every job and written rarely: kept off the lines that counters write.
#[derive(Default)]
struct Flags {
    /// The idle epoch; its low bit is the parity new jobs are stamped with.
    epoch: AtomicUsize,
    /// Threads inside `wait_idle`: finishing, suspending and submitting wake them.
    idle_waiters: AtomicUsize,
    /// Some producer is parked on a full queue (set by producers, cleared by the waking worker).
    parked: AtomicBool,
    /// `shutdown_now` was called: workers stop taking jobs.
    stop_now: AtomicBool,
}

/// `wait_idle`'s bookkeeping, under `Shared::idle`.
#[derive(Default)]
struct IdleState {
    /// The current epoch (mirrored in `Flags::epoch`).
    generation: u64,
    /// Whether epoch `generation - 1` is still draining.
    draining: bool,
    /// Every epoch below this one has drained.
    drained_below: u64,
    /// Bumped by every notification of `idle_cv`, so that a waiter that let go of the lock to
    /// run a job can tell whether it missed one.
    notified: u64,
    /// Jobs that have been suspended in a boundpool wait and not finished yet, by the epoch they
    /// were accepted in. The epochs' counts pass over suspended jobs; a `wait_idle` outside
    /// every job waits for these too.
    lingering: BTreeMap<u64, usize>,
}

/// What the pool and everything running its jobs share.
pub(crate) struct Shared {
    /// Number of worker threads.
    pub(crate) workers: usize,
    /// Queue capacity.
    pub(crate) capacity: usize,
    /// A parked producer is woken once the queue holds at most this many jobs.
    low_water: usize,
    flags: Padded<Flags>,
    /// Jobs handed to the queue (or run inline), by epoch parity; written by producers.
    accepted: Padded<[AtomicU64; 2]>,
    /// Jobs counted in `accepted` whose send then failed (full queue, timeout).
    rejected: [AtomicU64; 2],
    /// Suspend and resume events, by parity (see `context::Suspension`).
    suspends: [AtomicU64; 2],
    resumes: [AtomicU64; 2],
    /// One block per worker, written only by that worker.
    per_worker: Box<[Padded<Counters>]>,
    /// Jobs run by any other thread.
    other: Padded<Counters>,
    idle: Mutex<IdleState>,
    idle_cv: Condvar,
    park_lock: Mutex<()>,
    park_cv: Condvar,
    /// A receiver of the queue, for `wait_idle` helping on a worker and for `shutdown_now`.
    pub(crate) rx: Receiver<Envelope>,
    on_thread_start: Option<Hook>,
    on_thread_stop: Option<Hook>,
    panic_handler: Option<PanicHandler>,
}

/// A job being run: created by [`Shared::begin`], consumed by [`Running::finish`].
pub(crate) struct Running<'a> {
    shared: &'a Shared,
    counters: &'a Counters,
    single_writer: bool,
    parity: usize,
    frame: context::FrameSlot,
}

impl Running<'_> {
    /// Counts the job as finished, wakes `wait_idle` waiters, and pops its frame.
    pub(crate) fn finish(self, panicked: bool) {
        let lingering = context::pop(self.frame);
        if panicked {
            bump(
                &self.counters.panicked,
                self.single_writer,
                Ordering::Release,
            );
        }
        // SeqCst pairs with `wait_idle` announcing itself in `idle_waiters` and then reading the
        // counters: either it sees this increment or this thread sees it waiting.
        bump(
            &self.counters.finished[self.parity],
            self.single_writer,
            Ordering::SeqCst,
        );
        if let Some(epoch) = lingering {
            // After the counters: a `wait_idle` this releases reads stats that include the job.
            self.shared.unlinger(epoch);
        } else if self.shared.flags.0.idle_waiters.load(Ordering::SeqCst) > 0 {
            self.shared.notify_idle();
        }
    }
}

impl Shared {
    pub(crate) fn new(
        workers: usize,
        capacity: usize,
        rx: Receiver<Envelope>,
        on_thread_start: Option<Hook>,
        on_thread_stop: Option<Hook>,
        panic_handler: Option<PanicHandler>,
    ) -> Shared {
        Shared {
            workers,
            capacity,
            low_water: capacity / 4,
            flags: Padded::default(),
            accepted: Padded::default(),
            rejected: Default::default(),
            suspends: Default::default(),
            resumes: Default::default(),
            per_worker: (0..workers).map(|_| Padded::default()).collect(),
            other: Padded::default(),
            idle: Mutex::default(),
            idle_cv: Condvar::new(),
            park_lock: Mutex::new(()),
            park_cv: Condvar::new(),
            rx,
            on_thread_start,
            on_thread_stop,
            panic_handler,
        }
    }

    /// The parity new jobs are stamped with.
    #[inline]
    pub(crate) fn parity(&self) -> usize {
        self.flags.0.epoch.load(Ordering::Relaxed) & 1
    }

    /// Counts a job as accepted in the current epoch and returns the parity it was counted with,
    /// to stamp the job with: call before handing it to the queue.
    ///
    /// The epoch is read again once the count is in. Had a `wait_idle` flipped it in between,
    /// that wait may have read the counters without this job and returned, and the next
    /// `wait_idle` drains the other parity: no wait would ever count the job, not even one that
    /// begins after it was accepted. The count then moves to the new parity. SeqCst pairs with
    /// `wait_idle` storing the new epoch and then reading the counters: either that wait sees
    /// this count, or this thread sees the new epoch.
    #[inline]
    pub(crate) fn accept(&self) -> usize {
        let mut parity = self.parity();
        loop {
            self.accepted.0[parity].fetch_add(1, Ordering::SeqCst);
            let now = self.flags.0.epoch.load(Ordering::SeqCst) & 1;
            if now == parity {
                return parity;
            }
            self.reject(parity);
            parity = now;
        }
    }

    /// Undoes [`accept`](Self::accept) for a job the queue did not take, and wakes `wait_idle`
    /// waiters: one may have counted the job in flight between the two, and a rejected job never
    /// finishes, so nothing else would tell it that the count went down.
    fn reject(&self, parity: usize) {
        // SeqCst pairs with `wait_idle` announcing itself and then reading the counters, as in
        // `Running::finish`.
        self.rejected[parity].fetch_add(1, Ordering::SeqCst);
        if self.flags.0.idle_waiters.load(Ordering::SeqCst) > 0 {
            self.notify_idle();
        }
    }

    /// Starts running a job accepted with `parity` on this thread: counts it and pushes its frame.
    #[inline]
    pub(crate) fn begin<'a>(self: &'a Arc<Self>, parity: usize) -> Running<'a> {
        self.begin_as(context::worker_index(self), parity)
    }

    /// [`begin`](Self::begin) on a thread known to be worker `worker` of this pool (`None`: not
    /// one of its workers). The worker loop knows its index: passing it down saves the
    /// thread-local look-ups on the hot path.
    #[inline]
    fn begin_as<'a>(self: &'a Arc<Self>, worker: Option<usize>, parity: usize) -> Running<'a> {
        let (counters, single_writer) = match worker {
            Some(i) => (&self.per_worker[i].0, true),
            None => (&self.other.0, false),
        };
        bump(&counters.started, single_writer, Ordering::Release);
        let frame = context::push(self, worker.is_some(), parity);
        Running {
            shared: self,
            counters,
            single_writer,
            parity,
            frame,
        }
    }

    /// Runs a fire-and-forget job with full accounting; its panic goes to the panic handler.
    /// `worker` is as in [`begin_as`](Self::begin_as).
    #[inline]
    fn run_plain(
        self: &Arc<Self>,
        worker: Option<usize>,
        job: crate::job::PlainJob,
        parity: usize,
    ) {
        let running = self.begin_as(worker, parity);
        let result = panic::catch_unwind(AssertUnwindSafe(|| job.call()));
        let panicked = match result {
            Ok(()) => false,
            Err(payload) => {
                self.handle_panic(payload);
                true
            }
        };
        running.finish(panicked);
    }

    /// Runs a dequeued job on worker `worker` of this pool (`None`: on another thread).
    #[inline]
    pub(crate) fn run_envelope(self: &Arc<Self>, worker: Option<usize>, envelope: Envelope) {
        match envelope.work {
            Work::Plain(job) => self.run_plain(worker, job, envelope.parity),
            // The slot knows its parity and does its own accounting (a waiter may have run it).
            Work::Shared(task) => {
                task.run();
                // If the handle is gone, this drops the result: a panic there stays here.
                drop_quietly(task);
            }
        }
    }

    /// Runs a job on this thread that was never handed to the queue (caller-runs, a `map` item
    /// the queue had no room for): it is accepted and run in one go.
    pub(crate) fn run_inline(self: &Arc<Self>, work: Work) {
        let parity = self.accept();
        match work {
            Work::Plain(job) => self.run_plain(context::worker_index(self), job, parity),
            Work::Shared(task) => {
                task.set_parity(parity);
                task.run();
            }
        }
    }

    /// Hands a fire-and-forget job's panic to the handler, if any; a panicking handler is caught.
    fn handle_panic(&self, payload: Box<dyn Any + Send>) {
        match &self.panic_handler {
            Some(handler) => {
                if let Err(again) = panic::catch_unwind(AssertUnwindSafe(|| handler(payload))) {
                    drop_quietly(again);
                }
            }
            // The payload is user data: its `Drop` may panic.
            None => drop_quietly(payload),
        }
    }

    /// Runs a hook, catching its panic.
    pub(crate) fn run_hook(&self, start: bool) {
        let hook = if start {
            &self.on_thread_start
        } else {
            &self.on_thread_stop
        };
        if let Some(hook) = hook {
            if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| hook())) {
                drop_quietly(payload);
            }
        }
    }

    pub(crate) fn stop_now(&self) -> bool {
        self.flags.0.stop_now.load(Ordering::Relaxed)
    }

    pub(crate) fn set_stop_now(&self) {
        self.flags.0.stop_now.store(true, Ordering::SeqCst);
    }

    // ---------------------------------------------------------------- sending

    /// Tries to hand `work` to the queue once, with accounting.
    #[inline]
    pub(crate) fn try_send(&self, tx: &Sender<Envelope>, work: Work) -> Result<(), Work> {
        let parity = self.accept();
        work.set_parity(parity);
        match tx.try_send(Envelope { work, parity }) {
            Ok(()) => {
                self.after_send();
                Ok(())
            }
            Err(TrySendError::Full(e)) | Err(TrySendError::Disconnected(e)) => {
                self.reject(parity);
                Err(e.work)
            }
        }
    }

    /// Wakes `wait_idle` helpers that might be waiting for a job that just entered the queue.
    #[inline]
    fn after_send(&self) {
        if self.flags.0.idle_waiters.load(Ordering::SeqCst) > 0 {
            self.notify_idle();
        }
    }

    /// Hands `work` to the queue, waiting while it is full: until `deadline` if there is one
    /// (then the work comes back), else for as long as it takes. Without a deadline, on a thread
    /// that is running one of this pool's jobs, a full queue makes the job run inline instead
    /// (caller-runs: that thread may be what the queue is waiting for).
    pub(crate) fn send(
        self: &Arc<Self>,
        tx: &Sender<Envelope>,
        mut work: Work,
        deadline: Option<Instant>,
    ) -> Result<(), Work> {
        loop {
            match self.try_send(tx, work) {
                Ok(()) => return Ok(()),
                Err(w) => work = w,
            }
            if deadline.is_none() && context::in_pool(self) {
                self.run_inline(work);
                return Ok(());
            }
            if self.capacity == 0 {
                match self.send_rendezvous(tx, work, deadline)? {
                    None => return Ok(()),
                    Some(w) => work = w,
                }
                continue;
            }
            // Resume only once the queue has drained to the low-water mark, spinning briefly
            // first: a producer that resumed at the first free slot would fail again at the
            // next job, waking once per job and burning a core the workers need.
            if !self.spin_until_low(tx, deadline) {
                self.park(tx, deadline);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) && tx.is_full() {
                return Err(work);
            }
        }
    }

    /// Capacity 0: nothing would wake a parked producer, so block in the channel's own `send`, in
    /// slices. `Ok(None)`: sent. `Ok(Some(work))`: a slice ended without a taker, retry.
    /// `Err(work)`: the deadline passed.
    fn send_rendezvous(
        &self,
        tx: &Sender<Envelope>,
        work: Work,
        deadline: Option<Instant>,
    ) -> Result<Option<Work>, Work> {
        let now = Instant::now();
        let slice = match deadline {
            Some(d) if d <= now => return Err(work),
            Some(d) => (d - now).min(RENDEZVOUS_SLICE),
            None => RENDEZVOUS_SLICE,
        };
        let parity = self.accept();
        work.set_parity(parity);
        match tx.send_timeout(Envelope { work, parity }, slice) {
            Ok(()) => {
                self.after_send();
                Ok(None)
            }
            Err(SendTimeoutError::Timeout(e)) | Err(SendTimeoutError::Disconnected(e)) => {
                self.reject(parity);
                Ok(Some(e.work))
            }
        }
    }

    /// Spins briefly for the queue to drain to the low-water mark; true if it did.
    fn spin_until_low(&self, tx: &Sender<Envelope>, deadline: Option<Instant>) -> bool {
        let start = Instant::now();
        let end = deadline.map_or(start + SPIN, |d| d.min(start + SPIN));
        let mut i = 0u32;
        loop {
            if tx.len() <= self.low_water {
                return true;
            }
            for _ in 0..(1 << i.min(6)) {
                crate::sync::spin_loop();
            }
            i += 1;
            if Instant::now() >= end {
                return tx.len() <= self.low_water;
            }
        }
    }

    /// Parks until the queue has drained to the low-water mark (or the deadline passes).
    fn park(&self, tx: &Sender<Envelope>, deadline: Option<Instant>) {
        let mut guard = lock(&self.park_lock);
        loop {
            // Announce, then re-check exactly what the workers wake us on. SeqCst pairs with the
            // SeqCst head update in crossbeam's `recv` followed by the worker's SeqCst load of
            // `parked` (see `after_dequeue`): one of the two sides sees the other.
            self.flags.0.parked.store(true, Ordering::SeqCst);
            if tx.len() <= self.low_water {
                return;
            }
            let mut wait = PARK_GUARD;
            if let Some(d) = deadline {
                let now = Instant::now();
                if now >= d {
                    return;
                }
                wait = wait.min(d - now);
            }
            guard = self
                .park_cv
                .wait_timeout(guard, wait)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Called by a worker after each dequeue: wakes parked producers once the queue has drained
    /// to the low-water mark, so that a producer wakes once per many jobs, not once per job.
    #[inline]
    pub(crate) fn after_dequeue(&self) {
        let flags = &self.flags.0;
        if flags.parked.load(Ordering::SeqCst)
            && self.rx.len() <= self.low_water
            && flags.parked.swap(false, Ordering::SeqCst)
        {
            let _guard = lock(&self.park_lock);
            self.park_cv.notify_all();
        }
    }

    // ---------------------------------------------------------------- observing

    /// The counters, summed. Read so that each field is a sound value: `completed` before
    /// `started` (so `active` is never negative), `started` before `accepted`.
    pub(crate) fn stats(&self) -> Stats {
        let blocks = || {
            self.per_worker
                .iter()
                .map(|p| &p.0)
                .chain(std::iter::once(&self.other.0))
        };
        let mut completed = 0u64;
        let mut panicked = 0u64;
        for c in blocks() {
            completed = completed
                .wrapping_add(c.finished[0].load(Ordering::Acquire))
                .wrapping_add(c.finished[1].load(Ordering::Acquire));
            panicked = panicked.wrapping_add(c.panicked.load(Ordering::Acquire));
        }
        let rejected: u64 = self
            .rejected
            .iter()
            .map(|r| r.load(Ordering::Acquire))
            .sum();
        let started: u64 = blocks().map(|c| c.started.load(Ordering::Acquire)).sum();
        let accepted: u64 = self
            .accepted
            .0
            .iter()
            .map(|a| a.load(Ordering::Acquire))
            .sum();
        let queued = accepted
            .saturating_sub(rejected)
            .saturating_sub(started)
            .min(self.capacity as u64);
        Stats {
            workers: self.workers,
            capacity: self.capacity,
            queued: queued as usize,
            active: started.saturating_sub(completed) as usize,
            completed,
            panicked,
        }
    }

    // ---------------------------------------------------------------- idle

    /// An upper bound on the jobs of `parity` that were in flight and not suspended at one moment
    /// during this call, never below the true count at that moment; so 0 proves a moment at
    /// which every such job had finished or was suspended.
    ///
    /// Each job's events happen in the order accept, (suspend, resume)*, finish (or accept,
    /// reject), and every counter only grows. Terms subtracted (suspends, finished, rejected) are
    /// read first, terms added (resumes, accepted) last: with t* the moment between the two
    /// groups, each read value errs on the side of a larger result than the true count at t*.
    fn unsuspended_in_flight(&self, parity: usize) -> i64 {
        let suspends = self.suspends[parity].load(Ordering::SeqCst);
        let rejected = self.rejected[parity].load(Ordering::SeqCst);
        let finished: u64 = self
            .per_worker
            .iter()
            .map(|p| &p.0)
            .chain(std::iter::once(&self.other.0))
            .map(|c| c.finished[parity].load(Ordering::SeqCst))
            .fold(0, u64::wrapping_add);
        let resumes = self.resumes[parity].load(Ordering::SeqCst);
        let accepted = self.accepted.0[parity].load(Ordering::SeqCst);
        accepted
            .wrapping_sub(finished)
            .wrapping_sub(rejected)
            .wrapping_sub(suspends)
            .wrapping_add(resumes) as i64
    }

    /// Counts a job of `parity` as suspended in a boundpool wait. The first time a job is
    /// suspended (`first`), it is also registered as lingering until it finishes, under the epoch
    /// it was accepted in, which this returns for the job's frame to keep.
    ///
    /// That epoch is the current one or the one draining: the job is in flight and not yet
    /// suspended, so the drain of its epoch cannot have finished, nor the epoch moved on twice.
    /// Registered before the suspension is counted, so a drain that passes over the job finds it
    /// registered.
    pub(crate) fn suspend(&self, parity: usize, first: bool) -> Option<u64> {
        let lingering = first.then(|| {
            let mut state = lock(&self.idle);
            let current = state.generation;
            let epoch = if (current & 1) as usize == parity {
                current
            } else {
                current.wrapping_sub(1)
            };
            *state.lingering.entry(epoch).or_insert(0) += 1;
            epoch
        });
        self.suspends[parity].fetch_add(1, Ordering::SeqCst);
        if self.flags.0.idle_waiters.load(Ordering::SeqCst) > 0 {
            self.notify_idle();
        }
        lingering
    }

    /// Counts a suspended job of `parity` as running again.
    pub(crate) fn resume(&self, parity: usize) {
        self.resumes[parity].fetch_add(1, Ordering::SeqCst);
    }

    /// A job registered as lingering under `epoch` has finished.
    fn unlinger(&self, epoch: u64) {
        let mut state = lock(&self.idle);
        if let Some(count) = state.lingering.get_mut(&epoch) {
            *count -= 1;
            if *count == 0 {
                state.lingering.remove(&epoch);
            }
        }
        state.notified = state.notified.wrapping_add(1);
        self.idle_cv.notify_all();
    }

    fn notify_idle(&self) {
        let mut state = lock(&self.idle);
        state.notified = state.notified.wrapping_add(1);
        self.idle_cv.notify_all();
    }

    /// Sleeps on `idle_cv` until notified, or until `deadline` if there is one; `Err` (with the
    /// guard) once the deadline has passed.
    fn wait_for_change<'a>(
        &self,
        state: MutexGuard<'a, IdleState>,
        deadline: Option<Instant>,
    ) -> Result<MutexGuard<'a, IdleState>, MutexGuard<'a, IdleState>> {
        match deadline {
            None => Ok(self
                .idle_cv
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner)),
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    return Err(state);
                }
                Ok(self
                    .idle_cv
                    .wait_timeout(state, d - now)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0)
            }
        }
    }

    /// Waits until no job accepted in an epoch up to `target` lingers (see `suspend`), or until
    /// `deadline`; true if none does.
    fn wait_lingering(
        &self,
        mut state: MutexGuard<'_, IdleState>,
        target: u64,
        deadline: Option<Instant>,
    ) -> bool {
        loop {
            if state.lingering.range(..=target).next().is_none() {
                return true;
            }
            state = match self.wait_for_change(state, deadline) {
                Ok(state) => state,
                Err(_) => return false,
            };
        }
    }

    /// `wait_idle` / `wait_idle_timeout`: true once every job accepted before the call has
    /// finished (inside a job: or is suspended in a boundpool wait, or lies beneath this call on
    /// this thread's stack); false if `deadline` passed first.
    pub(crate) fn wait_idle(self: &Arc<Self>, deadline: Option<Instant>) -> bool {
        // Our own frames are beneath this call: suspending them takes them out of the count.
        let _suspension = Suspension::new();
        // A worker runs queued jobs itself: every worker might be waiting here.
        let helper = context::worker_index(self).is_some();
        // Outside every job nothing can be waiting for this thread: it waits for the jobs
        // suspended in a boundpool wait as well.
        let outside = !context::in_any_job();
        let mut state = lock(&self.idle);
        self.flags.0.idle_waiters.fetch_add(1, Ordering::SeqCst);
        let target = state.generation;
        let idle = loop {
            if state.drained_below > target {
                break true;
            }
            if !state.draining {
                state.generation += 1;
                state.draining = true;
                self.flags
                    .0
                    .epoch
                    .store(state.generation as usize, Ordering::SeqCst);
            }
            let parity = ((state.generation - 1) & 1) as usize;
            if self.unsuspended_in_flight(parity) <= 0 {
                state.draining = false;
                state.drained_below = state.generation;
                state.notified = state.notified.wrapping_add(1);
                self.idle_cv.notify_all();
                continue;
            }
            if helper {
                let seen = state.notified;
                drop(state);
                let ran = match self.rx.try_recv() {
                    Ok(envelope) => {
                        // As in the worker loop: producers parked on the full queue wait for it
                        // to drain, and may be waiting for exactly this dequeue.
                        self.after_dequeue();
                        self.run_envelope(context::worker_index(self), envelope);
                        true
                    }
                    Err(_) => false,
                };
                state = lock(&self.idle);
                // Whatever happened while the lock was free (a job finishing on another thread,
                // a producer sending after our `try_recv`, another waiter finishing a drain)
                // notified under the lock, and that notification went to no one: look again
                // instead of sleeping through it.
                if ran || state.notified != seen || !self.rx.is_empty() {
                    continue;
                }
            }
            state = match self.wait_for_change(state, deadline) {
                Ok(state) => state,
                Err(timed_out) => {
                    state = timed_out;
                    break false;
                }
            };
        };
        // Every job accepted up to `target` has now finished or is suspended in a wait, and a
        // suspended one is registered as lingering (see `suspend`). Outside every job, wait for
        // those to finish as well: they do so without this thread's help.
        let idle = idle && (!outside || self.wait_lingering(state, target, deadline));
        self.flags.0.idle_waiters.fetch_sub(1, Ordering::SeqCst);
        idle
    }
}

#[cfg(test)]
mod tests;
