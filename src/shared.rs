//! The state the pool, its workers and every job slot share: the counters behind [`Stats`], the
//! idle epochs behind `wait_idle`, the parking lot of producers blocked on a full queue, the hooks,
//! and the accounting that every path running a job goes through ([`Shared::begin`]). The producer
//! side lives in `shared/send.rs`, `wait_idle` in `shared/idle.rs`.
//!
//! # Counting without a shared hot cache line
//! Each worker owns a cache-padded [`Counters`] block that only it writes; jobs run by any other
//! thread (caller-runs, a waiter running the job it waits on) go to one shared block. Producers add
//! to `accepted`. Sums are read in an order that makes every field a sound bound (see
//! [`Shared::stats`] and [`Shared::unsuspended_in_flight`]).
//!
//! # Idle epochs
//! Every job is stamped with the current epoch's slot (the epoch modulo [`EPOCH_SLOTS`], called
//! its parity) when it is accepted, and every counter is kept per slot. `wait_idle` moves the
//! epoch on at the moment it is called and waits for the epochs before to have no job that is in
//! flight and not suspended; jobs accepted after the call carry a later epoch's slot and cannot
//! hold it up, so a stream of new submissions cannot starve a waiter. Up to `EPOCH_SLOTS - 1`
//! old epochs drain at once (in order), so a wait that begins while others drain still moves the
//! epoch at its call: the epochs it waits for hold exactly the jobs accepted before it, which a
//! `wait_idle` inside a job may then run (it must never wait for a job it may not run).
//!
//! The epochs' counts pass over jobs suspended in a boundpool wait (a `wait_idle` inside a job
//! must not wait for a job that may be waiting for it). A job suspended for the first time is
//! registered as lingering under its epoch until it finishes; a `wait_idle` outside every job
//! waits for the lingering jobs of the epochs it waits for as well.

use std::any::Any;
use std::collections::{BTreeMap, VecDeque};
use std::panic::{self, AssertUnwindSafe};
use std::time::Duration;

use crate::context::{self, Suspension};
use crate::job::{Begun, Envelope, Runner, Stamp, Work, EPOCH_SLOTS};
use crate::queue::{Receiver, SendTimeoutError, Sender, TrySendError};
use crate::stats::Stats;
use crate::sync::thread::{self, Thread};
use crate::sync::{drop_quietly, lock, Arc, Condvar, Instant, Mutex, MutexGuard, PoisonError};
use crate::sync::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// A user callback run on worker threads.
pub(crate) type Hook = Arc<dyn Fn() + Send + Sync + 'static>;
/// The user's panic handler.
pub(crate) type PanicHandler = Arc<dyn Fn(Box<dyn Any + Send>) + Send + Sync + 'static>;

/// The deepest a thread nests jobs that it runs itself, inside the job it is running: a job that
/// submits to its own full pool (caller-runs), a wait that runs the queued job it waits on
/// (`join`, the end of a `scope`, `map`), a `wait_idle` that helps. Each level is a few hundred
/// bytes of boundpool frames plus the job's own. Past it, a re-entrant submit is accepted into
/// the overflow beyond the queue's capacity (the workers run it at loop level, see
/// [`Stats::overflow`](crate::Stats::overflow)), and a wait runs the job on a helper thread
/// while it blocks: so however long a chain of jobs, no thread's stack holds more than this many
/// of them.
///
/// Helper threads are themselves bounded: a pool runs at most [`MAX_HELPERS`](crate::MAX_HELPERS)
/// at once. A wait that would need one more (a program nesting waits some 8,000 jobs deep) does
/// not run the job it waits for: `join`, `wait_idle` and `map` panic in the waiting job, with a
/// message that says so (a job's panic, counted in `Stats::panicked` unless caught), and the
/// end of a `scope`, which cannot unwind before its jobs are done, waits for a worker.
#[cfg(not(shuttle))]
pub const MAX_NESTING: usize = 32;
/// The model-checking build nests at most 2 jobs, so that the models reach the overflow and the
/// helper threads in a few steps.
#[cfg(shuttle)]
pub const MAX_NESTING: usize = 2;

/// The most helper threads (see [`MAX_NESTING`]) a pool runs at once: with 32 jobs nested on
/// each, a chain of waits about 8,000 deep. Each is a thread with the pool's stack size, parked
/// in a wait while the jobs above it run.
pub const MAX_HELPERS: usize = 256;

