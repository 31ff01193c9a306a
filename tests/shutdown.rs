//! Shutdown: graceful shutdown and drop run every accepted job and join every thread;
//! `shutdown_timeout` honours its deadline; `shutdown_now` returns exactly the unstarted jobs.
mod common;

use boundpool::WorkerPool;
use common::{shutdown_now_on_a_worker, with_timeout, Gate, PATIENCE};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// A pool that counts its stopped worker threads, and also reports each stop on a channel.
fn counted_pool(workers: usize, capacity: usize) -> (WorkerPool, Arc<AtomicUsize>) {
    let (pool, stopped, _) = signalled_pool(workers, capacity);
    (pool, stopped)
}

/// [`counted_pool`], with the receiving end of the channel each worker's stop hook sends on.
fn signalled_pool(
    workers: usize,
    capacity: usize,
) -> (WorkerPool, Arc<AtomicUsize>, mpsc::Receiver<()>) {
    let stopped = Arc::new(AtomicUsize::new(0));
    let s = Arc::clone(&stopped);
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let pool = WorkerPool::builder()
        .workers(workers)
        .capacity(capacity)
        .on_thread_stop(move || {
            s.fetch_add(1, Ordering::SeqCst);
            let _ = tx.lock().unwrap().send(());
        })
        .build()
        .unwrap();
    (pool, stopped, rx)
}

/// Waits (up to `PATIENCE` each) until `n` workers have reported their stop on `stops`.
fn wait_for_stops(stops: &mpsc::Receiver<()>, n: usize, what: &str) {
    for i in 0..n {
        stops
            .recv_timeout(PATIENCE)
            .unwrap_or_else(|e| panic!("{what}: only {i} of {n} workers exited ({e})"));
    }
}

#[test]
fn shutdown_runs_a_full_queue_and_joins_every_thread() {
    with_timeout("shutdown with a full queue", shutdown_full_queue_body);
}

fn shutdown_full_queue_body() {
    let (pool, stopped) = counted_pool(2, 50);
    let gate = Gate::new();
    for _ in 0..2 {
        let g = gate.clone();
        pool.submit(move || g.wait());
    }
    gate.wait_for_waiters(2);
    let ran = Arc::new(AtomicUsize::new(0));
    for _ in 0..50 {
        let ran = Arc::clone(&ran);
        pool.submit(move || {
            std::thread::yield_now();
            ran.fetch_add(1, Ordering::SeqCst);
        });
    }
    assert_eq!(pool.stats().queued, 50, "queue full at shutdown");
    gate.open();
    let stats = pool.shutdown();
    assert_eq!(ran.load(Ordering::SeqCst), 50, "every queued job ran");
    assert_eq!(stats.completed, 52, "final stats");
    assert_eq!(
        stopped.load(Ordering::SeqCst),
        2,
        "every worker exited before shutdown returned"
    );
}

#[test]
fn drop_runs_everything_and_joins() {
    with_timeout("drop", drop_body);
}

fn drop_body() {
    let (pool, stopped) = counted_pool(3, 100);
    let ran = Arc::new(AtomicUsize::new(0));
    for _ in 0..100 {
        let ran = Arc::clone(&ran);
        pool.submit(move || {
            ran.fetch_add(1, Ordering::SeqCst);
        });
    }
    drop(pool);
    assert_eq!(ran.load(Ordering::SeqCst), 100, "every job ran");
    assert_eq!(stopped.load(Ordering::SeqCst), 3, "every worker exited");
}

#[test]
fn dropping_the_last_arc_inside_a_job_does_not_deadlock() {
    let (stops, was_last) = with_timeout("drop inside a job", || {
        let (pool, _, stops) = signalled_pool(2, 8);
        let pool = Arc::new(pool);
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let (last_tx, last_rx) = mpsc::channel();
        let inner = Arc::clone(&pool);
        pool.submit(move || {
            go_rx.recv_timeout(PATIENCE).unwrap(); // until the test let go of its reference
            last_tx.send(Arc::strong_count(&inner) == 1).unwrap();
            drop(inner); // the last reference, dropped on a worker
        });
        drop(pool);
        go_tx.send(()).unwrap();
        (stops, last_rx.recv_timeout(PATIENCE).unwrap())
    });
    assert!(was_last, "the job held the last reference");
    // The workers drain and exit on their own.
    wait_for_stops(&stops, 2, "after the last reference was dropped in a job");
}

#[test]
fn shutdown_called_from_a_job_of_the_same_pool_returns() {
    with_timeout("shutdown inside a job", || {
        let pool = WorkerPool::new(1, 4);
        let (pool_tx, pool_rx) = mpsc::channel::<WorkerPool>();
        let (tx, rx) = mpsc::channel();
        pool.submit(move || {
            let pool = pool_rx.recv_timeout(PATIENCE).unwrap();
            tx.send(pool.shutdown().workers).unwrap();
        });
        pool_tx.send(pool).unwrap(); // the pool moves into its own job
        assert_eq!(rx.recv_timeout(PATIENCE).unwrap(), 1, "stats from inside");
    });
}

