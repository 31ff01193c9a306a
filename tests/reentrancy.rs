//! Waiting never needs a free worker: jobs that submit to, wait on, scope over or map over their
//! own pool finish, even on one worker, nested, and across pools.
mod common;

use boundpool::WorkerPool;
use common::with_timeout;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

#[test]
fn a_job_submitting_a_hundred_jobs_to_its_full_one_worker_pool_completes() {
    let runs = with_timeout("caller-runs", || {
        let pool = Arc::new(WorkerPool::new(1, 1));
        let runs: Arc<Vec<AtomicUsize>> = Arc::new((0..101).map(|_| AtomicUsize::new(0)).collect());
        let (p, r) = (Arc::clone(&pool), Arc::clone(&runs));
        pool.submit(move || {
            r[100].fetch_add(1, Ordering::SeqCst);
            for i in 0..100 {
                let r = Arc::clone(&r);
                p.submit(move || {
                    r[i].fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        // The first wait covers the outer job, which accepts the other 100 during it; those were
        // accepted after the call began, so only a second wait covers them.
        pool.wait_idle();
        pool.wait_idle();
        assert_eq!(pool.stats().completed, 101, "all counted");
        runs
    });
    for (i, r) in runs.iter().enumerate() {
        assert_eq!(r.load(Ordering::SeqCst), 1, "job {i} ran exactly once");
    }
}

#[test]
fn a_job_joining_a_job_it_spawned_on_a_one_worker_pool() {
    let v = with_timeout("join inside a job", || {
        let pool = Arc::new(WorkerPool::new(1, 4));
        let p = Arc::clone(&pool);
        pool.spawn(move || p.spawn(|| 21).join().unwrap() * 2)
            .join()
            .unwrap()
    });
    assert_eq!(v, 42, "nested join");
}

#[test]
fn a_job_opening_a_scope_on_a_one_worker_pool() {
    let total = with_timeout("scope inside a job", || {
        let pool = Arc::new(WorkerPool::new(1, 2));
        let p = Arc::clone(&pool);
        pool.spawn(move || {
            let data: Vec<u64> = (1..=100).collect();
            let sum = AtomicUsize::new(0);
            p.scope(|s| {
                for chunk in data.chunks(10) {
                    let sum = &sum;
                    s.submit(move || {
                        sum.fetch_add(chunk.iter().sum::<u64>() as usize, Ordering::SeqCst);
                    });
                }
            });
            sum.into_inner()
        })
        .join()
        .unwrap()
    });
    assert_eq!(total, 5050, "scoped sum");
}

#[test]
fn a_job_mapping_on_a_one_worker_pool() {
    let out = with_timeout("map inside a job", || {
        let pool = Arc::new(WorkerPool::new(1, 0));
        let p = Arc::clone(&pool);
        pool.spawn(move || p.map(0..100u32, |i| i * i).collect::<Vec<_>>())
            .join()
            .unwrap()
    });
    assert_eq!(
        out,
        (0..100u32).map(|i| i * i).collect::<Vec<_>>(),
        "ordered"
    );
}

#[test]
fn a_job_calling_wait_idle_on_a_one_worker_pool() {
    with_timeout("wait_idle inside a job", || {
        let pool = Arc::new(WorkerPool::new(1, 8));
        let done = Arc::new(AtomicUsize::new(0));
        let (p, d) = (Arc::clone(&pool), Arc::clone(&done));
        let handle = pool.spawn(move || {
            for _ in 0..8 {
                let d = Arc::clone(&d);
                p.submit(move || {
                    d.fetch_add(1, Ordering::SeqCst);
                });
            }
            p.wait_idle(); // runs the queued jobs itself: it is on the only worker
            d.load(Ordering::SeqCst)
        });
        assert_eq!(
            handle.join().unwrap(),
            8,
            "queued jobs ran before wait_idle returned"
        );
    });
}

#[test]
fn every_worker_waiting_idle_at_once_completes() {
    with_timeout("wait_idle on every worker", || {
        let pool = Arc::new(WorkerPool::new(2, 16));
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let p = Arc::clone(&pool);
                pool.spawn(move || {
                    for _ in 0..10 {
                        p.submit(|| ());
                    }
                    p.wait_idle();
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        pool.wait_idle();
        assert_eq!(pool.stats().completed, 22, "all ran");
    });
}

#[test]
fn wait_idle_in_a_job_with_a_feeder_running() {
    with_timeout("wait_idle in a job while fed", || {
        let pool = Arc::new(WorkerPool::new(2, 8));
        let stop = Arc::new(AtomicBool::new(false));
        let feeder = {
            let (p, stop) = (Arc::clone(&pool), Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    p.submit(std::thread::yield_now);
                }
            })
        };
        let p = Arc::clone(&pool);
        pool.spawn(move || {
            for _ in 0..10 {
                p.wait_idle();
            }
        })
        .join()
        .unwrap();
        stop.store(true, Ordering::SeqCst);
        feeder.join().unwrap();
    });
}

#[test]
fn three_levels_of_nested_waits_on_one_worker() {
    let v = with_timeout("nesting", || {
        let pool = Arc::new(WorkerPool::new(1, 1));
        let p1 = Arc::clone(&pool);
        pool.spawn(move || {
            // level 1: a scope
            p1.scope(|s| {
                let p2 = Arc::clone(&p1);
                let h = s.spawn(move || {
                    // level 2: a map whose items join (level 3)
                    let p3 = Arc::clone(&p2);
                    p2.map(1..=4u64, move |i| {
                        let p4 = Arc::clone(&p3);
                        p3.spawn(move || p4.spawn(move || i * 10).join().unwrap())
                            .join()
                            .unwrap()
                    })
                    .sum::<u64>()
                });
                h.join().unwrap()
            })
        })
        .join()
        .unwrap()
    });
    assert_eq!(v, 100, "10 + 20 + 30 + 40");
}

#[test]
fn a_wait_that_crosses_two_one_worker_pools() {
    let v = with_timeout("A -> B -> A", || {
        let a = Arc::new(WorkerPool::new(1, 2));
        let b = Arc::new(WorkerPool::new(1, 2));
        let mut total = 0;
        for round in 0..50 {
            let (a2, b2) = (Arc::clone(&a), Arc::clone(&b));
            total += a
                .spawn(move || {
                    let a3 = Arc::clone(&a2);
                    b2.spawn(move || a3.spawn(move || round).join().unwrap() + 1)
                        .join()
                        .unwrap()
                })
                .join()
                .unwrap();
        }
        total
    });
    assert_eq!(
        v,
        (0..50).map(|r| r + 1).sum::<i32>(),
        "every round finished"
    );
}