/// How long a producer spins on a full queue before it parks: about the cost of a futex wake-up
/// here, so that a queue that drains within that time never costs a sleep.
const SPIN: Duration = Duration::from_micros(15);
/// A parked producer waits for the queue to drain to the low-water mark, but once the queue's
/// length has not moved for this long while a slot is free (no worker takes a job), it takes the
/// slot: the workers may be waiting for what the producer does next, and would never drain the
/// queue further. The parked producer re-checks this often.
#[cfg(not(shuttle))]
pub(crate) const STALL: Duration = Duration::from_millis(1);
/// In the model-checking build the clock is virtual (each reading advances it 5 µs): a shorter
/// stall keeps a stalled producer's loop to a few scheduling steps.
#[cfg(shuttle)]
pub(crate) const STALL: Duration = Duration::from_micros(50);
/// At capacity 0 a producer blocks in the channel's own `send`, in slices this long, so that it
/// re-reads the idle epoch now and then (a job stamped long ago could hold up a `wait_idle`).
const RENDEZVOUS_SLICE: Duration = Duration::from_millis(2);

/// Aligns its content to 128 bytes (two cache lines: x86 prefetches pairs) so that counters
/// written by different threads never share a line.
#[repr(align(128))]
#[derive(Default)]
pub(crate) struct Padded<T>(pub(crate) T);

/// Per-runner counters; monotonic.
#[derive(Default)]
pub(crate) struct Counters {
    /// Jobs started, by the slot of the epoch they were accepted in.
    started: [AtomicU64; EPOCH_SLOTS],
    /// Jobs finished (panicked or not), by the slot of the epoch they were accepted in.
    finished: [AtomicU64; EPOCH_SLOTS],
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
    /// The idle epoch; modulo `EPOCH_SLOTS`, the slot new jobs are stamped with.
    epoch: AtomicUsize,
    /// Threads inside `wait_idle`: finishing, suspending and submitting wake them.
    idle_waiters: AtomicUsize,
    /// Some producer is parked on a full queue (set by producers, cleared by the waking worker).
    parked: AtomicBool,
    /// `shutdown_now` was called: workers stop taking jobs.
    stop_now: AtomicBool,
    /// Envelopes in `Shared::overflow` (read by the workers before every dequeue).
    overflow: AtomicUsize,
    /// Capacity 0 only: workers between their look at the overflow and their `recv` (see
    /// `Shared::wake_a_worker`).
    looking: AtomicUsize,
}

/// `wait_idle`'s bookkeeping, under `Shared::idle`.
#[derive(Default)]
struct IdleState {
    /// The current epoch (mirrored in `Flags::epoch`).
    generation: u64,
    /// Every epoch below this one has drained; those from it up to `generation - 1` are
    /// draining (at most `EPOCH_SLOTS - 1` of them, so that their slots differ).
    drained_below: u64,
    /// Bumped by every notification of `idle_cv`, so that a waiter that let go of the lock to
    /// run a job can tell whether it missed one.
    notified: u64,
    /// Jobs that have been suspended in a boundpool wait and not finished yet, by the epoch they
    /// were accepted in. The epochs' counts pass over suspended jobs; a `wait_idle` outside
    /// every job waits for these too.
    lingering: BTreeMap<u64, usize>,
}

/// The user's settings that threads running the pool's jobs need.
pub(crate) struct Hooks {
    pub(crate) stack_size: Option<usize>,
    pub(crate) on_thread_start: Option<Hook>,
    pub(crate) on_thread_stop: Option<Hook>,
    pub(crate) panic_handler: Option<PanicHandler>,
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
    /// Jobs handed to the queue (or run inline), by epoch slot; written by producers.
    accepted: Padded<[AtomicU64; EPOCH_SLOTS]>,
    /// Jobs counted in `accepted` whose send then failed (full queue, timeout).
    rejected: [AtomicU64; EPOCH_SLOTS],
    /// Suspend and resume events, by epoch slot (see `context::Suspension`).
    suspends: [AtomicU64; EPOCH_SLOTS],
    resumes: [AtomicU64; EPOCH_SLOTS],
    /// One block per worker, written only by that worker.
    per_worker: Box<[Padded<Counters>]>,
    /// Jobs run by any other thread.
    other: Padded<Counters>,
    idle: Mutex<IdleState>,
    idle_cv: Condvar,
    /// Producers parked on a full queue (see `Shared::park`), unparked at the low-water mark.
    parked_producers: Mutex<Vec<Thread>>,
    /// Jobs held beyond the queue's capacity, which the workers take before the queue's: at the
    /// back, jobs submitted by a thread nested [`MAX_NESTING`] deep into its own full pool; at
    /// the front, jobs a `wait_idle` took out of the queue and may not run (accepted after it
    /// began), in queue order.
    overflow: Mutex<VecDeque<Envelope>>,
    /// The workers' stack size, for helper threads.
    stack_size: Option<usize>,
    /// Helper threads running now (see [`Shared::run_on_helper`]).
    helpers: AtomicUsize,
    /// A receiver of the queue, for `wait_idle` helping on a worker and for `shutdown_now`.
    pub(crate) rx: Receiver<Envelope>,
    on_thread_start: Option<Hook>,
    on_thread_stop: Option<Hook>,
    panic_handler: Option<PanicHandler>,
}

