//! Shutdown: graceful shutdown and drop run every accepted job and join every thread;
//! `shutdown_timeout` honours its deadline; `shutdown_now` returns exactly the unstarted jobs.
mod common;

use boundpool::WorkerPool;
use common::{with_timeout, Gate, PATIENCE};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// A pool that counts its stopped worker threads.
fn counted_pool(workers: usize, capacity: usize) -> (WorkerPool, Arc<AtomicUsize>) {
    let stopped = Arc::new(AtomicUsize::new(0));
    let s = Arc::clone(&stopped);
    let pool = WorkerPool::builder()
        .workers(workers)
        .capacity(capacity)
        .on_thread_stop(move || {
            s.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .unwrap();
    (pool, stopped)
}

#[test]
fn shutdown_runs_a_full_queue_and_joins_every_thread() {
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
    let (stopped, was_last) = with_timeout("drop inside a job", || {
        let (pool, stopped) = counted_pool(2, 8);
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
        (stopped, last_rx.recv_timeout(PATIENCE).unwrap())
    });
    assert!(was_last, "the job held the last reference");
    // The workers drain and exit on their own.
    let deadline = std::time::Instant::now() + PATIENCE;
    while stopped.load(Ordering::SeqCst) < 2 {
        assert!(std::time::Instant::now() < deadline, "workers never exited");
        std::thread::yield_now();
    }
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
    for workers in [1, 2] {
        let pool = WorkerPool::new(workers, 40);
        let gate = Gate::new();
        for _ in 0..workers {
            let g = gate.clone();
            pool.submit(move || g.wait());
        }
        gate.wait_for_waiters(workers);
        let runs: Arc<Vec<AtomicUsize>> = Arc::new((0..40).map(|_| AtomicUsize::new(0)).collect());
        let order = Arc::new(Mutex::new(Vec::new()));
        for id in 0..40 {
            let (runs, order) = (Arc::clone(&runs), Arc::clone(&order));
            pool.submit(move || {
                runs[id].fetch_add(1, Ordering::SeqCst);
                order.lock().unwrap().push(id);
            });
        }
        // Released workers may start a job or two before they see the stop.
        gate.open();
        let unstarted = pool.shutdown_now();
        let ran_early: Vec<usize> = order.lock().unwrap().clone();
        assert!(
            ran_early
                .iter()
                .all(|&id| runs[id].load(Ordering::SeqCst) == 1),
            "started jobs ran once"
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
        assert!(
            returned.windows(2).all(|w| w[0] < w[1]),
            "FIFO: {returned:?}"
        );
        for (id, runs) in runs.iter().enumerate() {
            assert_eq!(runs.load(Ordering::SeqCst), 1, "job {id} ran exactly once");
        }
    }
}

#[test]
fn dropped_unstarted_spawn_jobs_report_cancelled() {
    let pool = WorkerPool::new(1, 10);
    let gate = Gate::new();
    let g = gate.clone();
    let running = pool.spawn(move || {
        g.wait();
        "finished"
    });
    gate.wait_for_waiters(1);
    let handles: Vec<_> = (0..5).map(|i| pool.spawn(move || i)).collect();
    let opener = {
        let gate = gate.clone();
        std::thread::spawn(move || gate.open())
    };
    let unstarted = pool.shutdown_now();
    opener.join().unwrap();
    let returned = unstarted.len();
    drop(unstarted); // cancels them
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
    // How many the released worker started before it saw the stop depends on scheduling.
    assert_eq!(
        cancelled, returned,
        "each dropped job's handle reports Cancelled"
    );
    assert_eq!(
        ran + cancelled,
        5,
        "every job either ran or was handed back"
    );
}
