//! Bad input: every documented `# Panics` and `# Errors` path, and user code that misbehaves in
//! every place the pool calls it (hooks, the panic handler, a job's captures' `Drop`, a result's
//! `Drop`, a panic payload's `Drop`). After each, the pool must still have all its workers.

mod common;

use std::any::Any;
use std::error::Error;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use boundpool::{BuildError, JobError, SubmitTimeoutError, TrySubmitError, WorkerPool};
use common::{
    armoured_pool, assert_all_workers_alive, quiet_panics, shutdown_now_on_a_worker, with_timeout,
    within, Gate, PATIENCE,
};

/// A value whose `Drop` panics (with an `armour:` message, silenced by `quiet_panics`).
struct PanicOnDrop(&'static str);

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("armour: {} panicked on drop", self.0);
        }
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

// ------------------------------------------------------------------ building

#[test]
fn new_with_zero_workers_panics() {
    let err = panic::catch_unwind(|| WorkerPool::new(0, 4)).expect_err("new(0, _) must panic");
    let msg = panic_message(&*err);
    assert!(
        msg.contains("at least one worker"),
        "the panic should say why, got {msg:?}"
    );
}

#[test]
fn builder_rejects_zero_workers() {
    let err = WorkerPool::builder().workers(0).build().unwrap_err();
    assert!(matches!(err, BuildError::ZeroWorkers), "got {err:?}");
    assert!(err.source().is_none(), "ZeroWorkers has no source");
    assert!(!err.to_string().is_empty(), "Display must say something");
}

#[test]
fn builder_rejects_a_nul_in_the_thread_name() {
    let err = WorkerPool::builder()
        .workers(2)
        .thread_name("bad\0name")
        .build()
        .unwrap_err();
    assert!(matches!(err, BuildError::InvalidThreadName), "got {err:?}");
    assert!(err.source().is_none(), "InvalidThreadName has no source");
}

// A refused thread (`BuildError::Spawn`) is tested in building.rs
// (`a_refused_thread_is_a_spawn_error_with_its_source`), which also accepts an OS that
// overcommits even a 64 TiB stack.

// ------------------------------------------------------------------ errors

/// The error of a `spawn` job cancelled by `shutdown_now`, deterministically: the only worker
/// runs a job that calls `shutdown_now` itself (on one of the pool's own threads it does not wait
/// for the running jobs), so the queued job cannot have started; it comes back and is dropped,
/// which cancels it.
fn cancelled_job_error() -> JobError {
    within(PATIENCE, "cancel a queued spawn job", || {
        let pool = WorkerPool::new(1, 4);
        let (hand_over, unstarted_rx) = shutdown_now_on_a_worker(&pool);
        let handle = pool.spawn(|| 5);
        hand_over.send(pool).unwrap();
        let unstarted = unstarted_rx
            .recv_timeout(PATIENCE)
            .expect("shutdown_now returned on the worker");
        assert_eq!(
            unstarted.len(),
            1,
            "the queued job came back from shutdown_now"
        );
        drop(unstarted); // cancels it (a `join` first would run it: it is still unclaimed)
        handle
            .join()
            .expect_err("the job was cancelled, it cannot have run")
    })
}

#[test]
fn job_error_into_panic_on_cancelled_panics() {
    let err = cancelled_job_error();
    assert!(err.is_cancelled() && !err.is_panic(), "got {err:?}");
    assert_eq!(format!("{err:?}"), "Cancelled", "Debug of Cancelled");
    assert!(!err.to_string().is_empty(), "Display of Cancelled");
    assert!(err.panic_message().is_none(), "no message for Cancelled");
    let out = panic::catch_unwind(AssertUnwindSafe(|| err.into_panic()));
    assert!(out.is_err(), "into_panic on Cancelled must panic");

    let err = cancelled_job_error();
    assert!(
        err.try_into_panic().is_err_and(|e| e.is_cancelled()),
        "try_into_panic gives the error back"
    );
}

#[test]
fn job_error_of_a_panic_carries_the_payload() {
    quiet_panics("armour:");
    let pool = WorkerPool::new(1, 4);
    let err = pool
        .spawn(|| -> u8 { panic!("armour: boom") })
        .join()
        .unwrap_err();
    assert!(err.is_panic() && !err.is_cancelled(), "got {err:?}");
    assert_eq!(err.panic_message(), Some("armour: boom"), "message kept");
    assert!(
        format!("{err:?}").contains("armour: boom"),
        "Debug shows the message"
    );
    assert!(
        err.to_string().contains("armour: boom"),
        "Display shows the message"
    );
    let boxed: Box<dyn Error + Send + Sync> = Box::new(err);
    let err = *boxed.downcast::<JobError>().expect("JobError round-trips");
    let payload = err.try_into_panic().expect("a panic has a payload");
    assert_eq!(panic_message(&*payload), "armour: boom", "payload intact");

    let err = pool.spawn(|| panic::panic_any(17u32)).join().unwrap_err();
    assert!(
        err.panic_message().is_none(),
        "no message for a u32 payload"
    );
    assert_eq!(
        err.into_panic().downcast_ref::<u32>(),
        Some(&17),
        "into_panic gives the exact payload"
    );
}