/// A job being run: created by [`Shared::begin_as`], consumed by [`Running::finish`].
pub(crate) struct Running<'a> {
    shared: &'a Shared,
    counters: &'a Counters,
    single_writer: bool,
    begun: Begun,
}

impl Running<'_> {
    /// Counts the job as finished, wakes `wait_idle` waiters, and pops its frame. Always inlined
    /// (see [`Shared::run_plain`]).
    #[inline(always)]
    pub(crate) fn finish(self, panicked: bool) {
        let (counters, single_writer) = (self.counters, self.single_writer);
        let lingering = context::pop(self.begun.frame);
        if panicked {
            bump(&counters.panicked, single_writer, Ordering::Release);
        }
        // SeqCst pairs with `wait_idle` announcing itself in `idle_waiters` and then reading the
        // counters: either it sees this increment or this thread sees it waiting. The slot is
        // below `EPOCH_SLOTS` already: the modulo (a mask) spares a bounds check.
        bump(
            &counters.finished[self.begun.parity % EPOCH_SLOTS],
            single_writer,
            Ordering::SeqCst,
        );
        if let Some(epoch) = lingering {
            // After the counters: a `wait_idle` this releases reads stats that include the job.
            self.shared.unlinger(epoch);
        } else {
            self.shared.notify_idle_waiters();
        }
    }
}

/// How a job's slot counts and runs its job (see [`Runner`]).
impl Runner for Shared {
    fn begin(self: Arc<Self>, parity: usize) -> Begun {
        self.begin_as(context::worker_index(&*self), parity).begun
    }

    fn finish(&self, begun: Begun, panicked: bool) {
        let (counters, single_writer) = self.counters(begun.worker);
        Running {
            shared: self,
            counters,
            single_writer,
            begun,
        }
        .finish(panicked);
    }

    fn run_nested(&self, job: &mut (dyn FnMut() + Send)) {
        Shared::run_nested(self, job);
    }

    fn can_nest(&self) -> bool {
        Shared::can_nest(self)
    }

    fn too_deep(&self, wait: &str) -> ! {
        Shared::too_deep(self, wait)
    }
}

impl Shared {
    /// The shared state of a pool; `None` if the per-worker counters cannot be allocated.
    pub(crate) fn new(
        workers: usize,
        capacity: usize,
        rx: Receiver<Envelope>,
        hooks: Hooks,
    ) -> Option<Shared> {
        let mut per_worker = Vec::new();
        per_worker.try_reserve_exact(workers).ok()?;
        per_worker.extend((0..workers).map(|_| Padded::default()));
        Some(Shared {
            workers,
            capacity,
            low_water: capacity / 4,
            flags: Padded::default(),
            accepted: Padded::default(),
            rejected: Default::default(),
            suspends: Default::default(),
            resumes: Default::default(),
            per_worker: per_worker.into_boxed_slice(),
            other: Padded::default(),
            idle: Mutex::default(),
            idle_cv: Condvar::new(),
            parked_producers: Mutex::default(),
            overflow: Mutex::default(),
            stack_size: hooks.stack_size,
            helpers: AtomicUsize::new(0),
            rx,
            on_thread_start: hooks.on_thread_start,
            on_thread_stop: hooks.on_thread_stop,
            panic_handler: hooks.panic_handler,
        })
    }

    /// The epoch slot new jobs are stamped with.
    #[inline]
    pub(crate) fn parity(&self) -> usize {
        self.flags.0.epoch.load(Ordering::Relaxed) % EPOCH_SLOTS
    }

    /// Counts a job as accepted in the current epoch and returns the stamp to seal it with: call
    /// before handing it to the queue.
    ///
    /// The epoch is read again once the count is in. Had a `wait_idle` moved it on in between,
    /// that wait may have read the counters without this job and returned, and later waits
    /// drain later epochs: no wait would ever count the job, not even one that begins after it
    /// was accepted. The count then moves to the new epoch's slot. SeqCst pairs with
    /// `wait_idle` storing the new epoch and then reading the counters: either that wait sees
    /// this count, or this thread sees the new epoch.
    ///
    /// The count before this job's is its place in the parity's sequence: with the parity, the
    /// job's [`Stamp`].
    #[inline]
    pub(crate) fn accept(&self) -> Stamp {
        let mut parity = self.parity();
        loop {
            let seq = self.accepted.0[parity].fetch_add(1, Ordering::SeqCst) as u32;
            let now = self.flags.0.epoch.load(Ordering::SeqCst) % EPOCH_SLOTS;
            if now == parity {
                return Stamp { parity, seq };
            }
            self.reject(parity);
            parity = now;
        }
    }

