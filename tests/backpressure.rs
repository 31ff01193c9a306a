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
    with_timeout("fill the queue, then get jobs back", || {
        for capacity in [1, 4, 16] {
            check_capacity(capacity);
        }
    });
}

fn check_capacity(capacity: usize) {
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
    // Had a refused job stayed counted as accepted, it would show as queued forever now
    // (while the queue was full, `queued` is capped at `capacity` and could not show it).
    assert_eq!(
        stats.queued, 0,
        "refused jobs are not counted as queued: nothing is left over once all ran"
    );
}

#[test]
fn blocking_submit_waits_until_a_worker_frees_a_slot() {
    with_timeout("blocking submit", blocking_submit_body);
}

fn blocking_submit_body() {
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
    // (Whether the blocked job counts as queued cannot be seen from here: `Stats::queued` is
    // capped at `capacity`, and the job has not run. The final counts below cover it.)
    gate.open();
    done_rx
        .recv_timeout(PATIENCE)
        .expect("submit went through once a worker was released");
    producer.join().unwrap();
    pool.wait_idle();
    let stats = pool.stats();
    assert_eq!(stats.completed, 4, "held + 2 queued + the blocked one");
    assert_eq!(stats.queued, 0, "nothing left queued once idle");
}

#[test]
fn capacity_zero_is_a_rendezvous() {
    with_timeout("rendezvous", rendezvous_body);
}

fn rendezvous_body() {
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
    // Blocking submits hand each job straight to the worker. A submit returns only once the
    // one worker has taken the job, and it takes a job only after starting (and finishing) the
    // one before: so after `n` submits returned, at least `n - 1` jobs have started. A queue
    // that buffered anything would let the producer run further ahead.
    let ran = Arc::new(AtomicUsize::new(0));
    for returned in 1..=100 {
        let ran2 = Arc::clone(&ran);
        pool.submit(move || {
            ran2.fetch_add(1, Ordering::SeqCst);
        });
        let started = ran.load(Ordering::SeqCst);
        assert!(
            returned - started.min(returned) <= 1,
            "a rendezvous queue holds nothing: {returned} submits returned, only {started} \
             jobs started"
        );
    }
    pool.shutdown();
    assert_eq!(ran.load(Ordering::SeqCst), 100, "every handed-over job ran");
}

#[test]
fn many_blocked_producers_never_exceed_the_bound() {
    with_timeout("blocked producers", || {
        const WORKERS: usize = 2;
        const CAPACITY: usize = 3;
        let pool = WorkerPool::new(WORKERS, CAPACITY);
        // Measured here, not with `Stats::queued` (which is capped at the capacity): each
        // producer counts a submit once it has returned, each job counts itself as it starts.
        // Every returned submit was accepted; at most `CAPACITY` accepted jobs are in the
        // queue, and at most one per worker has been taken off it but not yet counted itself
        // as started. Reading `returned` before `started` keeps the difference an upper bound.
        let returned = AtomicUsize::new(0);
        let started = Arc::new(AtomicUsize::new(0));
        let worst = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..2_000 {
                        let count = Arc::clone(&started);
                        pool.submit(move || {
                            count.fetch_add(1, Ordering::SeqCst);
                            // Slower jobs than submits keep the queue full and the producers
                            // blocked, where an unbounded queue would let them run ahead.
                            common::spin(300);
                        });
                        let r = returned.fetch_add(1, Ordering::SeqCst) + 1;
                        let st = started.load(Ordering::SeqCst);
                        worst.fetch_max(r.saturating_sub(st), Ordering::SeqCst);
                    }
                });
            }
        });
        let worst = worst.load(Ordering::SeqCst);
        assert!(
            worst <= CAPACITY + WORKERS,
            "{worst} submits returned ahead of the jobs started: more than capacity {CAPACITY} \
             + {WORKERS} jobs in hand"
        );
        assert_eq!(pool.shutdown().completed, 8_000, "every job counted");
        assert_eq!(started.load(Ordering::SeqCst), 8_000, "every job ran");
    });
}
