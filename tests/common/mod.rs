//! Helpers shared by the integration tests: a gate that holds jobs, and a deadlock guard.
#![allow(dead_code)] // each test binary uses a different subset

use boundpool::{JobHandle, WorkerPool};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

/// How long any wait in a test may take before it counts as a deadlock.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// A gate jobs can wait at until the test opens it; counts the jobs waiting.
#[derive(Clone, Default)]
pub struct Gate {
    inner: Arc<(Mutex<(bool, usize)>, Condvar)>,
}

impl Gate {
    pub fn new() -> Gate {
        Gate::default()
    }

    /// Blocks the calling job until the gate opens (panics after `PATIENCE`).
    pub fn wait(&self) {
        let (lock, cv) = &*self.inner;
        let mut state = lock.lock().unwrap();
        state.1 += 1;
        cv.notify_all();
        let (mut state, timeout) = cv.wait_timeout_while(state, PATIENCE, |s| !s.0).unwrap();
        assert!(!timeout.timed_out(), "gate never opened");
        state.1 -= 1;
    }

    /// Blocks the test until `n` jobs are waiting at the gate.
    pub fn wait_for_waiters(&self, n: usize) {
        let (lock, cv) = &*self.inner;
        let state = lock.lock().unwrap();
        let (_state, timeout) = cv.wait_timeout_while(state, PATIENCE, |s| s.1 < n).unwrap();
        assert!(!timeout.timed_out(), "{n} jobs never reached the gate");
    }

    /// Whether the gate has been opened.
    pub fn is_open(&self) -> bool {
        self.inner.0.lock().unwrap().0
    }

    /// Lets every waiting and future job through.
    pub fn open(&self) {
        let (lock, cv) = &*self.inner;
        lock.lock().unwrap().0 = true;
        cv.notify_all();
    }
}

/// Holds `n` of `pool`'s workers in jobs waiting at a new gate; returns once all `n` are there,
/// with the gate (open it to release them) and the jobs' handles.
pub fn hold_workers(pool: &WorkerPool, n: usize) -> (Gate, Vec<JobHandle<()>>) {
    let gate = Gate::new();
    let held = (0..n)
        .map(|_| {
            let gate = gate.clone();
            pool.spawn(move || gate.wait())
        })
        .collect();
    gate.wait_for_waiters(n);
    (gate, held)
}

/// Runs `f` on its own thread; fails the test if it does not finish within `PATIENCE` (a
/// deadlock fails instead of hanging CI; the stuck thread is leaked).
pub fn with_timeout<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        let _ = tx.send(result);
    });
    match rx.recv_timeout(PATIENCE) {
        Ok(Ok(value)) => value,
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => panic!("deadlock: {what} did not finish within {PATIENCE:?}"),
    }
}

/// Silences the default panic message for panics whose message contains `marker` (tests that
/// panic on purpose thousands of times), keeping every other panic visible.
pub fn quiet_panics(marker: &'static str) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        if !msg.contains(marker) {
            previous(info);
        }
    }));
}

/// The message of a panic payload (`&str` or `String`), if it has one.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<&'static str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
}

/// A deterministic hash of `i` (splitmix64), to give each item its own amount of work.
pub fn mix(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Busy work proportional to `rounds` that the optimiser cannot remove.
pub fn spin(rounds: u64) -> u64 {
    let acc = (0..rounds).fold(rounds, |acc, i| mix(acc ^ i));
    std::hint::black_box(acc)
}
