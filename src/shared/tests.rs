//! Regression tests for races in [`Shared`] that need its internals to be made deterministic (the
//! shuttle models in `tests/shuttle.rs` found them by exploring schedules).

use std::sync::mpsc;
use std::time::Duration;

use super::*;
use crate::WorkerPool;

/// Waits until a thread is inside `wait_idle`. It announces itself while holding the idle lock and
/// keeps the lock until it sleeps or returns, so whatever this thread does next that takes the
/// lock (every notification does) happens after the waiter has read the counters.
fn until_waiting(shared: &Shared) {
    while shared.flags.0.idle_waiters.load(Ordering::SeqCst) == 0 {
        std::thread::yield_now();
    }
}

/// A `wait_idle` that counted a job between its acceptance and its rejection (a `try_submit` on a
/// full queue, a producer's retry) used to sleep through the rejection: a rejected job never
/// finishes, and nothing else woke the waiter.
#[test]
fn wait_idle_wakes_when_a_job_it_counted_is_rejected() {
    let pool = Arc::new(WorkerPool::new(1, 1));
    let shared = Arc::clone(pool.shared());
    let parity = shared.parity();
    shared.accept(parity); // what `try_send` does before the queue refuses the job
    let (done_tx, done) = mpsc::channel();
    let waiter = {
        let pool = Arc::clone(&pool);
        std::thread::spawn(move || {
            pool.wait_idle();
            done_tx.send(()).unwrap();
        })
    };
    until_waiting(&shared);
    shared.reject(parity);
    assert!(
        done.recv_timeout(Duration::from_secs(10)).is_ok(),
        "wait_idle slept through the rejection"
    );
    waiter.join().unwrap();
}