#[test]
fn try_submit_error_gives_the_job_back_and_debugs_without_f_debug() {
    let pool = WorkerPool::new(1, 0);
    let gate = Gate::new();
    gate.hold(&pool, 1);
    let (tx, rx) = mpsc::channel();
    let err: TrySubmitError<_> = pool
        .try_submit(move || tx.send(1).unwrap())
        .expect_err("no free worker at capacity 0");
    assert!(err.is_full(), "is_full");
    assert_eq!(format!("{err:?}"), "Full(..)", "Debug without F: Debug");
    assert!(!err.to_string().is_empty(), "Display");
    let _: &dyn Error = &err;
    err.into_inner()();
    assert_eq!(rx.recv_timeout(PATIENCE), Ok(1), "into_inner is the job");

    let err = pool.try_spawn(|| 2).expect_err("try_spawn: still full");
    assert!(err.is_full(), "try_spawn Full");
    assert_eq!(err.into_inner()(), 2, "try_spawn gives the closure back");
    gate.open();
    assert_eq!(pool.shutdown().completed, 1, "only the gate job ran");
}

#[test]
fn submit_timeout_error_gives_the_job_back_and_debugs_without_f_debug() {
    let pool = WorkerPool::new(1, 1);
    let gate = Gate::new();
    gate.hold(&pool, 1);
    pool.submit(|| ()); // fills the one slot
    let (tx, rx) = mpsc::channel();
    let err: SubmitTimeoutError<_> = pool
        .submit_timeout(move || tx.send(3).unwrap(), Duration::from_millis(5))
        .expect_err("the queue stays full");
    assert!(err.is_timeout(), "is_timeout");
    assert_eq!(format!("{err:?}"), "Timeout(..)", "Debug without F: Debug");
    assert!(!err.to_string().is_empty(), "Display");
    let _: &dyn Error = &err;
    err.into_inner()();
    assert_eq!(rx.recv_timeout(PATIENCE), Ok(3), "into_inner is the job");
    gate.open();
    assert_eq!(pool.shutdown().completed, 2, "gate job and filler ran");
}

// ------------------------------------------------------------------ panics re-raised

#[test]
fn scope_reraises_the_body_panic_after_the_jobs() {
    quiet_panics("armour:");
    let pool = WorkerPool::new(2, 4);
    let ran = AtomicUsize::new(0);
    let out = panic::catch_unwind(AssertUnwindSafe(|| {
        pool.scope(|s| {
            for _ in 0..8 {
                s.submit(|| {
                    ran.fetch_add(1, Ordering::SeqCst);
                });
            }
            panic!("armour: body");
        })
    }));
    let payload = out.expect_err("scope re-raises the body's panic");
    assert_eq!(
        panic_message(&*payload),
        "armour: body",
        "body payload intact"
    );
    assert_eq!(
        ran.load(Ordering::SeqCst),
        8,
        "every job ran before scope returned"
    );
    assert_all_workers_alive(&pool, "after a scope body panic");
}

#[test]
fn scope_reraises_an_unjoined_job_panic_intact() {
    quiet_panics("armour:");
    let pool = WorkerPool::new(2, 4);
    let out = panic::catch_unwind(AssertUnwindSafe(|| {
        pool.scope(|s| {
            s.submit(|| panic::panic_any(99u64));
            let joined = s.spawn(|| -> u8 { panic!("armour: joined") });
            assert!(joined.join().is_err(), "a joined panic goes to the handle");
        })
    }));
    let payload = out.expect_err("an unjoined panic is re-raised");
    assert_eq!(payload.downcast_ref::<u64>(), Some(&99), "payload intact");
    assert_all_workers_alive(&pool, "after a scoped job panic");
}

#[test]
fn map_resumes_the_panic_at_its_index_then_fuses() {
    quiet_panics("armour:");
    let pool = WorkerPool::new(2, 2);
    let mut it = pool.map(0..10u32, |i| {
        if i == 3 {
            panic::panic_any(i);
        }
        i
    });
    for want in 0..3 {
        assert_eq!(it.next(), Some(want), "results before the panic");
    }
    let payload = panic::catch_unwind(AssertUnwindSafe(|| it.next())).expect_err("4th next panics");
    assert_eq!(payload.downcast_ref::<u32>(), Some(&3), "payload intact");
    assert_eq!(it.next(), None, "fused after the panic");
    drop(it);
    assert_all_workers_alive(&pool, "after a map panic");
}

// ------------------------------------------------------------------ user code misbehaving

