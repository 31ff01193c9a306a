//! The synchronisation primitives, threads, thread-locals, spin hint and clock that the rest of the
//! crate uses, from one place so that a model checker can stand in for them.
//!
//! In a normal build everything here is `std`'s, re-exported unchanged (no wrapper, no cost). Built
//! with `RUSTFLAGS="--cfg shuttle"` they are the [`shuttle`](https://docs.rs/shuttle) model
//! checker's instead, so that shuttle controls every scheduling decision the pool's own logic
//! depends on (`tests/shuttle.rs` explores those schedules). Under shuttle:
//!
//! - [`spin_loop`] yields to the scheduler: a spinning thread would otherwise never let the thread
//!   that ends its spin run. Every spin loop in the crate goes through it.
//! - [`Instant`] is a virtual clock that advances a fixed step each time it is read, so that a loop
//!   bounded by time (the producer's spin before parking) is deterministic and replayable.
//! - [`Condvar::wait_timeout`] never times out (shuttle's waits like `wait`), so a timed wait
//!   that only its timeout would end shows up as a deadlock, and `wait_idle_timeout` and
//!   `JobHandle::wait_timeout` are not modelled. The queue's own timeouts are (see
//!   [`crate::queue`]): `shutdown_timeout`, and the rendezvous slices of a producer at capacity 0.
//! - [`park_timeout`], the parked producer's wait, yields once and returns: its caller re-checks
//!   the virtual clock, so the producer's [`STALL`](crate::shared::STALL) (take a free slot once
//!   the workers stall) is modelled, and so is `submit_timeout`. A producer whose wake-up is
//!   lost no longer deadlocks there: it spins on, and a model shows it as running out of steps.
//! - [`run_on_thread`] (the helper thread past `MAX_NESTING`) is shuttle's scoped thread.
//! - Plain `std` helpers: [`lock`] (ignores poisoning), [`drop_catching`], [`drop_quietly`].
//!
//! `Arc`, `Weak` and `PoisonError` are `std`'s in both builds (shuttle uses them too).

pub(crate) use std::sync::{Arc, PoisonError, Weak};

#[cfg(not(shuttle))]
pub(crate) use std::{
    hint::spin_loop,
    sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    sync::{Condvar, Mutex, MutexGuard},
    thread, thread_local,
    time::Instant,
};

#[cfg(shuttle)]
pub(crate) use shuttle::{
    hint::spin_loop,
    sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    sync::{Condvar, Mutex, MutexGuard},
    thread, thread_local,
};

#[cfg(shuttle)]
pub(crate) use clock::Instant;

/// The virtual clock of the shuttle build.
#[cfg(shuttle)]
mod clock {
    use std::cell::Cell;
    use std::ops::{Add, Sub};
    use std::time::Duration;

    /// How far the clock moves on each read. Chosen so that the producer's 15 µs spin before
    /// parking (`shared::SPIN`) makes a few rounds of `spin_loop`, then parks.
    const STEP: Duration = Duration::from_micros(5);

    std::thread_local! {
        /// Shuttle runs an execution's threads as coroutines on one OS thread, so a `std`
        /// thread-local is one clock per execution (and per test thread: tests run in parallel).
        /// Only differences between readings matter, so it need not restart at each execution.
        static NOW: Cell<Duration> = const { Cell::new(Duration::ZERO) };
    }

    /// A point on the virtual clock: the time since the test thread first read it.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
    pub(crate) struct Instant(Duration);

    impl Instant {
        /// Reads the clock, advancing it by one step.
        pub(crate) fn now() -> Instant {
            NOW.with(|now| {
                let t = now.get() + STEP;
                now.set(t);
                Instant(t)
            })
        }

        pub(crate) fn checked_add(self, d: Duration) -> Option<Instant> {
            self.0.checked_add(d).map(Instant)
        }
    }

    impl Add<Duration> for Instant {
        type Output = Instant;
        fn add(self, d: Duration) -> Instant {
            Instant(self.0 + d)
        }
    }

    /// Saturating, as `std::time::Instant`'s subtraction is.
    impl Sub for Instant {
        type Output = Duration;
        fn sub(self, earlier: Instant) -> Duration {
            self.0.saturating_sub(earlier.0)
        }
    }
}

/// Runs `f` on a new thread named `name` with `stack_size` bytes of stack (the platform's default
/// when `None`), and waits for it. `f` may borrow from the caller, who waits. `Err` if the system
/// refused the thread (`f` is then dropped unrun: callers pass a closure that leaves the work
/// where they can still take it).
#[cfg(not(shuttle))]
pub(crate) fn run_on_thread<'a>(
    name: Option<String>,
    stack_size: Option<usize>,
    f: impl FnOnce() + Send + 'a,
) -> std::io::Result<()> {
    std::thread::scope(|scope| {
        let mut builder = std::thread::Builder::new();
        if let Some(name) = name {
            builder = builder.name(name);
        }
        if let Some(bytes) = stack_size {
            builder = builder.stack_size(bytes);
        }
        // A panic of `f` stays on its thread: joined here, it does not re-raise.
        let _ = builder.spawn_scoped(scope, f)?.join();
        Ok(())
    })
}

/// The model-checking build: shuttle's scoped thread (shuttle models neither names nor stacks).
#[cfg(shuttle)]
pub(crate) fn run_on_thread<'a>(
    _name: Option<String>,
    _stack_size: Option<usize>,
    f: impl FnOnce() + Send + 'a,
) -> std::io::Result<()> {
    thread::scope(|scope| {
        let _ = scope.spawn(f).join();
    });
    Ok(())
}

/// Parks the current thread for at most `timeout` (it may wake sooner: callers re-check).
#[cfg(not(shuttle))]
pub(crate) fn park_timeout(timeout: std::time::Duration) {
    thread::park_timeout(timeout);
}

/// The model-checking build: lets the other threads run once and returns, as a park whose
/// timeout may pass after any schedule. The caller's loop reads the virtual clock, so a wait that
/// only its timeout ends (a producer beside a free slot while the workers stall) ends after
/// enough steps, as on a real clock; one that a wake-up should end but none does spins on until
/// its own deadline.
#[cfg(shuttle)]
pub(crate) fn park_timeout(_timeout: std::time::Duration) {
    thread::yield_now();
}

/// Locks a mutex, ignoring poisoning: boundpool never runs user code while holding its own locks,
/// and a poisoned lock must never take the pool down.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Drops `value`, catching a panic in its `Drop`: boundpool drops user values (results nobody
/// joined, panic payloads) on its own threads, and such a panic must never unwind through a
/// worker (it would kill it) nor skip the bookkeeping after the drop. Returns the panic's payload,
/// if any, for callers that report it.
pub(crate) fn drop_catching<T>(value: T) -> Option<Box<dyn std::any::Any + Send>> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(value))).err()
}

/// [`drop_catching`], discarding the panic. Should the payload's own `Drop` panic as well, it is
/// leaked rather than allowed to unwind.
pub(crate) fn drop_quietly<T>(value: T) {
    if let Some(payload) = drop_catching(value) {
        if let Some(again) = drop_catching(payload) {
            std::mem::forget(again);
        }
    }
}
