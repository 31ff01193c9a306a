//! Schedule-exploring models of the pool's own logic, under the `shuttle` model checker.
//!
//! Built only with `RUSTFLAGS="--cfg shuttle"`, which swaps the crate's threads, locks, atomics,
//! clock and queue for shuttle-controlled ones (see `src/sync.rs` and `src/queue.rs`):
//!
//! ```text
//! RUSTFLAGS="--cfg shuttle" cargo test --release --target-dir target/shuttle --test shuttle
//! ```
//!
//! Each model runs a small pool (1–2 workers, capacity 0–2, a handful of jobs) under shuttle's
//! random scheduler and its PCT scheduler, `BOUNDPOOL_SHUTTLE_ITERS` schedules each (default
//! [`DEFAULT_ITERS`]) per configuration. A failing schedule is printed with a seed to replay it.
//! Shuttle fails a schedule in which every thread is blocked, so each model also checks that
//! nothing waits forever: a lost wake-up of a blocked thread (a latch, a handle, a scope, a
//! `wait_idle`, a worker waiting for a job) is a deadlock here, and so is a worker that never
//! exits (shuttle runs every thread to its end). A lost job shows as a failed count.
//!
//! What this build changes in the pool (see `src/sync.rs`):
//! - `MAX_NESTING` is 2, so that a few jobs reach the overflow and the helper threads (which
//!   are shuttle's scoped threads, unnamed);
//! - a producer parked on a full queue re-checks every `STALL` (50 µs of the virtual clock here,
//!   1 ms in a normal build) and takes a free slot once the queue has not moved for that long. Its
//!   park is a yield that lets the other threads run once, so a parked producer never blocks: a
//!   lost unpark costs it one more round, not a deadlock, and a producer that waits on for ever
//!   (beside a free slot, say) shows as shuttle's step bound being exceeded (`exceeded
//!   max_steps bound`) rather than as a deadlock.
//!
//! A failure prints shuttle's schedule (for `shuttle::replay`) and, under the random scheduler,
//! a seed (`SHUTTLE_RANDOM_SEED=<seed>` replays it); `SHUTTLE_CAPTURE_BACKTRACE=1` adds every
//! blocked thread's stack to a deadlock report.
//!
//! Not modelled:
//! - memory orderings: shuttle explores interleavings under sequential consistency, so a missing
//!   `SeqCst` pairing shows only if it also breaks under some interleaving;
//! - crossbeam-channel itself, replaced by a Mutex + Condvar queue with its semantics;
//! - timed waits on condition variables, which never time out under shuttle:
//!   `wait_idle_timeout` and `JobHandle::wait_timeout` are not exercised. The timeouts that
//!   read the virtual clock are: the queue's own (`shutdown_timeout`, the rendezvous slices of
//!   producers at capacity 0, see `src/queue.rs`), and a parked producer's (`submit_timeout`
//!   and the stall above);
//! - thread names and stack sizes (shuttle's threads are coroutines), and panics (a panicking
//!   job is caught as in a normal build, but no model panics on purpose).

#![cfg(shuttle)]

use std::cell::Cell;
use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Weak};
use std::time::Duration;

use boundpool::{Job, JobError, Stats, WorkerPool, MAX_NESTING};
use shuttle::sync::{Condvar, Mutex};
use shuttle::thread;

/// Schedules per configuration and scheduler when `BOUNDPOOL_SHUTTLE_ITERS` is not set.
const DEFAULT_ITERS: usize = 25_000;
/// PCT's bug depth: the number of priority changes per schedule.
const PCT_DEPTH: usize = 3;

fn iterations() -> usize {
    match std::env::var("BOUNDPOOL_SHUTTLE_ITERS") {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("BOUNDPOOL_SHUTTLE_ITERS={v:?} is not a number")),
        Err(_) => DEFAULT_ITERS,
    }
}

/// Runs `model` for each configuration under the random and the PCT schedulers.
fn explore<C>(configs: &[C], model: fn(C))
where
    C: Copy + Debug + Send + Sync + 'static,
{
    let iters = iterations();
    for &config in configs {
        eprintln!("model configuration {config:?}: {iters} random + {iters} PCT schedules");
        shuttle::check_random(move || model(config), iters);
        shuttle::check_pct(move || model(config), iters, PCT_DEPTH);
    }
}

/// The current thread, as a number that is never 0.
fn me() -> usize {
    usize::from(thread::current().id()) + 1
}

/// Whether the current thread is one of a pool's workers (named `boundpool-{index}`). The
/// model's own threads and the pool's helper threads (shuttle's scoped threads) have no such
/// name.
fn on_a_worker() -> bool {
    thread::current()
        .name()
        .is_some_and(|name| name.starts_with("boundpool-"))
}

/// One record per job: how many times it ran, on which thread it last ran, and whether that
/// thread was one of a pool's workers.
struct Ran {
    counts: Vec<AtomicUsize>,
    threads: Vec<AtomicUsize>,
    on_worker: Vec<AtomicBool>,
}

impl Ran {
    fn new(jobs: usize) -> Arc<Ran> {
        Arc::new(Ran {
            counts: (0..jobs).map(|_| AtomicUsize::new(0)).collect(),
            threads: (0..jobs).map(|_| AtomicUsize::new(0)).collect(),
            on_worker: (0..jobs).map(|_| AtomicBool::new(false)).collect(),
        })
    }
    fn hit(&self, job: usize) {
        self.threads[job].store(me(), SeqCst);
        self.on_worker[job].store(on_a_worker(), SeqCst);
        self.counts[job].fetch_add(1, SeqCst);
    }
    fn count(&self, job: usize) -> usize {
        self.counts[job].load(SeqCst)
    }
    /// The thread job `job` last ran on (see [`me`]); 0 if it never ran.
    fn thread(&self, job: usize) -> usize {
        self.threads[job].load(SeqCst)
    }
    fn on_worker(&self, job: usize) -> bool {
        self.on_worker[job].load(SeqCst)
    }
    fn len(&self) -> usize {
        self.counts.len()
    }
    fn total(&self) -> usize {
        (0..self.counts.len()).map(|job| self.count(job)).sum()
    }
    fn assert_each_once(&self, what: &str) {
        for job in 0..self.counts.len() {
            assert_eq!(
                self.count(job),
                1,
                "{what}: job {job} ran {} times",
                self.count(job)
            );
        }
    }
    /// Every job that has run so far ran on a worker: none on a thread waiting outside the
    /// pool's jobs (a `join`, a scope's end or a `map` there blocks until a worker ran it).
    fn assert_ran_on_workers(&self, what: &str) {
        for job in 0..self.counts.len() {
            if self.count(job) > 0 {
                assert!(
                    self.on_worker(job),
                    "{what}: job {job} ran off the workers (on thread {})",
                    self.thread(job)
                );
            }
        }
    }
}

