//! Waits nested deeper than `MAX_NESTING` inside jobs: past that depth a wait runs the job it
//! claimed on a helper thread instead of nesting it on its own stack. The helper stands in for
//! the waiting thread: its name, the pool's stack size, the pool's start hook (so thread-locals
//! a job relies on are set up), and the pool's bound on concurrent jobs.

mod common;

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use boundpool::{WorkerPool, MAX_NESTING};
use common::with_timeout;

thread_local! {
    /// Set by the pools' start hook: a job that finds it unset ran on a thread the pool did not
    /// set up.
    static SET_UP: Cell<bool> = const { Cell::new(false) };
}

/// The tests that start many helper threads, or count threads, run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A pool whose start hook marks its threads, and which counts the jobs running at once.
fn pool(workers: usize, capacity: usize) -> Arc<WorkerPool> {
    Arc::new(
        WorkerPool::builder()
            .workers(workers)
            .capacity(capacity)
            .on_thread_start(|| SET_UP.with(|s| s.set(true)))
            .build()
            .expect("build"),
    )
}

/// What every job checks about the thread it runs on.
#[derive(Default)]
struct Seen {
    /// Jobs that ran on a thread without the start hook's set-up, or not named `boundpool-*`.
    foreign: AtomicUsize,
    /// The most jobs running at once (suspended ones excluded: a waiter's own job is
    /// suspended while it, or its helper, runs the job it waits on).
    running: AtomicUsize,
    peak: AtomicUsize,
    names: Mutex<Vec<String>>,
}

