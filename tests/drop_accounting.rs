//! Drop accounting: every job carries a payload whose `Drop` counts per id, and every path a job
//! can take (run, panic, handed back by `try_submit` / `submit_timeout` / `try_spawn` /
//! `shutdown_now`, cancelled, drained at drop, scoped, `map`) must drop it exactly once: no leak,
//! no double drop. Results carry counted payloads too (joined, detached, cancelled, discarded).

mod common;

use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use boundpool::WorkerPool;
use common::{quiet_panics, with_timeout, within, Drops, Gate, PATIENCE};

/// Polls until `done()` holds, for at most `PATIENCE` (for effects on threads the test cannot
/// join: detached workers).
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not reached in time");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn jobs_that_run_drop_their_captures_once() {
    with_timeout("jobs that run drop their captures once", || {
        let drops = Drops::new(200);
        let pool = WorkerPool::new(3, 4);
        for id in 0..200 {
            drops.submit_touching(&pool, id);
        }
        let stats = pool.shutdown();
        assert_eq!(stats.completed, 200, "every job ran");
        drops.assert_all_once("ran");
    });
}

#[test]
fn panicking_jobs_drop_their_captures_once() {
    with_timeout("panicking jobs drop their captures once", || {
        quiet_panics("armour:");
        let drops = Drops::new(100);
        let pool = WorkerPool::new(2, 4);
        let mut handles = Vec::new();
        for id in 0..100 {
            let p = drops.payload(id);
            if id % 2 == 0 {
                pool.submit(move || {
                    p.touch();
                    panic!("armour: job {id}");
                });
            } else {
                handles.push(pool.spawn(move || -> u8 {
                    p.touch();
                    panic!("armour: spawned {id}");
                }));
            }
        }
        for h in handles {
            assert!(
                h.join().is_err_and(|e| e.is_panic()),
                "spawned job panicked"
            );
        }
        let stats = pool.shutdown();
        assert_eq!(stats.panicked, 100, "every panic counted");
        drops.assert_all_once("panicked");
    });
}

#[test]
fn jobs_handed_back_by_try_submit_and_submit_timeout_drop_once() {
    with_timeout(
        "jobs handed back by try submit and submit timeout drop once",
        || {
            let drops = Drops::new(6);
            let pool = WorkerPool::new(1, 1);
            let gate = Gate::new();
            gate.hold(&pool, 1);
            drops.submit_touching(&pool, 0);

            let p = drops.payload(1);
            let back = pool.try_submit(move || {
                p.touch();
            });
            let job = back.expect_err("queue full").into_inner();
            assert_eq!(drops.count(1), 0, "a handed-back job is untouched");
            drop(job);
            assert_eq!(
                drops.count(1),
                1,
                "dropping the handed-back job drops its capture"
            );

            let p = drops.payload(2);
            let back = pool.try_submit(move || {
                p.touch();
            });
            back.expect_err("queue full").into_inner()(); // run it here
            assert_eq!(
                drops.count(2),
                1,
                "running the handed-back job drops its capture"
            );

            let p = drops.payload(3);
            let back = pool.submit_timeout(
                move || {
                    p.touch();
                },
                Duration::from_millis(2),
            );
            drop(back.expect_err("still full"));
            assert_eq!(drops.count(3), 1, "a timed-out job drops once");

            let p = drops.payload(4);
            let back = pool.try_spawn(move || p.touch());
            let job = back.expect_err("try_spawn: full").into_inner();
            assert_eq!(drops.count(4), 0, "untouched");
            assert_eq!(job(), 4, "the same closure");
            assert_eq!(drops.count(4), 1, "dropped once when run");

            let p = drops.payload(5);
            drop(pool.try_spawn(move || p.touch()).expect_err("full"));
            gate.open();
            pool.shutdown();
            drops.assert_all_once("handed back");
        },
    );
}