shuttle::thread_local! {
    /// How many of a model's jobs this thread is running, nested in one another.
    static DEPTH: Cell<usize> = const { Cell::new(0) };
}

/// Counts a model's job on its thread's stack while alive, and checks the nesting bound: a
/// thread runs at most `MAX_NESTING` jobs nested inside the one it runs at its loop level (past
/// it a re-entrant submit goes to the overflow and a wait runs the job on a helper thread).
struct Nested;

impl Nested {
    fn enter(what: &str) -> Nested {
        let depth = DEPTH.with(|d| {
            d.set(d.get() + 1);
            d.get()
        });
        assert!(
            depth <= MAX_NESTING + 1,
            "{what}: {depth} jobs nested on one thread (MAX_NESTING = {MAX_NESTING})"
        );
        Nested
    }
}

impl Drop for Nested {
    fn drop(&mut self) {
        DEPTH.with(|d| d.set(d.get() - 1));
    }
}

/// Counts events (a worker stopping, a gate opening) and lets a thread wait for a number of
/// them.
#[derive(Default)]
struct Latch {
    count: Mutex<usize>,
    changed: Condvar,
}

impl Latch {
    fn up(&self) {
        *self.count.lock().unwrap() += 1;
        self.changed.notify_all();
    }
    fn wait_for(&self, n: usize) {
        let mut count = self.count.lock().unwrap();
        while *count < n {
            count = self.changed.wait(count).unwrap();
        }
    }
}

/// A pool whose worker threads count themselves out on `stopped` as they exit.
fn pool_with_latch(workers: usize, capacity: usize) -> (WorkerPool, Arc<Latch>) {
    let stopped = Arc::new(Latch::default());
    let latch = Arc::clone(&stopped);
    let pool = WorkerPool::builder()
        .workers(workers)
        .capacity(capacity)
        .on_thread_stop(move || latch.up())
        .build()
        .expect("a shuttle pool builds");
    (pool, stopped)
}

/// The final stats and whether the thread that took them was outside the pool.
type Outcome = Arc<Mutex<Option<(Stats, bool)>>>;

/// Releases one holder's share of the pool; the holder that turns out to be the last one shuts
/// it down gracefully and records the stats.
fn release(pool: Arc<WorkerPool>, outcome: &Outcome, on_worker: bool) {
    if let Some(pool) = Arc::into_inner(pool) {
        let stats = pool.shutdown();
        *outcome.lock().unwrap() = Some((stats, !on_worker));
    }
}

// ------------------------------------------------------------------ graceful shutdown

/// (workers, capacity, whether a job holds a share of the pool and may be the one to drop it)
type ShutdownConfig = (usize, usize, bool);

/// Graceful shutdown racing with producers on other threads: the pool is shared by two producers
/// and the main thread, and whichever lets go last shuts it down (in one variant that may be a
/// job, on a worker). Every accepted job runs exactly once, `completed` counts them, and every
/// worker thread ends.
fn shutdown_races_producers((workers, capacity, job_holds_pool): ShutdownConfig) {
    let (pool, stopped) = pool_with_latch(workers, capacity);
    let pool = Arc::new(pool);
    let outcome: Outcome = Arc::default();
    let jobs = 4 + usize::from(job_holds_pool);
    let ran = Ran::new(jobs);
    let producers: Vec<_> = (0..2)
        .map(|p| {
            let (pool, ran, outcome) = (Arc::clone(&pool), Arc::clone(&ran), outcome.clone());
            thread::spawn(move || {
                let (a, b) = (2 * p, 2 * p + 1);
                let r = Arc::clone(&ran);
                pool.submit(move || r.hit(a));
                let r = Arc::clone(&ran);
                drop(pool.spawn(move || r.hit(b))); // detached handle: still runs
                release(pool, &outcome, false);
            })
        })
        .collect();
    if job_holds_pool {
        let (share, ran2, outcome2) = (Arc::clone(&pool), Arc::clone(&ran), outcome.clone());
        pool.submit(move || {
            ran2.hit(4);
            release(share, &outcome2, true);
        });
    }
    release(pool, &outcome, false);
    for p in producers {
        p.join().unwrap();
    }
    stopped.wait_for(workers);
    ran.assert_each_once("graceful shutdown");
    let (stats, outside) = outcome.lock().unwrap().expect("someone shut the pool down");
    if outside {
        assert_eq!(stats.completed, jobs as u64, "{stats:?}");
        assert_eq!(
            (stats.queued, stats.active, stats.panicked),
            (0, 0, 0),
            "{stats:?}"
        );
    }
}

#[test]
fn graceful_shutdown_racing_producers() {
    explore(
        &[
            (1, 0, false),
            (1, 1, false),
            (2, 1, false),
            (2, 2, false),
            (1, 1, true),
            (2, 0, true),
        ],
        shutdown_races_producers,
    );
}

/// (workers, capacity, whether the timeout is long enough for the jobs)
type TimeoutConfig = (usize, usize, bool);

/// `shutdown_timeout` (the one shutdown with a deadline; the queue's timeouts are modelled on the
/// virtual clock): with time enough it joins every worker and reports every job; with a deadline
/// that passes first it may give up, and then the detached workers still run every accepted job
/// and exit.
fn shutdown_timeout_runs_everything((workers, capacity, long): TimeoutConfig) {
    use std::time::Duration;
    const JOBS: usize = 3;
    let (pool, stopped) = pool_with_latch(workers, capacity);
    let ran = Ran::new(JOBS);
    for job in 0..JOBS {
        let r = Arc::clone(&ran);
        pool.submit(move || r.hit(job));
    }
    let timeout = if long {
        Duration::from_secs(3600)
    } else {
        Duration::from_micros(20)
    };
    match pool.shutdown_timeout(timeout) {
        Ok(stats) => {
            assert_eq!(stats.completed, JOBS as u64, "{stats:?}");
            ran.assert_each_once("shutdown_timeout, joined");
        }
        Err(_) => assert!(!long, "an hour was not enough"),
    }
    stopped.wait_for(workers);
    ran.assert_each_once("shutdown_timeout");
}

#[test]
fn shutdown_timeout_joins_or_detaches_without_losing_jobs() {
    explore(
        &[(1, 1, true), (2, 0, true), (1, 2, false), (2, 1, false)],
        shutdown_timeout_runs_everything,
    );
}

