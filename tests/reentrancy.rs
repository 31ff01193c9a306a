//! "Waiting never needs a free worker": jobs that wait on the pool they run on (`scope`, `map`,
//! `join`, `wait_idle`, a blocking `submit` into a full queue) finish instead of deadlocking, on a
//! single worker, nested, and across two pools.
//!
//! Every test runs under [`with_timeout`]: a deadlock fails the test after a timeout instead of
//! hanging the suite.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier, Mutex};
use std::thread;

use boundpool::WorkerPool;
use common::{hold_workers, with_timeout, Progress, PATIENCE};

/// Starts `job` on one of `pool`'s workers. Not `spawn` + `join`: a `join` that finds the job
/// still queued runs it on the joining thread, and these tests need the waits on a worker.
fn start_on_worker<R, F>(pool: &WorkerPool, job: F) -> mpsc::Receiver<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    pool.submit(move || {
        let name = thread::current().name().map(str::to_owned);
        assert!(
            name.as_deref().is_some_and(|n| n.starts_with("boundpool-")),
            "the outer job runs on a worker, not on {name:?}"
        );
        let _ = tx.send(job());
    });
    rx
}

/// The value of a job started with [`start_on_worker`].
fn finish<R>(started: mpsc::Receiver<R>, what: &str) -> R {
    match started.recv_timeout(PATIENCE) {
        Ok(value) => value,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("deadlock: {what} did not finish"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{what} panicked"),
    }
}

/// Runs `job` on one of `pool`'s workers and returns its value.
fn on_worker<R, F>(pool: &WorkerPool, job: F) -> R
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    finish(start_on_worker(pool, job), "the job on a worker")
}

#[test]
fn scope_inside_a_job_on_one_worker() {
    let sum = with_timeout("scope inside a job on a 1-worker pool", || {
        let pool = Arc::new(WorkerPool::new(1, 2));
        let p = Arc::clone(&pool);
        on_worker(&pool, move || {
            let data: Vec<u64> = (1..=100).collect();
            let total = AtomicUsize::new(0);
            p.scope(|s| {
                for chunk in data.chunks(10) {
                    let total = &total;
                    s.submit(move || {
                        total.fetch_add(chunk.iter().sum::<u64>() as usize, Ordering::SeqCst);
                    });
                }
            });
            total.into_inner()
        })
    });
    assert_eq!(sum, 5050, "every scoped job ran inside the job");
}

#[test]
fn map_inside_a_job_on_one_worker() {
    let out = with_timeout("map inside a job on a 1-worker pool", || {
        let pool = Arc::new(WorkerPool::new(1, 1));
        let p = Arc::clone(&pool);
        on_worker(&pool, move || {
            p.map(0..1_000u64, |i| i * 2).collect::<Vec<_>>()
        })
    });
    assert_eq!(
        out,
        (0..1_000u64).map(|i| i * 2).collect::<Vec<_>>(),
        "ordered results"
    );
}

#[test]
fn join_inside_a_job_on_one_worker() {
    let out = with_timeout("join inside a job on a 1-worker pool", || {
        let pool = Arc::new(WorkerPool::new(1, 4));
        let p = Arc::clone(&pool);
        on_worker(&pool, move || {
            // More children than the queue holds, joined newest first.
            let handles: Vec<_> = (0..10u32).map(|i| p.spawn(move || i * i)).collect();
            handles
                .into_iter()
                .rev()
                .map(|h| h.join().expect("a child"))
                .collect::<Vec<_>>()
        })
    });
    assert_eq!(
        out,
        (0..10u32).rev().map(|i| i * i).collect::<Vec<_>>(),
        "children's values"
    );
}

#[test]
fn wait_idle_inside_a_job_on_one_worker() {
    let seen = with_timeout("wait_idle inside a job on a 1-worker pool", || {
        let pool = Arc::new(WorkerPool::new(1, 4));
        let p = Arc::clone(&pool);
        on_worker(&pool, move || {
            let done = Arc::new(AtomicUsize::new(0));
            for _ in 0..20 {
                let done = Arc::clone(&done);
                p.submit(move || {
                    done.fetch_add(1, Ordering::SeqCst);
                });
            }
            p.wait_idle();
            done.load(Ordering::SeqCst)
        })
    });
    assert_eq!(
        seen, 20,
        "every job accepted before wait_idle finished before it returned"
    );
}