    /// Undoes [`accept`](Self::accept) for a job the queue did not take, and wakes `wait_idle`
    /// waiters: one may have counted the job in flight between the two, and a rejected job never
    /// finishes, so nothing else would tell it that the count went down.
    pub(crate) fn reject(&self, parity: usize) {
        // SeqCst pairs with `wait_idle` announcing itself and then reading the counters, as in
        // `Running::finish`.
        self.rejected[parity].fetch_add(1, Ordering::SeqCst);
        self.notify_idle_waiters();
    }

    /// The counters of the jobs that worker `worker` runs (`None`: any other thread), and
    /// whether that thread is their only writer.
    #[inline]
    fn counters(&self, worker: Option<usize>) -> (&Counters, bool) {
        match worker {
            Some(i) => (&self.per_worker[i].0, true),
            None => (&self.other.0, false),
        }
    }

    /// Starts running a job accepted with `parity` on this thread, which is worker `worker` of
    /// this pool (`None`: not one of its workers): counts it and pushes its frame. The worker
    /// loop knows its index: passing it down saves the thread-local look-ups on the hot path.
    #[inline(always)]
    fn begin_as<'a>(self: &'a Arc<Self>, worker: Option<usize>, parity: usize) -> Running<'a> {
        let (counters, single_writer) = self.counters(worker);
        bump(
            &counters.started[parity % EPOCH_SLOTS],
            single_writer,
            Ordering::Release,
        );
        let frame = context::push(self, worker.is_some(), parity);
        Running {
            shared: self,
            counters,
            single_writer,
            begun: Begun {
                worker,
                parity,
                frame,
            },
        }
    }

    /// Runs a fire-and-forget job with full accounting; its panic goes to the panic handler.
    /// `worker` is as in [`begin_as`](Self::begin_as). Always inlined, as are the functions
    /// from the worker loop to here: left to itself the compiler stopped inlining them once the
    /// loop grew (the overflow, the wake-ups), and the calls cost about 35 instructions a job.
    #[inline(always)]
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

    /// Runs a job just taken from the queue, on worker `worker` of this pool (`None`: on another
    /// thread). First wakes parked producers if the queue has drained to the low-water mark: they
    /// may be waiting for exactly this dequeue, whoever made it.
    #[inline(always)]
    pub(crate) fn run_dequeued(self: &Arc<Self>, worker: Option<usize>, envelope: Envelope) {
        self.after_dequeue();
        self.run_envelope(worker, envelope);
    }

    /// Runs what was taken from the queue or the overflow.
    #[inline(always)]
    fn run_envelope(self: &Arc<Self>, worker: Option<usize>, envelope: Envelope) {
        match envelope {
            Envelope::Plain(job, parity, _) => self.run_plain(worker, job, parity as usize),
            // The slot knows its parity and does its own accounting (a waiter may have run it).
            Envelope::Shared(task) => {
                task.run();
                // If the handle is gone, this drops the result: a panic there stays here.
                drop_quietly(task);
            }
            Envelope::Wake => {}
        }
    }

    /// Runs a job on this thread that was never handed to the queue (caller-runs, a `map` item
    /// the queue had no room for): it is accepted and run in one go, nested in the caller's job.
    pub(crate) fn run_inline(self: &Arc<Self>, work: Work) {
        let stamp = self.accept();
        match work {
            Work::Plain(job) => self.run_plain(context::worker_index(&**self), job, stamp.parity),
            Work::Shared(task) => {
                task.set_stamp(stamp);
                task.run();
            }
        }
    }

    /// Whether this thread can run a job it claims without growing its stack past
    /// [`MAX_NESTING`]: nested here, or on a helper thread while fewer than [`MAX_HELPERS`] run.
    /// Checked before a job is claimed; a few racing threads may overshoot the helpers' bound.
    pub(crate) fn can_nest(&self) -> bool {
        context::nesting() < MAX_NESTING || self.helper_available()
    }

    /// Whether fewer than [`MAX_HELPERS`] helper threads run now.
    pub(crate) fn helper_available(&self) -> bool {
        self.helpers.load(Ordering::Relaxed) < MAX_HELPERS
    }

    /// The waiting job's way out when it can run the job it waits for neither nested nor on a
    /// helper thread (see [`MAX_NESTING`]): a panic that says so, rather than a stack overflow.
    #[cold]
    #[inline(never)]
    pub(crate) fn too_deep(&self, wait: &str) -> ! {
        panic!(
            "boundpool: a {wait} nested more than {MAX_NESTING} jobs deep, with {MAX_HELPERS} \
             helper threads of this pool already running, cannot run the job it waits for \
             without overflowing a stack; the waiting job panics instead (see MAX_NESTING)"
        )
    }

    /// Runs `f`, a job this thread has claimed inside the job it is running, nested on this
    /// thread while fewer than [`MAX_NESTING`] jobs are nested here, else on a helper thread.
    pub(crate) fn run_nested(&self, f: impl FnOnce() + Send) {
        if context::nesting() < MAX_NESTING {
            f();
        } else {
            self.run_on_helper(f);
        }
    }

    /// Runs `f` (a job this thread has claimed) on a new thread and waits for it: past
    /// [`MAX_NESTING`], where nesting it here could overflow this thread's stack.
    ///
    /// The helper stands in for this thread: it has its name and the pool's stack size, runs the
    /// pool's start and stop hooks around the job, and this thread's jobs count as suspended
    /// while it waits, so the number of the pool's jobs running at once is what it would be had
    /// this thread run `f` itself. Should the system refuse a thread, `f` runs here after all.
    #[cold]
    #[inline(never)]
    fn run_on_helper(&self, f: impl FnOnce() + Send) {
        let _suspension = Suspension::new();
        self.helpers.fetch_add(1, Ordering::Relaxed);
        let job = Mutex::new(Some(f));
        let run = || {
            if let Some(f) = lock(&job).take() {
                f();
            }
        };
        let name = thread::current().name().map(str::to_owned);
        let spawned = crate::sync::run_on_thread(name, self.stack_size, || {
            self.run_hook(true);
            run();
            self.run_hook(false);
        });
        self.helpers.fetch_sub(1, Ordering::Relaxed);
        if spawned.is_err() {
            run();
        }
    }

    /// Hands a fire-and-forget job's panic to the handler, if any; a panicking handler is caught.
    #[cold]
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

    // ---------------------------------------------------------------- observing

    /// Every block of counters: one per worker, and the one of the other threads.
    fn counter_blocks(&self) -> impl Iterator<Item = &Counters> {
        self.per_worker
            .iter()
            .map(|p| &p.0)
            .chain(std::iter::once(&self.other.0))
    }

    /// The sum of one counter over every block (SeqCst loads, for `wait_idle`'s bounds).
    fn sum_counters(&self, counter: impl Fn(&Counters) -> &AtomicU64) -> u64 {
        self.counter_blocks()
            .map(|c| counter(c).load(Ordering::SeqCst))
            .fold(0, u64::wrapping_add)
    }

    /// The counters, summed. Read so that each field is a sound value: `completed` before
    /// `started` (so `active` is never negative), `started` before `accepted`.
    pub(crate) fn stats(&self) -> Stats {
        let mut completed = 0u64;
        let mut panicked = 0u64;
        for c in self.counter_blocks() {
            for finished in &c.finished {
                completed = completed.wrapping_add(finished.load(Ordering::Acquire));
            }
            panicked = panicked.wrapping_add(c.panicked.load(Ordering::Acquire));
        }
        // A panicking job is counted as panicked just before it is counted as finished (so that
        // whatever its finishing releases sees both): read in between, it is in the one sum and
        // not yet in the other. It counts once both are in.
        let panicked = panicked.min(completed);
        let rejected: u64 = self
            .rejected
            .iter()
            .map(|r| r.load(Ordering::Acquire))
            .sum();
        let started: u64 = self
            .counter_blocks()
            .flat_map(|c| &c.started)
            .map(|started| started.load(Ordering::Acquire))
            .fold(0, u64::wrapping_add);
        let accepted: u64 = self
            .accepted
            .0
            .iter()
            .map(|a| a.load(Ordering::Acquire))
            .sum();
        let overflow = self.flags.0.overflow.load(Ordering::Acquire);
        let queued = accepted
            .saturating_sub(rejected)
            .saturating_sub(started)
            .min((self.capacity as u64).saturating_add(overflow as u64));
        Stats {
            workers: self.workers,
            capacity: self.capacity,
            queued: queued as usize,
            overflow,
            active: started.saturating_sub(completed) as usize,
            completed,
            panicked,
        }
    }
}

mod idle;
mod send;

#[cfg(test)]
mod tests;