// ------------------------------------------------------------------ shutdown_now

/// (workers, capacity, whether another thread joins the handles while `shutdown_now` runs)
type NowConfig = (usize, usize, bool);

/// `shutdown_now` racing with running and queued jobs (and, in one variant, with a thread joining
/// their handles). Nothing is lost and nothing runs twice: the jobs handed back plus the jobs
/// that ran make up every accepted job, each once; running the handed-back plain jobs runs each
/// once; dropping handed-back `spawn` jobs makes exactly their handles report `Cancelled`. The
/// joining thread is outside the pool's jobs, so it never takes a queued job to run itself: it
/// blocks until a worker ran the job or the job came back and was cancelled, and every job that
/// ran before `shutdown_now` returned ran on a worker.
fn shutdown_now_races_jobs((workers, capacity, racing_joiner): NowConfig) {
    const JOBS: usize = 4;
    let pool = WorkerPool::new(workers, capacity);
    let ran = Ran::new(JOBS);
    let mut handles = Vec::new();
    for job in 0..JOBS {
        let r = Arc::clone(&ran);
        if job % 2 == 0 {
            pool.submit(move || r.hit(job));
        } else {
            handles.push((
                job,
                pool.spawn(move || {
                    r.hit(job);
                    job
                }),
            ));
        }
    }
    let joiner = racing_joiner.then(|| {
        let handles = std::mem::take(&mut handles);
        thread::spawn(move || {
            handles
                .into_iter()
                .map(|(job, h)| (job, h.join()))
                .collect::<Vec<_>>()
        })
    });
    let returned: Vec<Job> = pool.shutdown_now();
    // Every worker has been joined: nothing of the pool runs any more.
    let ran_by_pool = (0..JOBS).filter(|&j| ran.count(j) == 1).count();
    for job in 0..JOBS {
        assert!(ran.count(job) <= 1, "job {job} ran twice");
    }
    ran.assert_ran_on_workers("shutdown_now, before the jobs came back");
    // The joiner took no job out of play, so every job either ran or came back.
    assert_eq!(
        returned.len() + ran_by_pool,
        JOBS,
        "{} handed back, {ran_by_pool} ran",
        returned.len()
    );
    let (plain, with_handle): (Vec<Job>, Vec<Job>) = returned
        .into_iter()
        .partition(|job| format!("{job:?}").contains("submit"));
    let cancelled_at_most = with_handle.len();
    drop(with_handle); // cancels them
    for job in plain {
        job.run();
    }
    let results = match joiner {
        Some(joiner) => joiner.join().unwrap(),
        None => handles
            .into_iter()
            .map(|(job, h)| (job, h.join()))
            .collect(),
    };
    let mut cancelled = 0;
    for (job, result) in results {
        match result {
            Ok(value) => {
                assert_eq!(value, job, "job {job} delivered its own value");
                assert_eq!(ran.count(job), 1, "job {job} delivered a value");
            }
            Err(JobError::Cancelled) => {
                assert_eq!(ran.count(job), 0, "cancelled job {job} ran");
                cancelled += 1;
            }
            Err(e) => panic!("job {job}: {e}"),
        }
    }
    assert_eq!(
        cancelled, cancelled_at_most,
        "every dropped job with a handle, and no other, reports Cancelled"
    );
    for job in (0..JOBS).step_by(2) {
        assert_eq!(ran.count(job), 1, "plain job {job}");
    }
}

#[test]
fn shutdown_now_racing_jobs() {
    explore(
        &[
            (1, 1, false),
            (1, 2, false),
            (2, 2, false),
            (2, 0, false),
            (1, 2, true),
            (2, 1, true),
        ],
        shutdown_now_races_jobs,
    );
}

// ------------------------------------------------------------------ wait_idle

/// `wait_idle` from outside: two threads each submit jobs and then wait; each wait returns, and
/// only after the jobs its thread submitted before the call have finished (the other thread's
/// submissions and waits race with it, flipping the idle epoch under it). A third thread makes a
/// `try_submit` that may fail on a full queue while the waits count it.
fn wait_idle_outside((workers, capacity): (usize, usize)) {
    let pool = Arc::new(WorkerPool::new(workers, capacity));
    let ran = Ran::new(4);
    let waiters: Vec<_> = (0..2)
        .map(|t| {
            let (pool, ran) = (Arc::clone(&pool), Arc::clone(&ran));
            thread::spawn(move || {
                for job in [2 * t, 2 * t + 1] {
                    let r = Arc::clone(&ran);
                    pool.submit(move || r.hit(job));
                }
                pool.wait_idle();
                for job in [2 * t, 2 * t + 1] {
                    assert_eq!(ran.count(job), 1, "wait_idle returned before job {job} ran");
                }
            })
        })
        .collect();
    let trier = {
        let pool = Arc::clone(&pool);
        thread::spawn(move || {
            let _ = pool.try_submit(|| ());
        })
    };
    for w in waiters {
        w.join().unwrap();
    }
    trier.join().unwrap();
    Arc::into_inner(pool)
        .expect("all threads joined")
        .shutdown();
    ran.assert_each_once("wait_idle outside");
}

#[test]
fn wait_idle_from_outside() {
    explore(&[(1, 0), (1, 1), (2, 1), (2, 2)], wait_idle_outside);
}

/// `wait_idle` inside a job: the job waits for the two jobs submitted before it (on one worker it
/// runs them itself if they are still queued) and must see them finished when the wait returns.
/// Meanwhile another thread submits and `try_submit`s, and the main thread waits too.
fn wait_idle_inside((workers, capacity): (usize, usize)) {
    let pool = Arc::new(WorkerPool::new(workers, capacity));
    let ran = Ran::new(3);
    for job in 0..2 {
        let r = Arc::clone(&ran);
        pool.submit(move || r.hit(job));
    }
    let waiter = {
        let (share, ran) = (Arc::clone(&pool), Arc::clone(&ran));
        pool.spawn(move || {
            share.wait_idle();
            (ran.count(0), ran.count(1))
        })
    };
    let producer = {
        let (pool, ran) = (Arc::clone(&pool), Arc::clone(&ran));
        thread::spawn(move || {
            let _ = pool.try_submit(|| ());
            let r = Arc::clone(&ran);
            pool.submit(move || r.hit(2));
        })
    };
    pool.wait_idle();
    assert_eq!((ran.count(0), ran.count(1)), (1, 1), "outer wait_idle");
    producer.join().unwrap();
    assert_eq!(waiter.join().unwrap(), (1, 1), "wait_idle inside a job");
    Arc::into_inner(pool)
        .expect("all threads joined")
        .shutdown();
    ran.assert_each_once("wait_idle inside");
}

