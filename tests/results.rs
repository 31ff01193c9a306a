//! Results: `spawn` hands back a `JobHandle` whose `join` gives the job's value.
mod common;

use boundpool::WorkerPool;
use common::{with_timeout, Gate, PATIENCE};
use std::time::Duration;

#[test]
fn ten_thousand_results_come_back_matched_to_their_inputs() {
    with_timeout(
        "ten thousand results come back matched to their inputs",
        || {
            let pool = WorkerPool::new(3, 64);
            let handles: Vec<_> = (0..10_000u64)
                .map(|i| {
                    (
                        i,
                        pool.spawn(move || i.wrapping_mul(2_654_435_761) ^ 0x5bd1),
                    )
                })
                .collect();
            for (i, handle) in handles {
                assert_eq!(
                    handle.join().unwrap(),
                    i.wrapping_mul(2_654_435_761) ^ 0x5bd1,
                    "result of job {i}"
                );
            }
            assert_eq!(pool.shutdown().completed, 10_000, "all counted");
        },
    );
}

#[test]
fn is_finished_and_wait_timeout_follow_the_job() {
    with_timeout("is finished and wait timeout follow the job", || {
        let gate = Gate::new();
        let pool = WorkerPool::new(1, 4);
        let g = gate.clone();
        let handle = pool.spawn(move || {
            g.wait();
            "late"
        });
        gate.wait_for_waiters(1); // running on the worker, held
        assert!(!handle.is_finished(), "held job is not finished");
        assert!(
            !handle.wait_timeout(Duration::from_millis(10)),
            "wait_timeout gives up while the job is held"
        );
        gate.open();
        assert!(handle.wait_timeout(PATIENCE), "finishes once released");
        assert!(handle.is_finished(), "finished after wait_timeout said so");
        assert_eq!(handle.join().unwrap(), "late", "value");
    });
}

#[test]
fn join_inside_a_job_runs_a_still_queued_job_on_the_joining_thread() {
    with_timeout("join runs a still queued job on the joining thread", || {
        let pool = std::sync::Arc::new(WorkerPool::new(1, 4));
        let inner = std::sync::Arc::clone(&pool);
        let outer = pool.spawn(move || {
            // The only worker runs this job: the inner one stays queued until it is joined.
            let handle = inner.spawn(|| std::thread::current().id());
            (handle.join().unwrap(), std::thread::current().id())
        });
        let (inner_ran_on, outer_ran_on) = outer.join().expect("the outer job");
        // Waiting never needs a free worker: the joining job runs the queued job itself.
        assert_eq!(inner_ran_on, outer_ran_on, "ran on the joining worker");
        assert_eq!(
            pool.stats().completed,
            2,
            "the job counts whichever thread ran it"
        );
    });
}

#[test]
fn join_outside_every_job_waits_for_a_worker() {
    with_timeout(
        "join from the test thread while the only worker is busy",
        || {
            let gate = Gate::new();
            let pool = WorkerPool::new(1, 4);
            let g = gate.clone();
            pool.submit(move || g.wait());
            gate.wait_for_waiters(1); // the only worker is busy
            let handle = pool.spawn(|| std::thread::current().name().map(str::to_owned));
            // Nothing runs the job while the worker is held; the join below blocks until the gate
            // opens and the worker has run it.
            assert!(
                !handle.wait_timeout(Duration::from_millis(20)),
                "not run yet"
            );
            let opener = std::thread::spawn(move || gate.open());
            let name = handle.join().unwrap();
            opener.join().unwrap();
            assert_eq!(name.as_deref(), Some("boundpool-0"), "ran on the worker");
            let stats = pool.shutdown();
            assert_eq!(stats.completed, 2);
        },
    );
}

#[test]
fn try_spawn_gives_the_job_back_when_full() {
    with_timeout("try spawn gives the job back when full", || {
        let gate = Gate::new();
        let pool = WorkerPool::new(1, 1);
        let g = gate.clone();
        pool.submit(move || g.wait());
        gate.wait_for_waiters(1);
        let queued = pool.try_spawn(|| 1).expect("one slot free");
        let err = pool.try_spawn(|| 2).unwrap_err();
        assert_eq!(err.into_inner()(), 2, "the closure came back untouched");
        gate.open();
        assert_eq!(queued.join().unwrap(), 1, "the accepted one ran");
    });
}

#[test]
fn dropped_handles_detach_the_job_still_runs() {
    with_timeout("dropped handles detach the job still runs", || {
        let pool = WorkerPool::new(2, 16);
        let (tx, rx) = std::sync::mpsc::channel();
        for i in 0..50 {
            let tx = tx.clone();
            drop(pool.spawn(move || tx.send(i).unwrap()));
        }
        drop(tx);
        pool.shutdown();
        let mut got: Vec<i32> = rx.iter().collect();
        got.sort_unstable();
        assert_eq!(got, (0..50).collect::<Vec<_>>(), "every detached job ran");
    });
}

#[test]
fn handles_are_send_and_results_can_be_joined_elsewhere() {
    with_timeout(
        "handles are send and results can be joined elsewhere",
        || {
            let pool = WorkerPool::new(2, 8);
            let handle = pool.spawn(|| vec![1u8, 2, 3]);
            let joined = std::thread::spawn(move || handle.join().unwrap())
                .join()
                .unwrap();
            assert_eq!(joined, [1, 2, 3], "joined on another thread");
        },
    );
}