#[test]
fn nesting_job_scope_job_map_job_join_on_one_worker() {
    let total = with_timeout("three levels of nested waits", || {
        let pool = Arc::new(WorkerPool::new(1, 1));
        let p = Arc::clone(&pool);
        on_worker(&pool, move || {
            let offset = 1u64; // borrowed by the scoped job
            p.scope(|s| {
                let mapped = s.spawn(|| {
                    let leaf_pool = Arc::clone(&p);
                    p.map(0..20u64, move |i| {
                        let inner = Arc::clone(&leaf_pool);
                        leaf_pool
                            .spawn(move || {
                                let doubled = inner.spawn(move || i * 2).join().expect("leaf");
                                inner.wait_idle();
                                doubled
                            })
                            .join()
                            .expect("middle")
                            + offset
                    })
                    .sum::<u64>()
                });
                mapped.join().expect("the scoped job")
            })
        })
    });
    assert_eq!(total, 2 * 190 + 20, "sum of 2i + 1 over 0..20");
}

#[test]
fn a_wait_crossing_two_one_worker_pools_finishes() {
    let value = with_timeout("A's job waits on B's job, which waits on A's job", || {
        let a = Arc::new(WorkerPool::new(1, 2));
        let b = Arc::new(WorkerPool::new(1, 2));
        let (started_tx, started) = mpsc::channel();
        let (a2, b2) = (Arc::clone(&a), Arc::clone(&b));
        on_worker(&a, move || {
            let a3 = Arc::clone(&a2);
            let on_b = b2.spawn(move || {
                started_tx.send(()).unwrap();
                // A's only worker is busy in the job beneath: B's thread runs this itself.
                a3.spawn(|| 7).join().expect("the job on A") * 2
            });
            // Make sure B's worker took its job, so the inner join really crosses back to A.
            started
                .recv_timeout(PATIENCE)
                .expect("B's job started on B's worker");
            on_b.join().expect("the job on B") + 1
        })
    });
    assert_eq!(value, 15, "(7 * 2) + 1");
}

#[test]
fn a_job_submitting_100_more_into_its_full_one_slot_queue_completes() {
    with_timeout("caller-runs on a 1-worker, capacity-1 pool", || {
        let pool = Arc::new(WorkerPool::new(1, 1));
        let runs: Arc<Vec<AtomicUsize>> = Arc::new((0..101).map(|_| AtomicUsize::new(0)).collect());
        let (done_tx, done) = mpsc::channel::<usize>();
        let p = Arc::clone(&pool);
        let r = Arc::clone(&runs);
        pool.submit(move || {
            for i in 1..=100 {
                let r = Arc::clone(&r);
                let done_tx = done_tx.clone();
                // The queue holds one job and its only worker is this thread: without
                // caller-runs the second submit would block forever.
                p.submit(move || {
                    r[i].fetch_add(1, Ordering::SeqCst);
                    done_tx.send(i).unwrap();
                });
            }
            r[0].fetch_add(1, Ordering::SeqCst);
            done_tx.send(0).unwrap();
        });
        let mut seen = HashSet::new();
        for _ in 0..101 {
            let id = done
                .recv_timeout(PATIENCE)
                .expect("deadlock: a job never ran");
            assert!(seen.insert(id), "job {id} reported twice");
        }
        assert!(
            pool.wait_idle_timeout(PATIENCE),
            "the pool settles after the burst"
        );
        for (i, r) in runs.iter().enumerate() {
            assert_eq!(r.load(Ordering::SeqCst), 1, "job {i} ran exactly once");
        }
        let stats = pool.stats();
        assert_eq!(stats.completed, 101, "all 101 counted: {stats:?}");
    });
}

#[test]
fn two_workers_both_in_wait_idle_inside_jobs_finish() {
    with_timeout("two workers in wait_idle at once", || {
        let pool = Arc::new(WorkerPool::new(2, 8));
        let both_running = Arc::new(Barrier::new(2));
        let done = Arc::new(AtomicUsize::new(0));
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let (p, barrier, done) = (
                    Arc::clone(&pool),
                    Arc::clone(&both_running),
                    Arc::clone(&done),
                );
                start_on_worker(&pool, move || {
                    // Both workers are inside a job from here on: nobody else is free.
                    barrier.wait();
                    for _ in 0..5 {
                        let done = Arc::clone(&done);
                        p.submit(move || {
                            done.fetch_add(1, Ordering::SeqCst);
                        });
                    }
                    p.wait_idle();
                    done.load(Ordering::SeqCst)
                })
            })
            .collect();
        for w in waiters {
            let seen = finish(w, "a waiting job");
            assert!(seen >= 5, "a waiter returned before its own 5 jobs: {seen}");
        }
        assert!(pool.wait_idle_timeout(PATIENCE), "idle at the end");
        assert_eq!(done.load(Ordering::SeqCst), 10, "all ten small jobs ran");
    });
}