#[test]
fn wait_idle_from_inside_a_job() {
    explore(&[(2, 1), (1, 0), (1, 1), (1, 2)], wait_idle_inside);
}

/// How the job in [`wait_idle_outside_a_suspended_job`] waits.
#[derive(Clone, Copy, Debug)]
enum Waits {
    /// `join` on a job it spawned.
    Join,
    /// The end of a scope with a job in it.
    Scope,
    /// `wait_idle`, inside the job, for a job spawned before it.
    WaitIdle,
}

/// `wait_idle` from outside while a job accepted before the call waits for another job (in a
/// `join`, at the end of a scope, in its own `wait_idle`), on two workers possibly blocked there,
/// suspended: the outside wait returns only once that job has finished. Only a `wait_idle` called
/// inside a job may pass over jobs suspended in a wait.
fn wait_idle_outside_a_suspended_job((workers, capacity, waits): (usize, usize, Waits)) {
    let pool = Arc::new(WorkerPool::new(workers, capacity));
    let ran = Ran::new(2);
    let outer = {
        let (share, ran) = (Arc::clone(&pool), Arc::clone(&ran));
        pool.spawn(move || {
            let r = Arc::clone(&ran);
            match waits {
                Waits::Join => share.spawn(move || r.hit(1)).join().unwrap(),
                Waits::Scope => share.scope(|s| s.submit(move || r.hit(1))),
                Waits::WaitIdle => {
                    share.submit(move || r.hit(1));
                    share.wait_idle();
                }
            }
            ran.hit(0);
        })
    };
    pool.wait_idle();
    assert_eq!(
        ran.count(0),
        1,
        "wait_idle returned while the waiting job had not finished"
    );
    outer.join().unwrap();
    Arc::into_inner(pool).expect("jobs done").shutdown();
    ran.assert_each_once("suspended job");
}

#[test]
fn wait_idle_from_outside_waits_for_suspended_jobs() {
    explore(
        &[
            (1, 1, Waits::Join),
            (2, 1, Waits::Join),
            (2, 2, Waits::Join),
            (2, 1, Waits::Scope),
            (2, 2, Waits::WaitIdle),
        ],
        wait_idle_outside_a_suspended_job,
    );
}

// ------------------------------------------------------------------ backpressure

/// (capacity, whether a job drains the queue through `wait_idle` instead of the worker loop)
type FullConfig = (usize, bool);