#[test]
fn shutdown_now_jobs_drop_once_whether_dropped_or_run() {
    with_timeout("shutdown now jobs drop once whether dropped or run", || {
        for run_them in [false, true] {
            let drops = Drops::new(16);
            let results = Drops::new(16);
            let pool = WorkerPool::new(1, 16);
            let gate = Gate::new();
            gate.hold(&pool, 1);
            let mut handles = Vec::new();
            for id in 0..16 {
                let p = drops.payload(id);
                if id % 2 == 0 {
                    pool.submit(move || {
                        p.touch();
                    });
                } else {
                    let r = results.clone();
                    handles.push((
                        id,
                        pool.spawn(move || {
                            p.touch();
                            r.payload(id)
                        }),
                    ));
                }
            }
            gate.open();
            let unstarted = pool.shutdown_now();
            let returned = unstarted.len();
            if run_them {
                unstarted.into_iter().for_each(|job| job.run());
            } else {
                drop(unstarted);
            }
            drops.assert_all_once(&format!("shutdown_now, run_them={run_them}"));
            for (id, h) in handles {
                match h.join() {
                    Ok(r) => assert_eq!(r.id, id, "the right result"),
                    Err(e) => {
                        assert!(!run_them, "only dropped jobs are cancelled: {e:?}");
                        assert!(e.is_cancelled(), "not run means cancelled: {e:?}");
                        assert_eq!(results.count(id), 0, "a cancelled job made no result");
                        continue;
                    }
                }
                assert_eq!(results.count(id), 1, "a joined result is dropped once");
            }
            assert!(returned <= 16, "no more returned than queued");
        }
    });
}

#[test]
fn dropping_a_pool_with_a_full_queue_runs_and_drops_everything() {
    with_timeout(
        "dropping a pool with a full queue runs and drops everything",
        || {
            let drops = Drops::new(9);
            let pool = WorkerPool::new(1, 8);
            let gate = Gate::new();
            gate.hold(&pool, 1);
            for id in 0..8 {
                drops.submit_touching(&pool, id);
            }
            let p = drops.payload(8);
            let back = pool.try_submit(move || {
                p.touch();
            });
            assert!(back.is_err(), "the queue is full");
            drop(back);
            gate.open();
            within(PATIENCE, "drop of a pool with a full queue", move || {
                drop(pool)
            });
            drops.assert_all_once("pool dropped with a full queue");
        },
    );
}

#[test]
fn pool_dropped_inside_its_own_job_still_drops_everything_once() {
    with_timeout(
        "pool dropped inside its own job still drops everything once",
        || {
            let drops = Drops::new(8);
            let pool = Arc::new(WorkerPool::new(2, 8));
            let gate = Gate::new();
            gate.hold(&pool, 2);
            for id in 0..6 {
                drops.submit_touching(&pool, id);
            }
            // The last Arc is released inside a job: drop on a worker thread joins nothing.
            let me = Arc::clone(&pool);
            let p = drops.payload(6);
            pool.submit(move || {
                p.touch();
                drop(me);
            });
            let last = drops.payload(7);
            drop(pool); // now the job above holds the last Arc
            drop(last);
            gate.open();
            eventually("detached workers drain the queue", || {
                (0..8).all(|id| drops.count(id) >= 1)
            });
            drops.assert_all_once("pool dropped inside its own job");
        },
    );
}

#[test]
fn shutdown_timeout_detached_workers_still_drop_everything_once() {
    with_timeout(
        "shutdown timeout detached workers still drop everything once",
        || {
            let drops = Drops::new(5);
            let pool = WorkerPool::new(1, 4);
            let gate = Gate::new();
            gate.hold(&pool, 1);
            for id in 0..4 {
                drops.submit_touching(&pool, id);
            }
            let stats = pool
                .shutdown_timeout(Duration::from_millis(1))
                .expect_err("the held worker cannot finish in time");
            assert_eq!(
                stats.active, 1,
                "the held job was still running at the deadline"
            );
            drop(drops.payload(4));
            gate.open();
            eventually("detached worker drains the queue", || {
                (0..5).all(|id| drops.count(id) >= 1)
            });
            drops.assert_all_once("shutdown_timeout detached");
        },
    );
}

