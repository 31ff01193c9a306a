//! Stress: shutdown racing producers, panics in every position, tiny capacities, and pools created
//! and dropped thousands of times (thread leaks show as a rising `Threads:` count in
//! `/proc/self/status`). `#[ignore]` by default; `.ci/run` runs them in release:
//! `cargo test --release --test stress -- --ignored`.
//!
//! `BOUNDPOOL_STRESS_ITERS` scales every loop (default 1000; pool churn runs ten times that).

mod common;

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::time::Duration;

use boundpool::WorkerPool;
use common::{
    armoured_pool, assert_all_workers_alive, assert_threads_back_to, quiet_panics, thread_count,
    within, Drops, PATIENCE,
};

fn iters() -> usize {
    std::env::var("BOUNDPOOL_STRESS_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

/// A whole test may take this long before it counts as hung.
const TEST_LIMIT: Duration = Duration::from_secs(240);

/// Tests in this file measure the process's thread count: run them one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
#[ignore]
fn pools_created_and_dropped_ten_thousand_times_leak_no_threads() {
    let _serial = serial();
    let baseline = thread_count();
    within(TEST_LIMIT, "pool churn", || {
        let n = iters() * 10;
        for i in 0..n {
            let workers = 1 + i % 4;
            let capacity = i % 3;
            let pool = WorkerPool::new(workers, capacity);
            match i % 5 {
                0 => drop(pool),
                1 => {
                    pool.submit(|| ());
                    let _ = pool.shutdown();
                }
                2 => {
                    let h = pool.spawn(|| 1);
                    assert_eq!(h.join().ok(), Some(1), "churn {i}: spawn result");
                    assert!(
                        pool.shutdown_timeout(PATIENCE).is_ok(),
                        "churn {i}: timeout"
                    );
                }
                3 => {
                    pool.submit(|| ());
                    let _ = pool.shutdown_now();
                }
                _ => {
                    let v: Vec<usize> = pool.map(0..4, |x| x + 1).collect();
                    assert_eq!(v, [1, 2, 3, 4], "churn {i}: map");
                }
            }
        }
    });
    // `within` detaches its guarded thread (it is not joined): it has sent its result and only
    // has yet to exit, which `assert_threads_back_to` waits for, polling, like the pools' own
    // threads. Nothing else may remain.
    assert_threads_back_to(baseline, "after pool churn");
}

#[test]
#[ignore]
fn pools_dropped_inside_their_own_jobs_leak_no_threads() {
    let _serial = serial();
    let baseline = thread_count();
    within(TEST_LIMIT, "drop on own worker", || {
        for i in 0..iters() {
            let pool = Arc::new(WorkerPool::new(1 + i % 3, i % 4));
            let (done_tx, done) = mpsc::channel();
            let me = Arc::clone(&pool);
            pool.submit(move || {
                // Nested work while the pool is being released.
                for _ in 0..3 {
                    me.submit(|| ());
                }
                drop(me);
                done_tx.send(()).unwrap();
            });
            drop(pool); // the job may hold the last Arc, or we do
            done.recv_timeout(PATIENCE)
                .unwrap_or_else(|_| panic!("iteration {i}: the job never finished"));
        }
    });
    assert_threads_back_to(baseline, "detached workers never exited");
}

#[test]
#[ignore]
fn producers_racing_the_last_arc_lose_nothing() {
    let _serial = serial();
    within(TEST_LIMIT, "producers vs last Arc", || {
        for i in 0..iters() / 4 {
            let producers = 4;
            let per = 50;
            let drops = Drops::new(producers * per);
            let ran = Arc::new(AtomicUsize::new(0));
            let pool = Arc::new(WorkerPool::new(1 + i % 2, i % 3));
            let start = Arc::new(Barrier::new(producers + 1));
            let threads: Vec<_> = (0..producers)
                .map(|p| {
                    let (pool, start, ran, drops) = (
                        Arc::clone(&pool),
                        Arc::clone(&start),
                        Arc::clone(&ran),
                        drops.clone(),
                    );
                    std::thread::spawn(move || {
                        start.wait();
                        for k in 0..per {
                            let payload = drops.payload(p * per + k);
                            let ran = Arc::clone(&ran);
                            let job = move || {
                                payload.touch();
                                ran.fetch_add(1, Ordering::SeqCst);
                            };
                            match k % 3 {
                                0 => pool.submit(job),
                                1 => {
                                    if let Err(e) = pool.try_submit(job) {
                                        e.into_inner()(); // run it here: not lost
                                    }
                                }
                                _ => {
                                    let t = Duration::from_micros(50);
                                    if let Err(e) = pool.submit_timeout(job, t) {
                                        e.into_inner()();
                                    }
                                }
                            }
                        }
                        // Whichever producer drops last shuts the pool down (Drop).
                    })
                })
                .collect();
            start.wait();
            drop(pool);
            for t in threads {
                t.join().expect("producer");
            }
            assert_eq!(
                ran.load(Ordering::SeqCst),
                producers * per,
                "iteration {i}: lost jobs"
            );
            drops.assert_all_once(&format!("iteration {i}"));
        }
    });
}

#[test]
#[ignore]
fn shutdown_now_racing_busy_workers_returns_or_runs_everything() {
    let _serial = serial();
    within(TEST_LIMIT, "shutdown_now vs workers", || {
        for i in 0..iters() {
            let n = 64;
            let ran = Arc::new(AtomicUsize::new(0));
            let drops = Drops::new(n);
            let pool = WorkerPool::new(1 + i % 4, 1 + i % 16);
            let handles: Vec<_> = (0..n)
                .map(|id| {
                    let (ran, p) = (Arc::clone(&ran), drops.payload(id));
                    if id % 2 == 0 {
                        pool.submit(move || {
                            p.touch();
                            ran.fetch_add(1, Ordering::SeqCst);
                        });
                        None
                    } else {
                        Some(pool.spawn(move || {
                            p.touch();
                            ran.fetch_add(1, Ordering::SeqCst);
                        }))
                    }
                })
                .collect();
            let returned = pool.shutdown_now();
            let mut dropped = 0;
            for (k, job) in returned.into_iter().enumerate() {
                if k % 2 == 0 {
                    job.run();
                } else {
                    drop(job);
                    dropped += 1;
                }
            }
            assert_eq!(
                ran.load(Ordering::SeqCst) + dropped,
                n,
                "iteration {i}: every job ran once or was returned and dropped"
            );
            drops.assert_all_once(&format!("iteration {i}"));
            for h in handles.into_iter().flatten() {
                if let Err(e) = h.join() {
                    assert!(e.is_cancelled(), "iteration {i}: {e:?}");
                }
            }
        }
    });
}

#[test]
#[ignore]
fn panics_in_every_position_never_lose_a_worker() {
    let _serial = serial();
    quiet_panics("armour:");
    within(TEST_LIMIT, "panics everywhere", || {
        for i in 0..iters() / 10 {
            let (pool, handled) = armoured_pool(1 + i % 3, i % 3);
            for _ in 0..20 {
                pool.submit(|| panic!("armour: job"));
            }
            let err = pool.spawn(|| -> u8 { panic!("armour: spawn") }).join();
            assert!(
                err.is_err_and(|e| e.is_panic()),
                "iteration {i}: spawn panic"
            );
            let m = panic::catch_unwind(AssertUnwindSafe(|| {
                pool.map(0..10u32, |x| {
                    if x == 7 {
                        panic!("armour: map");
                    }
                    x
                })
                .count()
            }));
            assert!(m.is_err(), "iteration {i}: map resumes the panic");
            let s = panic::catch_unwind(AssertUnwindSafe(|| {
                pool.scope(|s| {
                    s.submit(|| panic!("armour: scoped"));
                    s.submit(|| ());
                })
            }));
            assert!(s.is_err(), "iteration {i}: scope re-raises");
            let b = panic::catch_unwind(AssertUnwindSafe(|| {
                pool.scope(|s| {
                    s.submit(|| ());
                    panic!("armour: body");
                })
            }));
            assert!(b.is_err(), "iteration {i}: scope re-raises the body panic");
            assert!(pool.wait_idle_timeout(PATIENCE), "iteration {i}: idle");
            assert_eq!(
                handled.load(Ordering::SeqCst),
                20,
                "iteration {i}: handler calls"
            );
            assert_all_workers_alive(&pool, &format!("iteration {i}"));
            let stats = pool.shutdown();
            // 20 submits + spawn + map item 7 + scoped panic.
            assert_eq!(stats.panicked, 23, "iteration {i}: panics counted");
        }
    });
}

#[test]
#[ignore]
fn capacity_zero_and_one_under_many_producers() {
    let _serial = serial();
    within(TEST_LIMIT, "tiny capacities", || {
        for capacity in [0, 1] {
            for workers in [1, 2, 4] {
                let pool = Arc::new(WorkerPool::new(workers, capacity));
                let total = iters() * 10;
                let producers = 4;
                let ran = Arc::new(AtomicUsize::new(0));
                let threads: Vec<_> = (0..producers)
                    .map(|p| {
                        let (pool, ran) = (Arc::clone(&pool), Arc::clone(&ran));
                        std::thread::spawn(move || {
                            for k in 0..total / producers {
                                let ran = Arc::clone(&ran);
                                let job = move || {
                                    ran.fetch_add(1, Ordering::Relaxed);
                                };
                                if (k + p) % 7 == 0 {
                                    let h = pool.spawn(job);
                                    assert!(h.join().is_ok(), "spawned job ran");
                                } else {
                                    pool.submit(job);
                                }
                                let s = pool.stats();
                                assert!(s.queued <= capacity, "queued {} > {capacity}", s.queued);
                            }
                        })
                    })
                    .collect();
                for t in threads {
                    t.join().expect("producer");
                }
                let pool = Arc::try_unwrap(pool).expect("producers are gone");
                let stats = pool.shutdown();
                let want = total / producers * producers;
                assert_eq!(
                    ran.load(Ordering::SeqCst),
                    want,
                    "c={capacity} w={workers}: ran"
                );
                assert_eq!(
                    stats.completed, want as u64,
                    "c={capacity} w={workers}: stats"
                );
            }
        }
    });
}

#[test]
#[ignore]
fn nested_submits_while_the_pool_is_being_dropped() {
    let _serial = serial();
    within(TEST_LIMIT, "nested submits during drop", || {
        for i in 0..iters() / 4 {
            let ran = Arc::new(AtomicUsize::new(0));
            let (done_tx, done) = mpsc::channel::<()>();
            let pool = Arc::new(WorkerPool::new(1 + i % 3, i % 3));
            for _ in 0..8 {
                let (me, ran, done_tx) = (Arc::clone(&pool), Arc::clone(&ran), done_tx.clone());
                pool.submit(move || {
                    for _ in 0..4 {
                        let (ran, done_tx) = (Arc::clone(&ran), done_tx.clone());
                        // Caller-runs when full: never deadlocks on its own pool.
                        me.submit(move || {
                            ran.fetch_add(1, Ordering::SeqCst);
                            done_tx.send(()).unwrap();
                        });
                    }
                    ran.fetch_add(1, Ordering::SeqCst);
                    done_tx.send(()).unwrap();
                });
            }
            drop(done_tx);
            // Our Arc goes; the last job to finish drops the pool on a worker.
            drop(pool);
            for k in 0..40 {
                done.recv_timeout(PATIENCE).unwrap_or_else(|e| {
                    panic!("iteration {i}: only {k} of 40 nested jobs ran ({e})")
                });
            }
            // Every sender was inside a job, and every job has been dropped: none ran twice.
            assert!(
                done.recv_timeout(PATIENCE).is_err(),
                "iteration {i}: a job ran twice"
            );
            assert_eq!(
                ran.load(Ordering::SeqCst),
                40,
                "iteration {i}: exactly once"
            );
        }
    });
}

/// A link of a chain that each submits the next through a `Weak` pool (so that the test can
/// take the pool back for `shutdown_now`); deeper than `MAX_NESTING` into a full pool, the
/// chain goes through the overflow. Ends when the pool is gone.
fn chain_link(pool: std::sync::Weak<WorkerPool>, drops: Drops, tally: Arc<Tally>, id: usize) {
    let Some(p) = pool.upgrade() else { return };
    if id >= tally.last {
        return;
    }
    let payload = drops.payload(id);
    tally.created.fetch_add(1, Ordering::SeqCst);
    let t = Arc::clone(&tally);
    p.submit(move || {
        payload.touch();
        t.ran.fetch_add(1, Ordering::SeqCst);
        chain_link(pool, drops, Arc::clone(&t), id + 1);
    });
}

/// Counts of a chain's links.
struct Tally {
    last: usize,
    created: AtomicUsize,
    ran: AtomicUsize,
}

#[test]
#[ignore]
fn large_closures_and_overflowed_chains_racing_shutdown_now_drop_everything_once() {
    let _serial = serial();
    within(
        TEST_LIMIT,
        "overflow and large closures vs shutdown_now",
        || {
            for i in 0..iters() / 4 {
                let links = 3 * boundpool::MAX_NESTING;
                let big = 8;
                let drops = Drops::new(links + big);
                let tally = Arc::new(Tally {
                    last: links,
                    created: AtomicUsize::new(0),
                    ran: AtomicUsize::new(0),
                });
                let mut pool = Arc::new(WorkerPool::new(1 + i % 2, 1 + i % 3));
                // Large closures (boxed on their way into a slot) with handles.
                let handles: Vec<_> = (0..big)
                    .map(|k| {
                        let (p, pad) = (drops.payload(links + k), [k as u8; 4096]);
                        pool.spawn(move || p.touch() + usize::from(pad[7]))
                    })
                    .collect();
                chain_link(Arc::downgrade(&pool), drops.clone(), Arc::clone(&tally), 0);
                // A link holds the pool only while it submits: take it back between two.
                let pool = loop {
                    match Arc::try_unwrap(pool) {
                        Ok(p) => break p,
                        Err(again) => {
                            pool = again;
                            std::thread::yield_now();
                        }
                    }
                };
                let mut dropped = 0;
                for (k, job) in pool.shutdown_now().into_iter().enumerate() {
                    if k % 2 == 0 {
                        job.run(); // a returned link finds the pool gone and ends the chain
                    } else {
                        drop(job);
                        dropped += 1;
                    }
                }
                let mut cancelled = 0;
                for (k, h) in handles.into_iter().enumerate() {
                    match h.join() {
                        Ok(v) => assert_eq!(v, links + 2 * k, "iteration {i}: big closure {k}"),
                        Err(e) => {
                            assert!(e.is_cancelled(), "iteration {i}: {e:?}");
                            cancelled += 1;
                        }
                    }
                }
                let created = tally.created.load(Ordering::SeqCst);
                assert_eq!(
                    tally.ran.load(Ordering::SeqCst) + dropped - cancelled,
                    created,
                    "iteration {i}: every link ran once or was handed back and dropped"
                );
                drops.assert_each_once(
                    (0..created).chain(links..links + big),
                    &format!("iteration {i}"),
                );
            }
        },
    );
}
