//! Backpressure: with every worker held, exactly `capacity` jobs are accepted; the next submit
//! waits (or comes back untouched) until a worker frees a slot.
mod common;

use boundpool::{SubmitTimeoutError, TrySubmitError, WorkerPool};
use common::{with_timeout, Gate, PATIENCE};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

/// A pool whose `workers` threads are all held at `gate`.
fn held_pool(workers: usize, capacity: usize, gate: &Gate) -> WorkerPool {
    let pool = WorkerPool::new(workers, capacity);
    for _ in 0..workers {
        let gate = gate.clone();
        pool.submit(move || gate.wait());
    }
    gate.wait_for_waiters(workers);
    pool
}

#[test]
fn exactly_capacity_jobs_are_accepted_then_full_gives_the_job_back() {
    for capacity in [1, 4, 16] {
        let gate = Gate::new();
        let pool = held_pool(2, capacity, &gate);
        let ran = Arc::new(AtomicUsize::new(0));
        for i in 0..capacity {
            let ran = Arc::clone(&ran);
            let accepted = pool.try_submit(move || {
                ran.fetch_add(1, Ordering::SeqCst);
            });
            assert!(accepted.is_ok(), "job {i} of {capacity} fits in the queue");
        }
        assert_eq!(pool.stats().queued, capacity, "queue is full");
        let marker = Arc::new(AtomicBool::new(false));
        let m = Arc::clone(&marker);
        let err = pool
            .try_submit(move || m.store(true, Ordering::SeqCst))
            .unwrap_err();
        assert!(err.is_full(), "Full when the queue is full");
        assert_eq!(format!("{err:?}"), "Full(..)", "Debug without F: Debug");
        let job = err.into_inner();
        job(); // the closure came back untouched and still works
        assert!(marker.load(Ordering::SeqCst), "returned closure ran");

        let err = pool
            .submit_timeout(|| (), Duration::from_millis(20))
            .unwrap_err();
        assert!(matches!(err, SubmitTimeoutError::Timeout(_)), "timed out");
        err.into_inner()();
        assert_eq!(
            pool.stats().queued,
            capacity,
            "rejected jobs are not counted as queued"
        );

        gate.open();
        let stats = pool.shutdown();
        assert_eq!(
            ran.load(Ordering::SeqCst),
            capacity,
            "accepted jobs all ran"
        );
        assert_eq!(
            stats.completed as usize,
            capacity + 2,
            "held jobs + accepted"
        );
    }
}

#[test]
fn blocking_submit_waits_until_a_worker_frees_a_slot() {
    let gate = Gate::new();
    let pool = Arc::new(held_pool(1, 2, &gate));
    for _ in 0..2 {
        pool.submit(|| ());
    }
    assert_eq!(pool.stats().queued, 2, "full");
    let (done_tx, done_rx) = mpsc::channel();
    let producer = {
        let pool = Arc::clone(&pool);
        std::thread::spawn(move || {
            pool.submit(|| ());
            done_tx.send(()).unwrap();
        })
    };
    // The producer must not get through while the queue stays full. (This only shows it was
    // still blocked after a while; no timing is asserted.)
    assert!(
        done_rx.recv_timeout(Duration::from_millis(100)).is_err(),
        "submit returned while the queue was full"
    );
    assert_eq!(pool.stats().queued, 2, "the blocked job is not queued");
    gate.open();
    done_rx
        .recv_timeout(PATIENCE)
        .expect("submit went through once a worker was released");
    producer.join().unwrap();
    pool.wait_idle();
    assert_eq!(
        pool.stats().completed,
        4,
        "held + 2 queued + the blocked one"
    );
}

#[test]
fn capacity_zero_is_a_rendezvous() {
    let gate = Gate::new();
    let pool = held_pool(1, 0, &gate);
    assert!(
        matches!(pool.try_submit(|| ()), Err(TrySubmitError::Full(_))),
        "no worker is waiting: nothing can be accepted"
    );
    assert!(
        pool.submit_timeout(|| (), Duration::from_millis(20))
            .is_err(),
        "no taker within the timeout"
    );
    gate.open();
    // Blocking submits hand each job straight to the worker.
    let ran = Arc::new(AtomicUsize::new(0));
    for _ in 0..100 {
        let ran = Arc::clone(&ran);
        pool.submit(move || {
            ran.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(pool.stats().queued, 0, "a rendezvous queue holds nothing");
    }
    pool.shutdown();
    assert_eq!(ran.load(Ordering::SeqCst), 100, "every handed-over job ran");
}

#[test]
fn many_blocked_producers_never_exceed_the_bound() {
    with_timeout("blocked producers", || {
        let capacity = 3;
        let pool = WorkerPool::new(2, capacity);
        let ran = Arc::new(AtomicUsize::new(0));
        let over = AtomicBool::new(false);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..2_000 {
                        let ran = Arc::clone(&ran);
                        pool.submit(move || {
                            ran.fetch_add(1, Ordering::Relaxed);
                        });
                        if pool.stats().queued > capacity {
                            over.store(true, Ordering::SeqCst);
                        }
                    }
                });
            }
        });
        assert!(!over.load(Ordering::SeqCst), "queued exceeded capacity");
        assert_eq!(pool.shutdown().completed, 8_000, "every job counted");
        assert_eq!(ran.load(Ordering::SeqCst), 8_000, "every job ran");
    });
}