#[test]
fn spawn_results_drop_once_joined_detached_or_discarded() {
    with_timeout(
        "spawn results drop once joined detached or discarded",
        || {
            let captures = Drops::new(40);
            let results = Drops::new(40);
            let pool = WorkerPool::new(2, 40);
            let gate = Gate::new();
            gate.hold(&pool, 2);
            let mut joined = Vec::new();
            let mut unjoined = Vec::new();
            for id in 0..40 {
                let (p, r) = (captures.payload(id), results.clone());
                let h = pool.spawn(move || {
                    p.touch();
                    r.payload(id)
                });
                match id % 3 {
                    0 => joined.push(h),
                    1 => drop(h), // detached before it ran: the result drops on the worker
                    _ => unjoined.push(h), // dropped after completion, never joined
                }
            }
            gate.open();
            for h in joined {
                assert!(h.join().is_ok(), "the job ran");
            }
            for h in unjoined {
                assert!(h.wait_timeout(PATIENCE), "finished in time");
            }
            pool.shutdown();
            captures.assert_all_once("spawn captures");
            results.assert_all_once("spawn results");

            // Dropped unjoined after completion.
            let results = Drops::new(1);
            let pool = WorkerPool::new(1, 1);
            let r = results.clone();
            let h = pool.spawn(move || r.payload(0));
            assert!(h.wait_timeout(PATIENCE), "finished");
            assert_eq!(results.count(0), 0, "the result waits in the slot");
            drop(h);
            // The worker may still hold its reference for a moment; after shutdown nothing does.
            pool.shutdown();
            assert_eq!(
                results.count(0),
                1,
                "a finished, unjoined result is dropped once"
            );
        },
    );
}

#[test]
fn scoped_jobs_drop_captures_and_results_once() {
    with_timeout("scoped jobs drop captures and results once", || {
        quiet_panics("armour:");
        let captures = Drops::new(30);
        let results = Drops::new(30);
        let pool = WorkerPool::new(2, 4);
        let out = panic::catch_unwind(AssertUnwindSafe(|| {
            pool.scope(|s| {
                for id in 0..30 {
                    let (p, r) = (captures.payload(id), results.clone());
                    let h = s.spawn(move || {
                        p.touch();
                        if id == 29 {
                            panic!("armour: scoped {id}");
                        }
                        r.payload(id)
                    });
                    if id % 3 == 0 {
                        let got = h.join();
                        assert_eq!(got.map(|r| r.id).ok(), Some(id), "joined value");
                    }
                }
            })
        }));
        assert!(out.is_err(), "the unjoined panic is re-raised");
        captures.assert_all_once("scoped captures");
        results.assert_each_once(0..29, "scoped results");
        assert_eq!(results.count(29), 0, "the panicking job made no result");
    });
}

#[test]
fn map_dropped_half_way_drops_items_and_results_once() {
    with_timeout("map dropped half way drops items and results once", || {
        let items = Drops::new(100);
        let results = Drops::new(100);
        let made = Drops::new(100);
        let pool = WorkerPool::new(2, 4);
        let (r, m) = (results.clone(), made.clone());
        let input: Vec<_> = (0..100).map(|id| items.payload(id)).collect();
        let mut it = pool.map(input, move |p| {
            drop(m.payload(p.id)); // counts the result as made
            r.payload(p.touch())
        });
        for want in 0..10 {
            let got = it.next().expect("a result");
            assert_eq!(got.id, want, "in order");
        }
        drop(it);
        pool.wait_idle();
        pool.shutdown();
        // Input items never pulled were dropped with the iterator; pulled ones ran.
        items.assert_all_once("map items");
        results.assert_each_once(0..10, "map results taken");
        for id in 0..100 {
            let (m, d) = (made.count(id), results.count(id));
            assert!(m <= 1, "item {id} mapped at most once, got {m}");
            assert_eq!(d, m, "result {id}: dropped exactly as often as made");
        }
    });
}

