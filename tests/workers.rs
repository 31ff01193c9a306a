//! Fixed workers, reused: a pool runs its jobs on exactly `workers` named threads, never more at
//! once.
mod common;

use boundpool::WorkerPool;
use common::{with_timeout, Gate};
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

#[test]
fn never_more_than_workers_jobs_at_once() {
    with_timeout("never more than workers", never_more_than_workers_body);
}

fn never_more_than_workers_body() {
    for workers in [1, 2, 3, 4] {
        let pool = WorkerPool::new(workers, 64);
        let running = Arc::new(AtomicUsize::new(0));
        let high_water = Arc::new(AtomicUsize::new(0));
        for _ in 0..2_000 {
            let (running, high_water) = (Arc::clone(&running), Arc::clone(&high_water));
            pool.submit(move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                high_water.fetch_max(now, Ordering::SeqCst);
                for _ in 0..200 {
                    std::hint::spin_loop();
                }
                running.fetch_sub(1, Ordering::SeqCst);
            });
        }
        let stats = pool.shutdown();
        assert_eq!(stats.completed, 2_000, "every job ran");
        let peak = high_water.load(Ordering::SeqCst);
        assert!(
            (1..=workers).contains(&peak),
            "{peak} jobs ran at once on {workers} workers"
        );
    }
}

#[test]
fn ten_thousand_jobs_run_on_exactly_the_named_workers() {
    with_timeout("ten thousand jobs on named workers", named_workers_body);
}

fn named_workers_body() {
    let workers = 3;
    let pool = WorkerPool::builder()
        .workers(workers)
        .capacity(32)
        .thread_name("crew")
        .build()
        .unwrap();
    let seen = Arc::new(Mutex::new(HashSet::new()));
    let ids = Arc::new(Mutex::new(HashSet::new()));
    // The first `workers` jobs wait at a gate until all of them have arrived: a worker held there
    // cannot take another, so every worker takes one, whatever the scheduler does.
    let gate = Gate::new();
    for i in 0..10_000 {
        let (seen, ids, g) = (Arc::clone(&seen), Arc::clone(&ids), gate.clone());
        pool.submit(move || {
            let me = std::thread::current();
            seen.lock()
                .unwrap()
                .insert(me.name().unwrap_or("").to_owned());
            ids.lock().unwrap().insert(me.id());
            if i < workers {
                g.wait();
            }
        });
        if i + 1 == workers {
            gate.wait_for_waiters(workers);
            gate.open();
        }
    }
    assert_eq!(pool.shutdown().completed, 10_000, "every job ran");
    let expected: HashSet<String> = (0..workers).map(|i| format!("crew-{i}")).collect();
    assert_eq!(*seen.lock().unwrap(), expected, "thread names");
    assert_eq!(ids.lock().unwrap().len(), workers, "distinct threads");
}

#[test]
fn default_names_and_sizes() {
    with_timeout("default names and sizes", default_names_body);
}

fn default_names_body() {
    let pool = WorkerPool::new(2, 5);
    assert_eq!((pool.workers(), pool.capacity()), (2, 5), "shape");
    let (tx, rx) = std::sync::mpsc::channel();
    pool.submit(move || {
        tx.send(std::thread::current().name().map(str::to_owned))
            .unwrap()
    });
    let name = rx.recv_timeout(common::PATIENCE).unwrap().unwrap();
    assert!(name == "boundpool-0" || name == "boundpool-1", "got {name}");
}
