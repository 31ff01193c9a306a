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
//! nothing waits forever: a lost wake-up is a deadlock here (the producer's 50 ms parking guard
//! never fires under shuttle), and so is a worker that never exits (shuttle runs every thread to
//! its end).
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
//!   `wait_idle_timeout`, `JobHandle::wait_timeout` and `submit_timeout` on a full queue (with a
//!   capacity above 0) are not exercised, and the producer's 50 ms parking guard never fires.
//!   The queue's own timeouts are modelled (see `src/queue.rs`): `shutdown_timeout`, and the
//!   rendezvous slices of producers at capacity 0;
//! - thread names and stack sizes (shuttle's threads are coroutines), and panics (a panicking
//!   job is caught as in a normal build, but no model panics on purpose).

#![cfg(shuttle)]

use std::fmt::Debug;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

use boundpool::{Job, JobError, Stats, WorkerPool};
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

/// One counter per job: how many times it ran.
struct Ran(Vec<AtomicUsize>);

impl Ran {
    fn new(jobs: usize) -> Arc<Ran> {
        Arc::new(Ran((0..jobs).map(|_| AtomicUsize::new(0)).collect()))
    }
    fn hit(&self, job: usize) {
        self.0[job].fetch_add(1, SeqCst);
    }
    fn count(&self, job: usize) -> usize {
        self.0[job].load(SeqCst)
    }
    fn assert_each_once(&self, what: &str) {
        for job in 0..self.0.len() {
            assert_eq!(
                self.count(job),
                1,
                "{what}: job {job} ran {} times",
                self.count(job)
            );
        }
    }
}

/// Counts events (a worker stopping) and lets a thread wait for a number of them.
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
/// once; dropping handed-back `spawn` jobs makes exactly their handles report `Cancelled`.
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
    if joiner.is_none() {
        assert_eq!(
            returned.len() + ran_by_pool,
            JOBS,
            "{} handed back, {ran_by_pool} ran",
            returned.len()
        );
    }
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
    if racing_joiner {
        assert!(
            cancelled <= cancelled_at_most,
            "{cancelled} handles report Cancelled, but only {cancelled_at_most} jobs with a handle were handed back and dropped"
        );
    } else {
        assert_eq!(
            cancelled, cancelled_at_most,
            "every dropped job with a handle, and no other, reports Cancelled"
        );
    }
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
    explore(&[(1, 0), (1, 1), (1, 2), (2, 1)], wait_idle_inside);
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

/// Producers blocked on a full queue are always woken: two producers push three jobs each into a
/// one-worker pool. In one variant the first job calls `wait_idle`, so the queue drains through
/// the waiting worker's own `try_recv` rather than the worker loop.
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

/// A scoped job spawning more scoped jobs while the scope's owner waits (and runs the jobs it
/// finds still queued): every job runs once, and the idle accounting stays exact, so that the
/// `wait_idle` calls after the scope (which drain both epoch parities) return. The first
/// `wait_idle` flips the epoch, so the scope's jobs are stamped with parity 1 rather than the
/// default 0.
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
    pool.wait_idle();
    pool.wait_idle();
    let stats = pool.shutdown();
    assert_eq!(stats.completed, 3, "{stats:?}");
}

#[test]
fn scoped_jobs_spawning_scoped_jobs_keep_the_accounting() {
    explore(&[(1, 0), (1, 1), (2, 1), (2, 2)], scope_spawning_from_jobs);
}

/// `map` from the main thread and from inside a job (on one worker the consumer runs items
/// itself): results in input order; a `Map` dropped half-way leaves nothing to wait for forever.
fn map_in_order((workers, capacity): (usize, usize)) {
    let pool = Arc::new(WorkerPool::new(workers, capacity));
    let squares: Vec<u32> = pool.map(0..4u32, |x| x * x).collect();
    assert_eq!(
        squares,
        [0, 1, 4, 9],
        "map from the main thread, in input order"
    );
    let inside = {
        let share = Arc::clone(&pool);
        pool.spawn(move || share.map(1..=3u32, |x| x * 10).collect::<Vec<_>>())
    };
    let mut partial = pool.map(0..5u32, |x| x + 1);
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
}

#[test]
fn map_yields_in_order_inside_and_outside_jobs() {
    explore(&[(1, 0), (1, 1), (2, 1)], map_in_order);
}

// ------------------------------------------------------------------ join

/// `JobHandle::join` racing with the worker dequeuing the same job: the job runs once and its
/// value is delivered, whether the worker or the joining thread ran it. Two threads join.
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
    assert_eq!(stats.completed, 3, "{stats:?}");
}

#[test]
fn join_racing_the_worker_runs_once() {
    explore(&[(1, 0), (1, 1), (1, 2), (2, 2)], join_races_dequeue);
}