impl Seen {
    fn enter(&self) {
        let named = thread::current()
            .name()
            .is_some_and(|n| n.starts_with("boundpool-"));
        if !named || !SET_UP.with(Cell::get) {
            self.foreign.fetch_add(1, Ordering::SeqCst);
        }
        if let Some(name) = thread::current().name() {
            let mut names = self.names.lock().unwrap();
            if !names.iter().any(|n| n == name) {
                names.push(name.to_owned());
            }
        }
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
    }
    fn suspend(&self) {
        self.running.fetch_sub(1, Ordering::SeqCst);
    }
    fn resume(&self) {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
    }
    fn leave(&self) {
        self.running.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Job `n` spawns job `n - 1` and joins it: a chain of `n` nested joins. On a one-worker pool
/// every inner job is still queued when it is joined (or, once the queue is full, runs inline
/// in `spawn`), so the waiting job runs it itself.
fn chain(pool: Arc<WorkerPool>, seen: Arc<Seen>, n: u64) -> u64 {
    seen.enter();
    let result = if n == 0 {
        0
    } else {
        // Suspended from here: `spawn` into the full queue (the claimed entries stay in it until
        // the worker reaches them) runs the job inline (caller-runs), and `join` runs it.
        seen.suspend();
        let inner = pool.spawn({
            let (pool, seen) = (Arc::clone(&pool), Arc::clone(&seen));
            move || chain(pool, seen, n - 1)
        });
        // A panic below resumes with its own payload (`expect` would nest every level's
        // message in the next one's).
        let r = inner
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        seen.resume();
        r + 1
    };
    seen.leave();
    result
}

#[test]
fn a_join_chain_far_deeper_than_max_nesting_completes_on_set_up_pool_threads() {
    let _serial = serial();
    let depth = 40 * MAX_NESTING as u64;
    with_timeout("a chain of nested joins", move || {
        let pool = pool(1, 4);
        let seen = Arc::new(Seen::default());
        let outer = pool.spawn({
            let (pool, seen) = (Arc::clone(&pool), Arc::clone(&seen));
            move || chain(pool, seen, depth)
        });
        assert_eq!(
            outer.join().expect("the outer job"),
            depth,
            "every level ran"
        );
        assert_eq!(
            seen.foreign.load(Ordering::SeqCst),
            0,
            "every job ran on a named thread that the start hook set up"
        );
        assert_eq!(
            seen.peak.load(Ordering::SeqCst),
            1,
            "one worker: never two unsuspended jobs at once"
        );
        assert_eq!(
            *seen.names.lock().unwrap(),
            ["boundpool-0"],
            "helper threads carry the waiter's name"
        );
        assert_eq!(pool.stats().completed, depth + 1);
    });
}

#[test]
fn scopes_nested_far_deeper_than_max_nesting_complete() {
    fn nest(pool: &WorkerPool, level: usize, total: &AtomicUsize) {
        if level == 0 {
            return;
        }
        pool.scope(|s| {
            s.submit(|| {
                total.fetch_add(1, Ordering::SeqCst);
                nest(pool, level - 1, total);
            });
        });
    }
    let depth = 10 * MAX_NESTING;
    with_timeout("nested scopes", move || {
        let pool = pool(1, 2);
        let total = Arc::new(AtomicUsize::new(0));
        let job = pool.spawn({
            let (pool, total) = (Arc::clone(&pool), Arc::clone(&total));
            move || nest(&pool, depth, &total)
        });
        job.join().expect("the outer job");
        assert_eq!(total.load(Ordering::SeqCst), depth, "every level ran once");
    });
}

#[test]
fn maps_nested_far_deeper_than_max_nesting_complete() {
    fn nest(pool: Arc<WorkerPool>, level: u64) -> u64 {
        if level == 0 {
            return 0;
        }
        let inner = Arc::clone(&pool);
        pool.map([level], move |l| nest(Arc::clone(&inner), l - 1) + 1)
            .sum()
    }
    let depth = 10 * MAX_NESTING as u64;
    with_timeout("nested maps", move || {
        let pool = pool(1, 2);
        let job = pool.spawn({
            let pool = Arc::clone(&pool);
            move || nest(pool, depth)
        });
        assert_eq!(job.join().expect("the outer job"), depth);
    });
}

/// Jobs that each call `wait_idle`, fed without pause into a one-worker pool: each wait runs
/// the jobs queued before it beneath itself, and those accepted after an enclosing wait began on
/// helper threads, so the chain of waits grows with the feed. Helper threads are bounded
/// (`MAX_HELPERS`): past them, the waiting job panics with a clear message instead of the
/// process running out of threads and aborting. Every job finishes (panicked or not).
#[test]
fn a_fed_chain_of_wait_idles_keeps_its_threads_bounded() {
    let _serial = serial();
    let baseline = common::thread_count();
    with_timeout("a fed chain of wait_idles", move || {
        common::quiet_panics("boundpool: a wait_idle nested");
        let n = 20_000u64;
        let pool = pool(1, 64);
        let peak = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sampler = {
            let (peak, done) = (Arc::clone(&peak), Arc::clone(&done));
            thread::spawn(move || {
                while !done.load(Ordering::SeqCst) {
                    if let Some(t) = common::thread_count() {
                        peak.fetch_max(t, Ordering::SeqCst);
                    }
                    thread::yield_now();
                }
            })
        };
        for _ in 0..n {
            let p = Arc::clone(&pool);
            pool.submit(move || p.wait_idle());
        }
        pool.wait_idle();
        done.store(true, Ordering::SeqCst);
        sampler.join().unwrap();
        let stats = pool.stats();
        assert_eq!(stats.completed, n, "every job finished: {stats:?}");
        if let Some(base) = baseline {
            let peak = peak.load(Ordering::SeqCst);
            println!("threads: baseline {base}, peak {peak}; {stats:?}");
            assert!(
                peak <= base + boundpool::MAX_HELPERS + 16,
                "threads peaked at {peak} (baseline {base}, MAX_HELPERS {})",
                boundpool::MAX_HELPERS
            );
        }
    });
}

/// A chain of joins deeper than `MAX_NESTING` × `MAX_HELPERS` cannot run on bounded stacks and
/// bounded threads: the job at the depth where no helper thread is left panics with a message
/// that says so, the panic reaches the outer job through the joins, and the process and the
/// pool live on, with at most about `MAX_HELPERS` extra threads at any time.
#[test]
fn a_join_chain_past_every_helper_thread_panics_instead_of_aborting() {
    let _serial = serial();
    let baseline = common::thread_count();
    let depth = ((MAX_NESTING + 1) * (boundpool::MAX_HELPERS + 8)) as u64;
    with_timeout("a join chain past the helpers", move || {
        common::quiet_panics("boundpool: a join nested");
        let pool = pool(1, 4);
        let seen = Arc::new(Seen::default());
        let outer = pool.spawn({
            let (pool, seen) = (Arc::clone(&pool), Arc::clone(&seen));
            move || chain(pool, seen, depth)
        });
        let err = outer.join().expect_err("the chain was too deep to finish");
        assert!(
            err.panic_message()
                .is_some_and(|m| m.contains("nested more than")),
            "the over-deep join's own panic reached the top: {err:?}"
        );
        let threads_now = common::thread_count();
        if let (Some(base), Some(now)) = (baseline, threads_now) {
            // Other tests of this file may run meanwhile, with a pool or two of their own.
            assert!(
                now < base + 32,
                "the helper threads are gone: {now} (baseline {base})"
            );
        }
        // The pool still works.
        assert_eq!(pool.spawn(|| 7).join().unwrap(), 7);
        let stats = pool.stats();
        assert!(
            stats.panicked >= 1,
            "the over-deep job's panic is counted: {stats:?}"
        );
        assert_eq!(stats.active, 0, "{stats:?}");
    });
}