#[test]
fn wait_idle_in_a_job_finishes_while_a_feeder_keeps_submitting() {
    with_timeout("wait_idle inside a job under a steady stream", || {
        let pool = Arc::new(WorkerPool::new(2, 4));
        let stop = Arc::new(AtomicBool::new(false));
        let fed = Progress::new();
        let feeder = {
            let (pool, stop, fed) = (Arc::clone(&pool), Arc::clone(&stop), fed.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    pool.submit(|| {
                        std::hint::black_box((0..50u64).fold(0u64, |a, i| a.wrapping_mul(31) ^ i));
                    });
                    fed.bump();
                }
            })
        };
        // The stream is flowing before the waiter starts, and until it has returned.
        fed.wait_past(100, "the feeder submitted more than 100 jobs");
        let p = Arc::clone(&pool);
        let counted = on_worker(&pool, move || {
            let done = Arc::new(AtomicUsize::new(0));
            for _ in 0..10 {
                let done = Arc::clone(&done);
                p.submit(move || {
                    done.fetch_add(1, Ordering::SeqCst);
                });
            }
            p.wait_idle();
            done.load(Ordering::SeqCst)
        });
        // Still flowing once the waiter has returned: it finished without the stream stopping.
        fed.wait_past(
            fed.get(),
            "the feeder kept submitting after wait_idle returned",
        );
        stop.store(true, Ordering::SeqCst);
        feeder.join().expect("the feeder stops");
        assert_eq!(
            counted, 10,
            "every job accepted before wait_idle had finished"
        );
    });
}

#[test]
fn a_scope_inside_a_job_finishes_while_every_other_worker_is_blocked() {
    with_timeout("scope in a job, the other worker blocked", || {
        let pool = Arc::new(WorkerPool::new(2, 2));
        let (gate, mut held) = hold_workers(&pool, 1);
        let blocker = held.pop().unwrap();
        let p = Arc::clone(&pool);
        let g = gate.clone();
        let ran = on_worker(&pool, move || {
            let ran = AtomicUsize::new(0);
            p.scope(|s| {
                // Ten times the queue's room: the rest runs here (caller-runs) or at the
                // scope's end, since the only other worker is stuck until the last job.
                for i in 0..20 {
                    let (ran, g) = (&ran, &g);
                    s.submit(move || {
                        ran.fetch_add(1, Ordering::SeqCst);
                        if i == 19 {
                            g.open();
                        }
                    });
                }
            });
            ran.into_inner()
        });
        blocker.join().expect("the blocker is released");
        assert_eq!(ran, 20, "every scoped job ran");
    });
}

#[test]
fn every_worker_waiting_at_a_scope_end_at_once_finishes() {
    with_timeout("all workers at a scope's end", || {
        let pool = Arc::new(WorkerPool::new(2, 1));
        let barrier = Arc::new(Barrier::new(2));
        let handles: Vec<_> = (0..2u64)
            .map(|k| {
                let (p, barrier) = (Arc::clone(&pool), Arc::clone(&barrier));
                start_on_worker(&pool, move || {
                    barrier.wait(); // both workers are busy in these jobs
                    let total = Mutex::new(0u64);
                    let p = &p;
                    p.scope(|s| {
                        for i in 0..50u64 {
                            let total = &total;
                            s.submit(move || {
                                // Each scoped job waits on a nested scoped job too.
                                let v = p.scope(|s2| s2.spawn(move || i * k).join().unwrap());
                                *total.lock().unwrap() += v;
                            });
                        }
                    });
                    total.into_inner().unwrap()
                })
            })
            .collect();
        let totals: Vec<u64> = handles
            .into_iter()
            .map(|h| finish(h, "a job with a scope"))
            .collect();
        assert_eq!(totals, [0, 1225], "sum of i * k over 0..50 for k = 0, 1");
    });
}

#[test]
fn map_consumer_on_a_worker_while_the_other_worker_is_blocked() {
    with_timeout("map consumed on a worker", || {
        let pool = Arc::new(WorkerPool::new(2, 0));
        let (gate, mut held) = hold_workers(&pool, 1);
        let blocker = held.pop().unwrap();
        let p = Arc::clone(&pool);
        let out = on_worker(&pool, move || {
            p.map(0..500u32, |i| i + 1).collect::<Vec<_>>()
        });
        gate.open();
        blocker.join().expect("the blocker is released");
        assert_eq!(
            out,
            (1..=500u32).collect::<Vec<_>>(),
            "ordered results from a job"
        );
    });
}
