//! Waiting: `wait_idle` returns once every job accepted before the call has finished, cannot be
//! starved by new submissions, and works repeatedly and from several threads at once.
mod common;

use boundpool::WorkerPool;
use common::{with_timeout, Gate, Progress};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[test]
fn wait_idle_waits_for_every_job_accepted_before_it() {
    with_timeout("wait_idle rounds", wait_idle_rounds);
}

fn wait_idle_rounds() {
    let pool = WorkerPool::new(2, 16);
    let done = Arc::new(AtomicUsize::new(0));
    for round in 1..=5 {
        for _ in 0..200 {
            let done = Arc::clone(&done);
            pool.submit(move || {
                std::thread::yield_now();
                done.fetch_add(1, Ordering::SeqCst);
            });
        }
        pool.wait_idle();
        assert_eq!(done.load(Ordering::SeqCst), round * 200, "round {round}");
        let stats = pool.stats();
        assert_eq!((stats.queued, stats.active), (0, 0), "idle after wait_idle");
        assert_eq!(
            stats.completed,
            (round * 200) as u64,
            "stats include the jobs"
        );
    }
}

#[test]
fn a_nonstop_feeder_cannot_starve_wait_idle() {
    with_timeout("wait_idle with a feeder", || {
        let pool = Arc::new(WorkerPool::new(2, 8));
        let stop = Arc::new(AtomicBool::new(false));
        let fed = Progress::new();
        let feeder = {
            let (pool, stop, fed) = (Arc::clone(&pool), Arc::clone(&stop), fed.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    pool.submit(|| {
                        for _ in 0..100 {
                            std::hint::spin_loop();
                        }
                    });
                    fed.bump();
                }
            })
        };
        fed.wait_past(999, "the feeder submitted 1000 jobs");
        for round in 0..20 {
            // The feeder is submitting right up to the call...
            let before = fed.wait_past(fed.get(), "the feeder is feeding before wait_idle");
            pool.wait_idle();
            assert!(
                pool.stats().completed >= before,
                "every job submitted before the call has completed"
            );
            // ...and is still submitting after it returned: it never stopped, yet the wait
            // ended.
            fed.wait_past(
                fed.get(),
                &format!("round {round}: the feeder kept going after wait_idle"),
            );
        }
        stop.store(true, Ordering::SeqCst);
        feeder.join().unwrap();
    });
}

#[test]
fn several_threads_wait_at_once_while_the_pool_works() {
    with_timeout("concurrent wait_idle", || {
        let pool = WorkerPool::new(2, 32);
        let done = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for t in 0..4 {
                let (pool, done) = (&pool, &done);
                s.spawn(move || {
                    for round in 0..50 {
                        let mine = Arc::new(AtomicUsize::new(0));
                        for _ in 0..10 {
                            let mine = Arc::clone(&mine);
                            pool.submit(move || {
                                mine.fetch_add(1, Ordering::SeqCst);
                            });
                        }
                        pool.wait_idle();
                        assert_eq!(mine.load(Ordering::SeqCst), 10, "thread {t} round {round}");
                    }
                    done.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        assert_eq!(done.load(Ordering::SeqCst), 4, "every waiter returned");
    });
}

#[test]
fn wait_idle_timeout_reports_whether_the_pool_went_idle() {
    with_timeout("wait_idle_timeout", wait_idle_timeout_body);
}

fn wait_idle_timeout_body() {
    let pool = WorkerPool::new(1, 4);
    let gate = Gate::new();
    let g = gate.clone();
    pool.submit(move || g.wait());
    gate.wait_for_waiters(1);
    assert!(
        !pool.wait_idle_timeout(Duration::from_millis(20)),
        "a held job keeps the pool busy"
    );
    gate.open();
    assert!(
        pool.wait_idle_timeout(common::PATIENCE),
        "idle once released"
    );
    assert!(
        pool.wait_idle_timeout(Duration::ZERO),
        "an idle pool is idle at once"
    );
}
