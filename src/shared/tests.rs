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
    let stamp = shared.accept(); // what `try_send` does before the queue refuses the job
    let (done_tx, done) = mpsc::channel();
    let waiter = {
        let pool = Arc::clone(&pool);
        std::thread::spawn(move || {
            pool.wait_idle();
            done_tx.send(()).unwrap();
        })
    };
    until_waiting(&shared);
    shared.reject(stamp.parity);
    assert!(
        done.recv_timeout(Duration::from_secs(10)).is_ok(),
        "wait_idle slept through the rejection"
    );
    waiter.join().unwrap();
}

/// A worker in `wait_idle` runs queued jobs itself, taking them out of the queue; it used to do
/// so without waking the producers parked on the full queue (only the worker loop did), so they
/// slept on until their parking guard ran out, or until the next job the loop dequeued.
#[test]
fn a_worker_draining_the_queue_in_wait_idle_wakes_parked_producers() {
    let pool = Arc::new(WorkerPool::new(1, 1)); // low-water mark 0
    let shared = Arc::clone(pool.shared());
    let (go_tx, go) = mpsc::channel::<()>();
    let (done_tx, done) = mpsc::channel();
    let inner = Arc::clone(&pool);
    pool.submit(move || {
        go.recv().unwrap();
        inner.wait_idle(); // runs the queued job below itself
        done_tx.send(()).unwrap();
    });
    // Returns once the worker has taken the job above: the queue holds this one, and is full.
    pool.submit(|| ());
    // A producer has announced it is parking on the full queue (see `Shared::park`).
    shared.flags.0.parked.store(true, Ordering::SeqCst);
    go_tx.send(()).unwrap();
    done.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(
        !shared.flags.0.parked.load(Ordering::SeqCst),
        "the queue drained and nobody woke the parked producers"
    );
}

/// A `wait_idle` outside every job used to return while a job accepted before the call was
/// blocked in a `join` (suspended in a boundpool wait): the epoch counts pass over suspended jobs,
/// which only a `wait_idle` inside a job may do.
#[test]
fn wait_idle_outside_jobs_waits_for_a_job_suspended_in_a_join() {
    use std::sync::atomic::AtomicBool;

    let pool = Arc::new(WorkerPool::new(2, 2));
    let shared = Arc::clone(pool.shared());
    let (go_tx, go) = mpsc::channel::<()>();
    let (gate_tx, gate) = mpsc::channel::<()>();
    let finished = Arc::new(AtomicBool::new(false));
    let job = {
        let (inner, finished) = (Arc::clone(&pool), Arc::clone(&finished));
        pool.spawn(move || {
            go.recv().unwrap();
            let (started_tx, started) = mpsc::channel();
            let blocked = inner.spawn(move || {
                started_tx.send(()).unwrap();
                gate.recv().unwrap();
            });
            started.recv().unwrap(); // running on the other worker: the join blocks
            blocked.join().unwrap();
            finished.store(true, Ordering::SeqCst);
        })
    };
    let epoch = shared.flags.0.epoch.load(Ordering::SeqCst);
    let (returned_tx, returned) = mpsc::channel::<()>();
    let opener = std::thread::spawn(move || {
        // Once the wait below has flipped the epoch, the job it waits for starts the job it
        // joins, which is accepted after the call and so not waited for itself.
        while shared.flags.0.epoch.load(Ordering::SeqCst) == epoch {
            std::thread::yield_now();
        }
        go_tx.send(()).unwrap();
        // Time for a wait that passes over the suspended job to return; then let it all finish.
        let _ = returned.recv_timeout(Duration::from_millis(200));
        gate_tx.send(()).unwrap();
    });
    pool.wait_idle();
    let finished_first = finished.load(Ordering::SeqCst);
    let _ = returned_tx.send(());
    opener.join().unwrap();
    job.join().unwrap();
    assert!(
        finished_first,
        "wait_idle returned while a job accepted before it was blocked in a join"
    );
}
