//! Panics: a panicking job never kills its worker; it is counted and reported to its handle or
//! to the panic handler.
mod common;

use boundpool::{JobError, WorkerPool};
use common::{assert_all_workers_alive, with_timeout, PATIENCE};
use std::collections::HashSet;
use std::error::Error;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};

#[test]
fn a_thousand_panics_do_not_kill_the_workers() {
    with_timeout("a thousand panics do not kill the workers", || {
        common::quiet_panics("deliberate");
        let pool = WorkerPool::new(2, 32);
        for i in 0..1_000 {
            pool.submit(move || panic!("deliberate panic {i}"));
        }
        let threads = Arc::new(Mutex::new(HashSet::new()));
        // The first two normal jobs wait at a gate until both have arrived: only two live workers
        // can get them there at once.
        let gate = common::Gate::new();
        for i in 0..1_000 {
            let (threads, g) = (Arc::clone(&threads), gate.clone());
            pool.submit(move || {
                threads.lock().unwrap().insert(std::thread::current().id());
                if i < 2 {
                    g.wait();
                }
            });
            if i == 1 {
                gate.wait_for_waiters(2);
                gate.open();
            }
        }
        let stats = pool.shutdown();
        assert_eq!(stats.panicked, 1_000, "panics counted");
        assert_eq!(stats.completed, 2_000, "panicked jobs count as completed");
        assert_eq!(threads.lock().unwrap().len(), 2, "both workers still alive");
    });
}

#[test]
fn a_spawned_jobs_panic_reaches_its_handle_intact() {
    with_timeout("a spawned jobs panic reaches its handle intact", || {
        common::quiet_panics("deliberate");
        let pool = WorkerPool::new(2, 8);
        let err = pool
            .spawn(|| -> u8 { panic!("deliberate str") })
            .join()
            .unwrap_err();
        assert!(err.is_panic() && !err.is_cancelled(), "a panic");
        assert_eq!(err.panic_message(), Some("deliberate str"), "&str payload");
        assert_eq!(err.to_string(), "job panicked: deliberate str", "Display");
        assert!(
            format!("{err:?}").contains("deliberate str"),
            "Debug: {err:?}"
        );

        let code = 7;
        let err = pool
            .spawn(move || -> u8 { panic!("deliberate {code}") })
            .join()
            .unwrap_err();
        match err {
            JobError::Panicked(payload) => {
                assert_eq!(payload.message(), Some("deliberate 7"), "String payload");
                let raw = payload.into_inner();
                assert_eq!(
                    raw.downcast_ref::<String>().unwrap(),
                    "deliberate 7",
                    "intact"
                );
            }
            other => panic!("expected a panic, got {other:?}"),
        }

        let err = pool
            .spawn(|| std::panic::panic_any(42u64))
            .join()
            .unwrap_err();
        assert_eq!(err.panic_message(), None, "no message for a u64 payload");
        assert_eq!(
            err.into_panic().downcast_ref::<u64>(),
            Some(&42),
            "u64 payload"
        );
        assert_eq!(pool.shutdown().panicked, 3, "counted");
    });
}

#[test]
fn job_error_works_with_question_mark() {
    with_timeout("job error works with question mark", || {
        common::quiet_panics("deliberate");
        fn run(pool: &WorkerPool) -> Result<u8, Box<dyn Error + Send + Sync>> {
            Ok(pool.spawn(|| -> u8 { panic!("deliberate ?") }).join()?)
        }
        fn assert_bounds<T: Send + Sync + 'static>() {}
        assert_bounds::<JobError>();
        let pool = WorkerPool::new(1, 2);
        let err = run(&pool).unwrap_err();
        assert_eq!(err.to_string(), "job panicked: deliberate ?", "converted");
    });
}

#[test]
fn the_panic_handler_receives_every_fire_and_forget_panic() {
    with_timeout(
        "the panic handler receives every fire and forget panic",
        || {
            common::quiet_panics("deliberate");
            let (tx, rx) = mpsc::channel();
            let tx = Mutex::new(tx);
            let pool = WorkerPool::builder()
                .workers(2)
                .panic_handler(move |payload| {
                    let msg = payload
                        .downcast_ref::<String>()
                        .cloned()
                        .unwrap_or_default();
                    tx.lock().unwrap().send(msg).unwrap();
                })
                .build()
                .unwrap();
            for i in 0..100 {
                pool.submit(move || panic!("deliberate {i}"));
            }
            // Jobs with a handle go to the handle, not to the handler.
            assert!(
                pool.spawn(|| panic!("deliberate spawn")).join().is_err(),
                "to the handle"
            );
            let stats = pool.shutdown();
            assert_eq!(stats.panicked, 101, "all counted");
            let mut got: Vec<String> = rx.try_iter().collect();
            got.sort();
            let mut want: Vec<String> = (0..100).map(|i| format!("deliberate {i}")).collect();
            want.sort();
            assert_eq!(got, want, "each payload reached the handler once");
        },
    );
}

#[test]
fn panicking_hooks_handler_and_jobs_leave_both_workers_alive() {
    with_timeout("panicking hooks, handler and jobs", || {
        common::quiet_panics("deliberate");
        let stops = Arc::new(AtomicUsize::new(0));
        let s = Arc::clone(&stops);
        let pool = WorkerPool::builder()
            .workers(2)
            .on_thread_start(|| panic!("deliberate start hook"))
            .on_thread_stop(move || {
                s.fetch_add(1, Ordering::SeqCst);
                panic!("deliberate stop hook")
            })
            .panic_handler(|_| panic!("deliberate handler"))
            .build()
            .unwrap();
        for _ in 0..20 {
            pool.submit(|| panic!("deliberate job"));
        }
        let (tx, rx) = mpsc::channel();
        for _ in 0..20 {
            let tx = tx.clone();
            pool.submit(move || tx.send(std::thread::current().id()).unwrap());
        }
        let mut threads = HashSet::new();
        for _ in 0..20 {
            threads.insert(rx.recv_timeout(PATIENCE).expect("jobs still run"));
        }
        assert!(
            (1..=2).contains(&threads.len()),
            "jobs ran on {} threads: only the two workers run them",
            threads.len()
        );
        assert_all_workers_alive(&pool, "after panicking hooks, handler and jobs");
        let stats = pool.shutdown();
        assert_eq!(stats.panicked, 20, "job panics counted");
        assert_eq!(
            stats.completed,
            20 + 20 + 2,
            "panicking + sending jobs + 2 gate jobs"
        );
        assert_eq!(
            stops.load(Ordering::SeqCst),
            2,
            "both workers reached their stop hook"
        );
    });
}