#[test]
fn panicking_hooks_and_handler_never_kill_a_worker() {
    quiet_panics("armour:");
    let (pool, handled) = armoured_pool(2, 4);
    for _ in 0..6 {
        pool.submit(|| panic!("armour: job"));
    }
    assert!(pool.wait_idle_timeout(PATIENCE), "went idle");
    assert_eq!(handled.load(Ordering::SeqCst), 6, "handler saw every panic");
    assert_all_workers_alive(&pool, "after panicking hooks and handler");
    let stats = within(PATIENCE, "shutdown", move || pool.shutdown());
    assert_eq!(stats.panicked, 6, "every panic counted");
    assert_eq!(stats.completed, 6 + 2, "6 panicking jobs + 2 gate jobs");
}

#[test]
fn panicking_drop_of_a_submitted_capture_is_a_counted_panic() {
    quiet_panics("armour:");
    let pool = WorkerPool::new(2, 4);
    for _ in 0..4 {
        let bomb = PanicOnDrop("capture");
        pool.submit(move || {
            let _keep = &bomb;
        });
    }
    assert!(pool.wait_idle_timeout(PATIENCE), "went idle");
    assert_eq!(
        pool.stats().panicked,
        4,
        "a capture's panicking drop counts"
    );
    assert_all_workers_alive(&pool, "after panicking captures");
}

#[test]
fn panicking_drop_of_a_spawned_capture_goes_to_the_handle() {
    quiet_panics("armour:");
    let pool = WorkerPool::new(2, 4);
    let bomb = PanicOnDrop("spawn capture");
    let err = pool
        .spawn(move || {
            let _keep = &bomb;
            1
        })
        .join()
        .expect_err("the capture's drop panicked inside the job");
    assert!(err.is_panic(), "got {err:?}");
    assert_all_workers_alive(&pool, "after a panicking spawn capture");
}

#[test]
fn panicking_drop_of_a_detached_result_never_kills_a_worker() {
    quiet_panics("armour:");
    let pool = WorkerPool::new(2, 8);
    let gate = Gate::new();
    gate.hold(&pool, 2);
    // The handles are dropped while the jobs are queued: the results drop on the workers.
    for _ in 0..4 {
        drop(pool.spawn(|| PanicOnDrop("detached result")));
    }
    gate.open();
    assert!(pool.wait_idle_timeout(PATIENCE), "went idle");
    assert_all_workers_alive(&pool, "after results that panic on drop");
    let stats = within(PATIENCE, "shutdown", move || pool.shutdown());
    assert_eq!(stats.completed, 2 + 4 + 2, "every job counted");
}

#[test]
fn panicking_drop_of_a_payload_without_handler_never_kills_a_worker() {
    quiet_panics("armour:");
    let pool = WorkerPool::new(1, 4);
    for _ in 0..3 {
        pool.submit(|| panic::panic_any(PanicOnDrop("payload")));
    }
    assert!(pool.wait_idle_timeout(PATIENCE), "went idle");
    assert_eq!(pool.stats().panicked, 3, "counted");
    assert_all_workers_alive(&pool, "after payloads that panic on drop");
}

#[test]
fn panicking_drop_of_an_unjoined_scoped_result_does_not_hang_the_scope() {
    quiet_panics("armour:");
    let pool = Arc::new(WorkerPool::new(2, 4));
    let p = Arc::clone(&pool);
    let out = within(
        PATIENCE,
        "scope with a result that panics on drop",
        move || {
            panic::catch_unwind(AssertUnwindSafe(|| {
                p.scope(|s| {
                    for _ in 0..3 {
                        let _detached = s.spawn(|| PanicOnDrop("scoped result"));
                    }
                })
            }))
        },
    );
    let payload = out.expect_err("the scope reports the panicking drop");
    assert!(
        panic_message(&*payload).contains("scoped result"),
        "the drop's payload, got {:?}",
        panic_message(&*payload)
    );
    assert_all_workers_alive(&pool, "after scoped results that panic on drop");
}

#[test]
fn panicking_drop_of_map_results_after_the_map_is_dropped() {
    quiet_panics("armour:");
    let pool = Arc::new(WorkerPool::new(3, 4));
    let gate = Gate::new();
    gate.hold(&pool, 2);
    // The consumer is a job on the third worker: there `next` runs the front item itself, so
    // it returns while the other items stay queued behind the held workers and the consumer.
    let inner = Arc::clone(&pool);
    let consumer = pool.spawn(move || {
        let mut it = inner.map(0..6u32, |_| PanicOnDrop("map result"));
        let first = it.next().expect("one result");
        std::mem::forget(first); // its drop would panic here, in the test: not the point
    }); // the map is dropped with items queued: their results drop on the workers
    with_timeout("the consumer job", move || consumer.join()).expect("the consumer ran");
    gate.open();
    assert!(pool.wait_idle_timeout(PATIENCE), "went idle");
    assert_all_workers_alive(&pool, "after map results that panic on drop");
}