/// Producers blocked on a full queue always resume: two producers push three jobs each into a
/// one-worker pool, and every job runs once. In one variant the first job calls `wait_idle`, so
/// the queue drains through the waiting worker's own `try_recv` rather than the worker loop
/// (the producers' jobs, accepted after its wait began, are set aside into the overflow for the
/// worker loop, never run beneath the wait). Under shuttle a parked producer's park is a yield
/// that re-checks the queue (see the module docs), so a lost unpark does not hang here; a
/// producer that never resumes shows as the step bound exceeded, a waiter that never returns as
/// a deadlock.
fn blocked_producers_wake((capacity, drain_in_wait): FullConfig) {
    const PER_PRODUCER: usize = 3;
    let pool = Arc::new(WorkerPool::new(1, capacity));
    let ran = Ran::new(2 * PER_PRODUCER + 1);
    let waiting_job = if drain_in_wait {
        let (share, r) = (Arc::clone(&pool), Arc::clone(&ran));
        Some(pool.spawn(move || {
            share.wait_idle();
            r.hit(2 * PER_PRODUCER);
        }))
    } else {
        ran.hit(2 * PER_PRODUCER);
        None
    };
    let producers: Vec<_> = (0..2)
        .map(|p| {
            let (pool, ran) = (Arc::clone(&pool), Arc::clone(&ran));
            thread::spawn(move || {
                for k in 0..PER_PRODUCER {
                    let (r, job) = (Arc::clone(&ran), p * PER_PRODUCER + k);
                    pool.submit(move || r.hit(job));
                }
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    if let Some(job) = waiting_job {
        job.join().unwrap(); // and with it the job's share of the pool is gone
    }
    let stats = Arc::into_inner(pool).expect("producers joined").shutdown();
    ran.assert_each_once("blocked producers");
    let submitted = 2 * PER_PRODUCER + usize::from(drain_in_wait);
    assert_eq!(stats.completed, submitted as u64, "{stats:?}");
}

#[test]
fn producers_blocked_on_a_full_queue_are_woken() {
    explore(
        &[
            (0, false),
            (1, false),
            (2, false),
            (0, true),
            (1, true),
            (2, true),
        ],
        blocked_producers_wake,
    );
}

// ------------------------------------------------------------------ scope

/// A scope inside a job on a one-worker pool, joining its scoped handles, completes (the regression
/// of ee508b5: a queue entry kept a job the scope had already run alive, and the scope waited for
/// it forever). The main thread races with a job of its own and a join.
fn scope_in_a_job(capacity: usize) {
    let pool = Arc::new(WorkerPool::new(1, capacity));
    let outer = {
        let share = Arc::clone(&pool);
        pool.spawn(move || {
            let mut borrowed = [0u32; 2];
            let sum = share.scope(|s| {
                let [a, b] = &mut borrowed;
                let first = s.spawn(move || {
                    *a = 1;
                    10
                });
                s.submit(move || *b = 2);
                let second = s.spawn(|| 20);
                first.join().unwrap() + second.join().unwrap()
            });
            sum + borrowed[0] + borrowed[1]
        })
    };
    let other = pool.spawn(|| 7);
    assert_eq!(other.join().unwrap(), 7, "the main thread's own job");
    assert_eq!(
        outer.join().unwrap(),
        33,
        "the scope's results (10 + 20) and both borrowed writes (1 + 2)"
    );
    let stats = Arc::into_inner(pool).expect("jobs done").shutdown();
    assert_eq!(stats.completed, 5, "{stats:?}");
}

#[test]
fn scope_inside_a_job_on_one_worker_completes() {
    explore(&[0, 1, 2], scope_in_a_job);
}

/// A scoped job spawning more scoped jobs while the scope's owner, the model's main thread,
/// waits: every job runs once, and on a worker (the owner is outside the pool's jobs, so its
/// wait at the end of the scope never runs a still-queued job itself), and the idle accounting
/// stays exact, so that the `wait_idle` calls after the scope (which drain both epoch parities)
/// return. The first `wait_idle` flips the epoch, so the scope's jobs are stamped with parity 1
/// rather than the default 0.
fn scope_spawning_from_jobs((workers, capacity): (usize, usize)) {
    let pool = WorkerPool::new(workers, capacity);
    pool.wait_idle();
    let ran = Ran::new(3);
    pool.scope(|s| {
        let r = &ran;
        s.submit(move || {
            r.hit(0);
            s.submit(move || r.hit(1));
            s.submit(move || r.hit(2));
        });
    });
    ran.assert_each_once("nested scoped jobs");
    ran.assert_ran_on_workers("scoped jobs of a scope on the main thread");
    pool.wait_idle();
    pool.wait_idle();
    let stats = pool.shutdown();
    assert_eq!(stats.completed, 3, "{stats:?}");
}

#[test]
fn scoped_jobs_spawning_scoped_jobs_keep_the_accounting() {
    explore(&[(1, 0), (1, 1), (2, 1), (2, 2)], scope_spawning_from_jobs);
}

/// `map` from the main thread and from inside a job (there, on one worker, the consumer runs
/// items itself): results in input order; a `Map` dropped half-way leaves nothing to wait for
/// forever. The main thread is outside the pool's jobs: every item of its maps runs on a
/// worker, none on the consumer.
fn map_in_order((workers, capacity): (usize, usize)) {
    let pool = Arc::new(WorkerPool::new(workers, capacity));
    let items = Ran::new(4 + 5);
    let r = Arc::clone(&items);
    let squares: Vec<u32> = pool
        .map(0..4u32, move |x| {
            r.hit(x as usize);
            x * x
        })
        .collect();
    assert_eq!(
        squares,
        [0, 1, 4, 9],
        "map from the main thread, in input order"
    );
    let inside = {
        let share = Arc::clone(&pool);
        pool.spawn(move || share.map(1..=3u32, |x| x * 10).collect::<Vec<_>>())
    };
    let r = Arc::clone(&items);
    let mut partial = pool.map(0..5u32, move |x| {
        r.hit(4 + x as usize);
        x + 1
    });
    assert_eq!(
        partial.next(),
        Some(1),
        "the first item of the map dropped half-way"
    );
    drop(partial);
    assert_eq!(
        inside.join().unwrap(),
        [10, 20, 30],
        "map inside a job, in input order"
    );
    pool.wait_idle();
    Arc::into_inner(pool).expect("jobs done").shutdown();
    for item in 0..4 {
        assert_eq!(items.count(item), 1, "item {item} of the collected map");
    }
    assert_eq!(items.count(4), 1, "the item the dropped map yielded");
    for item in 5..9 {
        assert!(
            items.count(item) <= 1,
            "item {item} of the dropped map ran twice"
        );
    }
    items.assert_ran_on_workers("map items consumed on the main thread");
}

#[test]
fn map_yields_in_order_inside_and_outside_jobs() {
    explore(&[(1, 0), (1, 1), (2, 1)], map_in_order);
}

// ------------------------------------------------------------------ join

/// `JobHandle::join` racing with the worker dequeuing the same job: the job runs once and its
/// value is delivered. Both joining threads (the main thread and another) are outside the pool's
/// jobs, so neither runs the job, even while it is still queued: it runs on a worker.
fn join_races_dequeue((workers, capacity): (usize, usize)) {
    let pool = WorkerPool::new(workers, capacity);
    let ran = Ran::new(3);
    let handles: Vec<_> = (0..3)
        .map(|job| {
            let r = Arc::clone(&ran);
            pool.spawn(move || {
                r.hit(job);
                job * 10
            })
        })
        .collect();
    let mut handles = handles.into_iter();
    let first = handles.next().unwrap();
    let other = thread::spawn(move || first.join().unwrap());
    for (job, h) in handles.enumerate() {
        assert_eq!(
            h.join().unwrap(),
            (job + 1) * 10,
            "job {} joined on the main thread",
            job + 1
        );
    }
    assert_eq!(other.join().unwrap(), 0, "job 0 joined on another thread");
    let stats = pool.shutdown();
    ran.assert_each_once("join");
    ran.assert_ran_on_workers("jobs joined from outside");
    assert_eq!(stats.completed, 3, "{stats:?}");
}

#[test]
fn join_racing_the_worker_runs_once() {
    explore(&[(1, 0), (1, 1), (1, 2), (2, 2)], join_races_dequeue);
}

// ------------------------------------------------------------------ a producer beside a free slot

/// How the producer of [`beside_a_free_slot`] hands its jobs to the pool.
#[derive(Clone, Copy, Debug)]
enum Verb {
    Submit,
    /// `submit_timeout` with a timeout far beyond the model (an hour of the virtual clock).
    SubmitTimeout,
    /// `spawn`, the handles joined once the latch is open.
    Spawn,
}

/// (workers, capacity, verb); every capacity here is below 4, so the low-water mark is 0.
type FreeSlotConfig = (usize, usize, Verb);

/// The issue's scenario: the model thread submits `workers + capacity` jobs that each wait on a
/// latch it opens only once its last submit has returned. The workers take the first jobs and
/// block on the latch. If a later submit finds the queue full, the producer parks until the
/// queue drains to the low-water mark (0); when a worker then takes a job and blocks, the queue
/// stays above the mark with a slot free, and nothing will ever drain it further. The producer
/// must notice that the queue has not moved for `STALL` and take the free slot.
///
/// A bug shows as: a producer that waits for the mark for ever (before the fix, a deadlock:
/// shuttle's park never timed out; now its park is a yield, so the step bound is exceeded); a
/// `submit_timeout` that gives its job back with an hour to go (a panic here); a job lost or run
/// twice (the counts), or run off the workers.
fn beside_a_free_slot((workers, capacity, verb): FreeSlotConfig) {
    let jobs = workers + capacity;
    let pool = WorkerPool::new(workers, capacity);
    let open = Arc::new(Latch::default());
    let ran = Ran::new(jobs);
    let mut handles = Vec::new();
    for job in 0..jobs {
        let (open, ran) = (Arc::clone(&open), Arc::clone(&ran));
        let work = move || {
            open.wait_for(1);
            ran.hit(job);
            job
        };
        match verb {
            Verb::Submit => pool.submit(move || {
                work();
            }),
            Verb::SubmitTimeout => {
                let hour = Duration::from_secs(3600);
                let submitted = pool.submit_timeout(
                    move || {
                        work();
                    },
                    hour,
                );
                assert!(
                    submitted.is_ok(),
                    "submit_timeout gave job {job} back with an hour to go"
                );
            }
            Verb::Spawn => handles.push(pool.spawn(work)),
        }
    }
    open.up();
    for (job, handle) in handles.into_iter().enumerate() {
        assert_eq!(handle.join().unwrap(), job, "job {job}'s handle");
    }
    let stats = pool.shutdown();
    ran.assert_each_once("beside a free slot");
    ran.assert_ran_on_workers("beside a free slot");
    assert_eq!(stats.completed, jobs as u64, "{stats:?}");
}

#[test]
fn producer_beside_a_free_slot() {
    explore(
        &[
            (2, 2, Verb::Submit),
            (2, 2, Verb::SubmitTimeout),
            (2, 2, Verb::Spawn),
            (1, 2, Verb::Submit),
        ],
        beside_a_free_slot,
    );
}

// ------------------------------------------------------------------ chains past MAX_NESTING

/// The links of a chain: three times `MAX_NESTING`, so that a chain into a full queue overflows
/// more than once.
const LINKS: usize = 3 * MAX_NESTING;

/// A chain of jobs each submitting the next, alternately with `submit` and `spawn` (its handle
/// dropped, so a slot goes through the overflow too), through a `Weak` to the pool: links keep
/// no pool alive.
struct Chain {
    pool: Weak<WorkerPool>,
    links: Arc<Ran>,
    /// Whether link k was handed to the pool: link 0 by the model thread, link k + 1 by link k
    /// once it found the pool still there.
    accepted: Vec<AtomicBool>,
    /// Up once the last link has run.
    end: Latch,
    /// Per link: up once it has started.
    started: Vec<Latch>,
    /// Whether each link, once it has submitted the next, waits for it to start.
    waits: bool,
    /// Holds the second worker (in the waiting variant) until link `MAX_NESTING` is about to
    /// submit the next.
    blocker: Latch,
    /// What `shutdown_now` handed back, whoever called it.
    handed_back: Mutex<Vec<Job>>,
}

impl Chain {
    fn new(pool: &Arc<WorkerPool>, waits: bool) -> Arc<Chain> {
        let chain = Chain {
            pool: Arc::downgrade(pool),
            links: Ran::new(LINKS),
            accepted: (0..LINKS).map(|k| AtomicBool::new(k == 0)).collect(),
            end: Latch::default(),
            started: (0..LINKS).map(|_| Latch::default()).collect(),
            waits,
            blocker: Latch::default(),
            handed_back: Mutex::default(),
        };
        Arc::new(chain)
    }

    /// Link `k`: records itself and, while the pool is still there, submits link `k + 1` (run
    /// inline, overflowed or queued, as the pool decides), waits for it to start if the chain
    /// [`waits`](Chain::waits), then lets go of its share of the pool.
    fn link(self: Arc<Chain>, k: usize) {
        let _nested = Nested::enter("a chain link");
        self.links.hit(k);
        self.started[k].up();
        if k + 1 == LINKS {
            self.end.up();
            return;
        }
        let Some(pool) = self.pool.upgrade() else {
            return; // the pool is stopping: link k + 1 is never accepted
        };
        self.accepted[k + 1].store(true, SeqCst);
        if k == MAX_NESTING {
            self.blocker.up();
        }
        let next = {
            let chain = Arc::clone(&self);
            move || chain.link(k + 1)
        };
        if k % 2 == 0 {
            pool.submit(next);
        } else {
            drop(pool.spawn(next));
        }
        if self.waits {
            self.started[k + 1].wait_for(1);
        }
        self.let_go(pool);
    }

    /// Lets go of a share of the pool; the last share stops it with `shutdown_now` (on whatever
    /// thread lets go of it: the model's, or a worker inside a link) and keeps what comes back.
    fn let_go(&self, pool: Arc<WorkerPool>) {
        if let Some(pool) = Arc::into_inner(pool) {
            let jobs = pool.shutdown_now();
            self.handed_back.lock().unwrap().extend(jobs);
        }
    }
}

/// Starts a chain into a full queue: its head (link 0) waits on a gate until the model thread
/// has queued `capacity` fillers (with one worker, busy with the head, they fill the queue),
/// then runs. In the waiting variant a blocker holds the second worker until link `MAX_NESTING`
/// (the first that overflows when the queue stays full) is about to submit the next, so that
/// the fillers fill the queue there too, and the second worker races to drain the queue and
/// block on it as the overflow takes the link. Returns the chain and the records of the fillers
/// (and the blocker, last); filler `capacity` is for the caller to submit while the chain runs.
fn start_chain(pool: &Arc<WorkerPool>, capacity: usize, waits: bool) -> (Arc<Chain>, Arc<Ran>) {
    let chain = Chain::new(pool, waits);
    let fillers = Ran::new(capacity + 1 + usize::from(waits));
    let gate = Arc::new(Latch::default());
    {
        let (chain, gate) = (Arc::clone(&chain), Arc::clone(&gate));
        pool.submit(move || {
            gate.wait_for(1);
            chain.link(0);
        });
    }
    if waits {
        assert_eq!(
            pool.workers(),
            2,
            "the waiting variant needs a second worker"
        );
        let (chain, r) = (Arc::clone(&chain), Arc::clone(&fillers));
        pool.submit(move || {
            chain.blocker.wait_for(1);
            r.hit(capacity + 1);
        });
    }
    for f in 0..capacity {
        let r = Arc::clone(&fillers);
        pool.submit(move || r.hit(f));
    }
    gate.up();
    (chain, fillers)
}

/// (workers, capacity, whether each link waits for the next to start)
type ChainConfig = (usize, usize, bool);

/// A job starts a chain of `LINKS` links, each submitting the next into its own pool while the
/// queue is full of other jobs (and, at capacity 0, always, unless a worker is idle). Past
/// `MAX_NESTING` nested links the next one goes to the overflow, which the workers take at loop
/// level before the queue. A worker blocked on the empty queue must be woken for it
/// (`Envelope::Wake`; at capacity 0 the wake-up lands only on a worker blocked in `recv`, and is
/// retried while a worker is counted as `looking`, between its look at the overflow and its
/// `recv`). In the waiting variant (two workers) each link waits for the next to start, so an
/// overflowed link can only run on the other worker, which may be blocked on the empty queue:
/// there, a wake-up the worker misses is a deadlock.
///
/// Every link runs exactly once, no thread nests more than `MAX_NESTING` jobs inside its own,
/// and once the last link has run, `wait_idle` from outside returns with every job counted
/// (`completed` = links + fillers, nothing queued, overflowed or running). An overflowed link
/// that no worker takes shows as a deadlock (the model thread waits for the last link for ever;
/// or the step bound exceeded, should the model thread be parked on the full queue meanwhile); a
/// link lost or run twice, as a failed count.
fn chain_runs_once((workers, capacity, waits): ChainConfig) {
    let pool = Arc::new(WorkerPool::new(workers, capacity));
    let (chain, fillers) = start_chain(&pool, capacity, waits);
    let r = Arc::clone(&fillers);
    pool.submit(move || r.hit(capacity));
    chain.end.wait_for(1);
    pool.wait_idle();
    chain.links.assert_each_once("chain links");
    fillers.assert_each_once("fillers");
    let jobs = (LINKS + fillers.len()) as u64;
    let stats = pool.stats();
    assert_eq!(
        (stats.completed, stats.queued, stats.overflow, stats.active),
        (jobs, 0, 0, 0),
        "stats after wait_idle: {stats:?}"
    );
    let stats = Arc::into_inner(pool)
        .expect("the links hold no share of the pool")
        .shutdown();
    assert_eq!(stats.completed, jobs, "{stats:?}");
}

#[test]
fn chains_overflow_and_run_once() {
    explore(
        &[
            (1, 0, false),
            (1, 1, false),
            (1, 2, false),
            (2, 0, false),
            (2, 1, false),
            (2, 2, false),
            (2, 0, true),
            (2, 1, true),
            (2, 2, true),
        ],
        chain_runs_once,
    );
}

/// [`chain_runs_once`] racing `shutdown_now`: the model thread, a producer thread (submitting
/// the last filler) and the running link share the pool, and whichever lets go last stops it
/// with `shutdown_now`: the model thread, the producer, or a link on a worker (which joins no
/// thread there). A link that finds the pool gone ends the chain.
///
/// Every accepted job (link or filler) either ran or came back, never both: once every worker
/// has stopped, the jobs that ran plus the jobs handed back are the jobs accepted; after running
/// the handed-back jobs, every accepted link and filler has run exactly once, and no other link
/// ran. A job lost from the overflow or the queue (neither run nor handed back) fails the counts;
/// a worker that never stops, a deadlock.
fn chain_races_shutdown_now((workers, capacity): (usize, usize)) {
    let (pool, stopped) = pool_with_latch(workers, capacity);
    let pool = Arc::new(pool);
    let (chain, fillers) = start_chain(&pool, capacity, false);
    let producer = {
        let (pool, chain, r) = (Arc::clone(&pool), Arc::clone(&chain), Arc::clone(&fillers));
        thread::spawn(move || {
            pool.submit(move || r.hit(capacity));
            chain.let_go(pool);
        })
    };
    chain.let_go(pool);
    producer.join().unwrap();
    stopped.wait_for(workers);
    // Every worker has stopped: nothing of the pool runs any more.
    let returned = std::mem::take(&mut *chain.handed_back.lock().unwrap());
    let accepted_links = (0..LINKS)
        .filter(|&k| chain.accepted[k].load(SeqCst))
        .count();
    let ran = chain.links.total() + fillers.total();
    assert_eq!(
        ran + returned.len(),
        accepted_links + capacity + 1,
        "{ran} jobs ran and {} came back, of {accepted_links} links and {} fillers accepted",
        returned.len(),
        capacity + 1
    );
    for job in returned {
        job.run();
    }
    for k in 0..LINKS {
        let accepted = chain.accepted[k].load(SeqCst);
        assert_eq!(
            chain.links.count(k),
            usize::from(accepted),
            "link {k} (accepted: {accepted})"
        );
    }
    fillers.assert_each_once("fillers");
}

#[test]
fn shutdown_now_hands_back_overflow() {
    explore(
        &[(1, 0), (1, 1), (1, 2), (2, 0), (2, 1), (2, 2)],
        chain_races_shutdown_now,
    );
}

// ------------------------------------------------------------------ wait_idle beside later jobs

/// (workers, capacity, whether another thread waits in `wait_idle` from outside meanwhile)
type LaterConfig = (usize, usize, bool);

/// What the jobs of [`wait_idle_with_later_jobs`] share.
struct Waiting {
    ran: Arc<Ran>,
    /// The waiting job's thread (see [`me`]) while it is inside `wait_idle`, else 0.
    waiting_on: AtomicUsize,
    /// Per job: whether it ran on the waiting job's thread while that was inside `wait_idle`.
    beneath: Vec<AtomicBool>,
    /// Opens the waiting job's `wait_idle`.
    start: Latch,
    /// Up once the probe runs (beneath the wait).
    probed: Latch,
    /// Releases the probe and the blockers.
    release: Latch,
}

impl Waiting {
    fn hit(&self, job: usize) {
        let beneath = self.waiting_on.load(SeqCst) == me();
        self.beneath[job].store(beneath, SeqCst);
        self.ran.hit(job);
    }
}

/// A job W calls `wait_idle` while the model thread and a second thread submit more jobs: W
/// must finish, every job runs once, and no job accepted after W's wait began runs beneath it
/// on W's thread (it might wait for W, or take a lock W holds).
///
/// Which jobs are "after" is made deterministic: before W calls, every worker is busy (W, and
/// with two workers a blocker B, waiting on a latch) and a probe P is queued. P was accepted
/// before W's wait began and no worker is free, so only W's help can run it: beneath the wait
/// (asserted), and only once W has taken its reading of the jobs accepted before it. P blocks
/// until released; the model thread submits the first later job only once P has signalled, so
/// every later job is accepted after W's wait began. Then P and B are released, and the rest
/// of the later jobs race with W's wait ending.
///
/// In one variant a third thread calls `wait_idle` from outside meanwhile, so that W may begin
/// its wait while that thread's drain of the idle epoch is in progress.
///
/// A bug shows as: W never returning (a deadlock, or the step bound exceeded while a producer is
/// parked on the full queue: W waits for a job it set aside for the workers when the only worker
/// is W's own, or for a job it did not help run); a later job run beneath W's wait (the
/// `beneath` record); a job lost or run twice (the counts).
fn wait_idle_with_later_jobs((workers, capacity, outside_waiter): LaterConfig) {
    const W: usize = 0;
    const P: usize = 1;
    let blockers = workers - 1;
    let first_later = 2 + blockers;
    assert!(
        capacity > 0,
        "the first later job must fit beside the blocked workers"
    );
    let later = capacity + 1;
    let jobs = first_later + later;
    let pool = Arc::new(WorkerPool::new(workers, capacity));
    let ran = Ran::new(jobs);
    let w = Arc::new(Waiting {
        ran: Arc::clone(&ran),
        waiting_on: AtomicUsize::new(0),
        beneath: (0..jobs).map(|_| AtomicBool::new(false)).collect(),
        start: Latch::default(),
        probed: Latch::default(),
        release: Latch::default(),
    });
    for b in 2..first_later {
        let w = Arc::clone(&w);
        pool.submit(move || {
            w.hit(b);
            w.release.wait_for(1);
        });
    }
    let waiter = {
        let (share, w) = (Arc::clone(&pool), Arc::clone(&w));
        pool.spawn(move || {
            w.start.wait_for(1);
            w.waiting_on.store(me(), SeqCst);
            share.wait_idle();
            w.waiting_on.store(0, SeqCst);
            w.hit(W);
        })
    };
    {
        let w = Arc::clone(&w);
        pool.submit(move || {
            w.hit(P);
            w.probed.up();
            w.release.wait_for(1);
        });
    }
    let outside = outside_waiter.then(|| {
        let pool = Arc::clone(&pool);
        thread::spawn(move || pool.wait_idle())
    });
    w.start.up();
    w.probed.wait_for(1);
    // W is inside `wait_idle`, past its reading of the jobs accepted before it: every job
    // submitted from here on is a later one.
    let submit_later = {
        let w = Arc::clone(&w);
        move |pool: &WorkerPool, i: usize| {
            let w = Arc::clone(&w);
            pool.submit(move || w.hit(first_later + i));
        }
    };
    submit_later(&pool, 0);
    w.release.up();
    let second = {
        let (pool, submit_later) = (Arc::clone(&pool), submit_later.clone());
        thread::spawn(move || submit_later(&pool, 1))
    };
    for i in 2..later {
        submit_later(&pool, i);
    }
    second.join().unwrap();
    waiter.join().unwrap();
    if let Some(outside) = outside {
        outside.join().unwrap();
    }
    pool.wait_idle();
    ran.assert_each_once("wait_idle beside later jobs");
    assert!(
        w.beneath[P].load(SeqCst),
        "the probe, accepted before the wait with every worker busy, ran beneath W's wait"
    );
    for i in 0..later {
        assert!(
            !w.beneath[first_later + i].load(SeqCst),
            "later job {i}, accepted after W's wait began, ran beneath it"
        );
    }
    let stats = Arc::into_inner(pool).expect("jobs done").shutdown();
    assert_eq!(stats.completed, jobs as u64, "{stats:?}");
}

#[test]
fn wait_idle_in_a_job_with_later_jobs() {
    explore(
        &[
            (1, 1, false),
            (1, 2, false),
            (2, 1, false),
            (2, 2, false),
            (2, 1, true),
            (1, 1, true),
        ],
        wait_idle_with_later_jobs,
    );
}

// ------------------------------------------------------------------ joins nested past MAX_NESTING

/// The jobs of [`deep_joins`]: each but the last spawns the next and joins it, so the last waits
/// beneath `LEVELS - 1` others, two more than `MAX_NESTING` allows on one thread.
const LEVELS: usize = MAX_NESTING + 3;

/// Job `level` of [`deep_joins`]: returns the sum of its level and those below it.
fn deep_join(level: usize, pool: Weak<WorkerPool>, ran: Arc<Ran>) -> usize {
    let _nested = Nested::enter("a nested join");
    ran.hit(level);
    if level + 1 == LEVELS {
        return level;
    }
    let child = {
        let share = pool.upgrade().expect("the model thread holds the pool");
        let ran = Arc::clone(&ran);
        share.spawn(move || deep_join(level + 1, pool, ran))
    };
    level + child.join().expect("a nested job")
}

/// Joins of joins inside a job, deeper than `MAX_NESTING`: job 0 spawns and joins job 1, which
/// spawns and joins job 2, and so on for `LEVELS` jobs, while the model thread submits a job of
/// its own and joins job 0 from outside. A join inside a job runs the still-queued job it waits
/// for (or a re-entrant spawn runs it inline, or overflows it); past `MAX_NESTING` nested jobs
/// the join runs it on a helper thread (shuttle's scoped thread here) instead of deeper on its
/// own stack.
///
/// Everything completes with the right results, each job once, no thread nesting more than
/// `MAX_NESTING` jobs inside its own, and job 0 (joined from outside) on a worker. On one worker,
/// busy with job 0 throughout, the first `MAX_NESTING` levels run nested on the worker and the
/// rest on a helper thread. A join that neither runs its job nor gets it run shows as a deadlock;
/// a job run twice or lost, as a failed count.
fn deep_joins((workers, capacity): (usize, usize)) {
    let pool = Arc::new(WorkerPool::new(workers, capacity));
    let ran = Ran::new(LEVELS + 1);
    let top = {
        let (weak, ran) = (Arc::downgrade(&pool), Arc::clone(&ran));
        pool.spawn(move || deep_join(0, weak, ran))
    };
    let r = Arc::clone(&ran);
    pool.submit(move || r.hit(LEVELS));
    assert_eq!(
        top.join().unwrap(),
        LEVELS * (LEVELS - 1) / 2,
        "the sum of the levels"
    );
    pool.wait_idle();
    ran.assert_each_once("nested joins");
    assert!(
        ran.on_worker(0),
        "job 0, joined from outside, ran on a worker"
    );
    if workers == 1 {
        for level in 1..=MAX_NESTING {
            assert_eq!(
                ran.thread(level),
                ran.thread(0),
                "level {level} ran nested on the worker"
            );
        }
        let helper = ran.thread(MAX_NESTING + 1);
        assert!(
            helper != ran.thread(0) && !ran.on_worker(MAX_NESTING + 1),
            "level {} ran on a helper thread",
            MAX_NESTING + 1
        );
        for level in MAX_NESTING + 2..LEVELS {
            assert_eq!(ran.thread(level), helper, "level {level} ran on the helper");
        }
    }
    assert_eq!(pool.stats().completed, LEVELS as u64 + 1);
    // A job a join claimed out of the overflow leaves its entry there until a worker skips it:
    // only once the workers have stopped is the overflow sure to be empty.
    let stats = Arc::into_inner(pool).expect("jobs done").shutdown();
    assert_eq!(
        (stats.completed, stats.queued, stats.overflow),
        (LEVELS as u64 + 1, 0, 0),
        "{stats:?}"
    );
}

#[test]
fn join_nested_past_max_nesting_completes() {
    explore(&[(1, 0), (1, 1), (1, 2), (2, 1)], deep_joins);
}