#[test]
fn shutdown_timeout_errs_when_a_job_outlives_the_deadline() {
    with_timeout("shutdown_timeout", shutdown_timeout_body);
}

fn shutdown_timeout_body() {
    let pool = WorkerPool::new(1, 4);
    let gate = Gate::new();
    let g = gate.clone();
    pool.submit(move || g.wait());
    gate.wait_for_waiters(1);
    let stats = pool
        .shutdown_timeout(Duration::from_millis(20))
        .expect_err("the held job outlives the deadline");
    assert_eq!(stats.active, 1, "the held job is still running");
    gate.open(); // the detached worker finishes on its own

    let pool = WorkerPool::new(2, 4);
    for _ in 0..10 {
        pool.submit(|| ());
    }
    let stats = pool
        .shutdown_timeout(PATIENCE)
        .expect("tiny jobs end in time");
    assert_eq!(stats.completed, 10, "all ran");
}

#[test]
fn shutdown_now_returns_exactly_the_unstarted_jobs_in_order() {
    with_timeout("shutdown_now returns the unstarted jobs", || {
        for workers in [1, 2] {
            shutdown_now_in_order(workers);
        }
    });
}

fn shutdown_now_in_order(workers: usize) {
    let (pool, _, stops) = signalled_pool(workers, 40);
    // One worker will call `shutdown_now`; every other one is held until it has returned.
    let (hand_over, unstarted_rx) = shutdown_now_on_a_worker(&pool);
    let gate = Gate::new();
    gate.hold(&pool, workers - 1);
    let runs: Arc<Vec<AtomicUsize>> = Arc::new((0..40).map(|_| AtomicUsize::new(0)).collect());
    let order = Arc::new(Mutex::new(Vec::new()));
    for id in 0..40 {
        let (runs, order) = (Arc::clone(&runs), Arc::clone(&order));
        pool.submit(move || {
            runs[id].fetch_add(1, Ordering::SeqCst);
            order.lock().unwrap().push(id);
        });
    }
    hand_over.send(pool).unwrap();
    let unstarted = unstarted_rx
        .recv_timeout(PATIENCE)
        .expect("shutdown_now returned on the worker");
    // Only now may the held workers go: they see the stop and take nothing more.
    gate.open();
    wait_for_stops(&stops, workers, "after shutdown_now");
    let ran_early: Vec<usize> = order.lock().unwrap().clone();
    assert!(
        ran_early.is_empty(),
        "no worker was free to start a queued job, yet {ran_early:?} ran"
    );
    assert_eq!(
        ran_early.len() + unstarted.len(),
        40,
        "nothing lost or duplicated"
    );
    // Run the returned ones here: they come in FIFO order and are exactly the rest.
    for job in unstarted {
        job.run();
    }
    let all = order.lock().unwrap().clone();
    let returned = &all[ran_early.len()..];
    assert_eq!(
        returned,
        (0..40).collect::<Vec<_>>(),
        "FIFO: every queued job came back, in order"
    );
    for (id, runs) in runs.iter().enumerate() {
        assert_eq!(runs.load(Ordering::SeqCst), 1, "job {id} ran exactly once");
    }
}

#[test]
fn dropped_unstarted_spawn_jobs_report_cancelled() {
    with_timeout("cancelled spawn jobs", dropped_unstarted_body);
}

fn dropped_unstarted_body() {
    // Two workers: one calls `shutdown_now`, the other runs a job held until it has returned.
    let (pool, _, stops) = signalled_pool(2, 10);
    let (hand_over, unstarted_rx) = shutdown_now_on_a_worker(&pool);
    let gate = Gate::new();
    let g = gate.clone();
    let running = pool.spawn(move || {
        g.wait();
        "finished"
    });
    gate.wait_for_waiters(1);
    let handles: Vec<_> = (0..5).map(|i| pool.spawn(move || i)).collect();
    hand_over.send(pool).unwrap();
    let unstarted = unstarted_rx
        .recv_timeout(PATIENCE)
        .expect("shutdown_now returned on the worker");
    let returned = unstarted.len();
    assert_eq!(
        returned, 5,
        "no worker was free: every queued job came back"
    );
    drop(unstarted); // cancels them
    gate.open();
    assert_eq!(
        running.join().unwrap(),
        "finished",
        "the running job finished"
    );
    let (mut ran, mut cancelled) = (0, 0);
    for (i, handle) in handles.into_iter().enumerate() {
        match handle.join() {
            Ok(value) => {
                assert_eq!(value, i, "a job that started ran to completion");
                ran += 1;
            }
            Err(e) => {
                assert!(e.is_cancelled(), "only cancellation: {e:?}");
                cancelled += 1;
            }
        }
    }
    assert_eq!(
        cancelled, returned,
        "each dropped job's handle reports Cancelled"
    );
    assert_eq!(
        ran + cancelled,
        5,
        "every job either ran or was handed back"
    );
    wait_for_stops(&stops, 2, "after shutdown_now");
}