#[test]
fn cancelled_spawn_drops_its_capture_once_and_makes_no_result() {
    with_timeout(
        "cancelled spawn drops its capture once and makes no result",
        || {
            let captures = Drops::new(8);
            let results = Drops::new(8);
            let pool = WorkerPool::new(1, 8);
            let gate = Gate::new();
            gate.hold(&pool, 1);
            let handles: Vec<_> = (0..8)
                .map(|id| {
                    let (p, r) = (captures.payload(id), results.clone());
                    pool.spawn(move || {
                        p.touch();
                        r.payload(id)
                    })
                })
                .collect();
            gate.open();
            let unstarted = pool.shutdown_now();
            drop(unstarted);
            for (id, h) in handles.into_iter().enumerate() {
                match h.join() {
                    Ok(r) => assert_eq!(r.id, id, "the right result"),
                    Err(e) => {
                        assert!(e.is_cancelled(), "not run means cancelled: {e:?}");
                        assert_eq!(results.count(id), 0, "a cancelled job made no result");
                    }
                }
            }
            captures.assert_all_once("cancelled captures");
            for id in 0..8 {
                assert!(results.count(id) <= 1, "result {id} dropped at most once");
            }
        },
    );
}

/// Closures over 1 KiB are boxed on their way into a slot: handed back, run and joined, run
/// unjoined in a scope, their captures still drop once.
#[test]
fn large_closures_drop_their_captures_once_on_every_path() {
    with_timeout("large closures drop once", || {
        let drops = Drops::new(4);
        let pool = WorkerPool::new(1, 1);
        let gate = Gate::new();
        gate.hold(&pool, 1);
        let big = |id: usize| {
            let payload = drops.payload(id);
            let pad = [id as u8; 4096];
            move || payload.touch() + pad[100] as usize
        };
        let queued = pool.spawn(big(0)); // fills the one slot
        let refused = pool.try_spawn(big(1)).expect_err("the queue is full");
        assert_eq!(
            refused.into_inner()(),
            2,
            "the closure came back whole and runs"
        );
        assert_eq!(drops.count(1), 1, "the handed-back closure dropped once");
        gate.open();
        assert_eq!(queued.join().unwrap(), 0, "the queued closure ran");
        drops.assert_each_once([0, 1], "large spawn closures");
        let pool = WorkerPool::new(1, 4);
        pool.scope(|s| {
            let job = big(2);
            s.submit(move || {
                job();
            });
            assert_eq!(s.spawn(big(3)).join().unwrap(), 6, "id + the pad byte");
        });
        drops.assert_each_once([2, 3], "large scoped closures");
    });
}

/// A chain of jobs deeper than `MAX_NESTING` into a full pool goes through the overflow; every
/// link's capture drops once, and so do the links `shutdown_now` hands back from the overflow.
#[test]
fn overflowed_jobs_drop_their_captures_once() {
    fn link(pool: std::sync::Weak<WorkerPool>, drops: Drops, id: usize, last: usize) {
        let payload = drops.payload(id);
        let Some(p) = pool.upgrade() else { return };
        p.submit(move || {
            payload.touch();
            if id < last {
                link(pool, drops, id + 1, last);
            }
        });
    }
    with_timeout("overflowed jobs drop once", || {
        let n = 4 * boundpool::MAX_NESTING;
        let drops = Drops::new(n + 1);
        let pool = Arc::new(WorkerPool::new(1, 2));
        let gate = Gate::new();
        // The worker is busy while the queue is filled, so the chain meets a full queue.
        let (start_tx, start) = std::sync::mpsc::channel::<()>();
        let weak = Arc::downgrade(&pool);
        let d = drops.clone();
        pool.submit(move || {
            start.recv_timeout(PATIENCE).unwrap();
            link(weak, d, 0, n);
        });
        for _ in 0..2 {
            pool.submit(gate.job());
        }
        gate.open();
        start_tx.send(()).unwrap();
        // A wait_idle now would not wait for the links submitted after it: first wait until the
        // last link has run (every link is then accepted), then for all of them to finish (the
        // links nested beneath the last drop their captures as they unwind).
        let deadline = Instant::now() + PATIENCE;
        while drops.count(n) == 0 {
            assert!(Instant::now() < deadline, "the chain finished");
            std::thread::yield_now();
        }
        pool.wait_idle();
        drops.assert_all_once("a chain through the overflow");
        let pool = Arc::into_inner(pool).expect("no job holds the pool");
        assert_eq!(pool.shutdown().overflow, 0, "nothing left in the overflow");
    });
}
