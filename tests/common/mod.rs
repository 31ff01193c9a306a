//! Helpers shared by the integration tests: a gate that holds jobs (and the workers running
//! them), a deadlock guard, quiet deliberate panics, drop-counted payloads, and thread counting.
#![allow(dead_code)] // each test binary uses a different subset

use boundpool::{Job, JobHandle, WorkerPool};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, Once, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

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
        let reached = self.waiters_within(n, PATIENCE);
        assert!(
            reached >= n,
            "{n} jobs never reached the gate (only {reached})"
        );
    }

    /// Waits up to `limit` for `n` jobs to wait at the gate; returns how many do.
    fn waiters_within(&self, n: usize, limit: Duration) -> usize {
        let (lock, cv) = &*self.inner;
        let state = lock.lock().unwrap();
        let (state, _) = cv.wait_timeout_while(state, limit, |s| s.1 < n).unwrap();
        state.1
    }

    /// How many jobs wait at the gate now.
    fn waiters(&self) -> usize {
        self.inner.0.lock().unwrap().1
    }

    /// A job that waits at the gate.
    pub fn job(&self) -> impl FnOnce() + Send + 'static {
        let gate = self.clone();
        move || gate.wait()
    }

    /// Submits `n` gate jobs to `pool` and returns once all of them wait at the gate: holds `n`
    /// of its workers until the gate opens.
    pub fn hold(&self, pool: &WorkerPool, n: usize) {
        if let Err(i) = self.try_hold(pool, n, PATIENCE) {
            panic!("gate: only {i} of {n} held jobs started");
        }
    }

    /// [`hold`](Gate::hold), giving up after `limit`: `Err(i)` if only `i` of the jobs reached
    /// the gate (a worker is gone or stuck).
    pub fn try_hold(&self, pool: &WorkerPool, n: usize, limit: Duration) -> Result<(), usize> {
        let before = self.waiters();
        for _ in 0..n {
            pool.submit(self.job());
        }
        let reached = self
            .waiters_within(before + n, limit)
            .saturating_sub(before);
        if reached >= n {
            Ok(())
        } else {
            Err(reached)
        }
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
/// deadlock fails instead of hanging CI; the stuck thread is leaked). A panic in `f` is re-raised.
pub fn with_timeout<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    within(PATIENCE, what, f)
}

/// [`with_timeout`] with a limit of its own.
pub fn within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    thread::Builder::new()
        .name(format!("within:{what}"))
        .spawn(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            let _ = tx.send(result);
        })
        .expect("spawn the guarded thread");
    match rx.recv_timeout(limit) {
        Ok(Ok(value)) => value,
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => panic!("deadlock: {what} did not finish within {limit:?}"),
    }
}

/// Silences the default panic message for panics whose message contains `marker` (tests that
/// panic on purpose, thousands of times), keeping every other panic visible. One hook serves
/// every marker registered in the process.
pub fn quiet_panics(marker: &'static str) {
    static MARKERS: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    static HOOK: Once = Once::new();
    {
        let mut markers = MARKERS.lock().unwrap_or_else(PoisonError::into_inner);
        if !markers.contains(&marker) {
            markers.push(marker);
        }
    }
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let msg = panic_message(info.payload()).unwrap_or("");
            let quiet = MARKERS
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .any(|m| msg.contains(m));
            if !quiet {
                default(info);
            }
        }));
    });
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

/// A set of per-id drop counters.
#[derive(Clone)]
pub struct Drops(Arc<[AtomicU32]>);

impl Drops {
    pub fn new(n: usize) -> Drops {
        Drops((0..n).map(|_| AtomicU32::new(0)).collect())
    }

    /// A payload whose drop counts for `id`.
    pub fn payload(&self, id: usize) -> Payload {
        Payload {
            drops: self.clone(),
            id,
        }
    }

    /// Submits to `pool` a job that captures payload `id` and touches it.
    pub fn submit_touching(&self, pool: &WorkerPool, id: usize) {
        let payload = self.payload(id);
        pool.submit(move || {
            payload.touch();
        });
    }

    pub fn count(&self, id: usize) -> u32 {
        self.0[id].load(Ordering::SeqCst)
    }

    /// Asserts that every id in `ids` was dropped exactly once.
    pub fn assert_each_once(&self, ids: impl IntoIterator<Item = usize>, what: &str) {
        for id in ids {
            let n = self.count(id);
            assert_eq!(
                n, 1,
                "{what}: payload {id} dropped {n} times, expected exactly once"
            );
        }
    }

    /// Asserts every counter is exactly once.
    pub fn assert_all_once(&self, what: &str) {
        self.assert_each_once(0..self.0.len(), what);
    }
}

/// A value whose `Drop` increments its id's counter.
pub struct Payload {
    drops: Drops,
    pub id: usize,
}

impl Payload {
    /// Touches the payload (so closures capture it by value, not by nothing).
    pub fn touch(&self) -> usize {
        self.id
    }
}

impl Drop for Payload {
    fn drop(&mut self) {
        self.drops.0[self.id].fetch_add(1, Ordering::SeqCst);
    }
}

/// This process's thread count, from /proc/self/status (Linux); `None` elsewhere.
pub fn thread_count() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
}

/// Asserts that the thread count comes back down to `baseline` (a [`thread_count`] taken before
/// the test; `None`: not countable here, nothing to check), polling for up to `PATIENCE`: thread
/// exit is asynchronous after the last user-visible work.
pub fn assert_threads_back_to(baseline: Option<usize>, what: &str) {
    let Some(base) = baseline else { return };
    let deadline = Instant::now() + PATIENCE;
    loop {
        let Some(now) = thread_count() else { return };
        if now <= base {
            return;
        }
        if Instant::now() >= deadline {
            panic!("{what}: thread count rose from {base} to {now}: a leak");
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// Asserts that every one of `pool`'s workers is alive and takes jobs: holds them all at once.
pub fn assert_all_workers_alive(pool: &WorkerPool, what: &str) {
    let gate = Gate::new();
    let n = pool.workers();
    if let Err(i) = gate.try_hold(pool, n, Duration::from_secs(20)) {
        panic!("{what}: only {i} of {n} workers took a job: a worker died or is stuck");
    }
    gate.open();
    assert!(
        pool.wait_idle_timeout(PATIENCE),
        "{what}: the pool did not go idle after the gate opened"
    );
}

/// A count a producer bumps as it makes progress, that the test can wait on (with `PATIENCE`) to
/// see it move: proves the producer is still going at a given point, without polling or sleeping.
#[derive(Clone, Default)]
pub struct Progress {
    inner: Arc<(Mutex<u64>, Condvar)>,
}

impl Progress {
    pub fn new() -> Progress {
        Progress::default()
    }

    /// Counts one step; returns the new count.
    pub fn bump(&self) -> u64 {
        let (lock, cv) = &*self.inner;
        let mut n = lock.lock().unwrap();
        *n += 1;
        cv.notify_all();
        *n
    }

    /// The count now.
    pub fn get(&self) -> u64 {
        *self.inner.0.lock().unwrap()
    }

    /// Blocks until the count exceeds `seen` and returns it; panics with `what` after `PATIENCE`
    /// (the producer stopped or is stuck).
    pub fn wait_past(&self, seen: u64, what: &str) -> u64 {
        let (lock, cv) = &*self.inner;
        let n = lock.lock().unwrap();
        let (n, timeout) = cv.wait_timeout_while(n, PATIENCE, |n| *n <= seen).unwrap();
        assert!(
            !timeout.timed_out(),
            "{what}: the count stayed at {} (waited for more than {seen})",
            *n
        );
        *n
    }
}

/// Occupies one of `pool`'s workers with a job that, once handed the pool, calls `shutdown_now`
/// there and sends back the jobs it returned. Returns once that job is running. On one of the
/// pool's own threads `shutdown_now` does not wait for the running jobs, so the test can keep the
/// other workers held at a gate until it has returned: no worker can start a queued job first,
/// and every queued job comes back.
pub fn shutdown_now_on_a_worker(
    pool: &WorkerPool,
) -> (mpsc::Sender<WorkerPool>, mpsc::Receiver<Vec<Job>>) {
    let (pool_tx, pool_rx) = mpsc::channel::<WorkerPool>();
    let (jobs_tx, jobs_rx) = mpsc::channel();
    let (started_tx, started_rx) = mpsc::channel();
    pool.submit(move || {
        started_tx.send(()).unwrap();
        let pool = pool_rx
            .recv_timeout(PATIENCE)
            .expect("the pool was handed over");
        jobs_tx.send(pool.shutdown_now()).unwrap();
    });
    started_rx
        .recv_timeout(PATIENCE)
        .expect("the shutting-down job started");
    (pool_tx, jobs_rx)
}

/// A pool of `workers` and `capacity` whose start hook, stop hook and panic handler all panic,
/// with messages starting `armour:` (silence them with `quiet_panics("armour:")`). Returns it
/// with the number of times the handler has been called.
pub fn armoured_pool(workers: usize, capacity: usize) -> (WorkerPool, Arc<AtomicUsize>) {
    let handled = Arc::new(AtomicUsize::new(0));
    let h = Arc::clone(&handled);
    let pool = WorkerPool::builder()
        .workers(workers)
        .capacity(capacity)
        .on_thread_start(|| panic!("armour: start hook"))
        .on_thread_stop(|| panic!("armour: stop hook"))
        .panic_handler(move |_| {
            h.fetch_add(1, Ordering::SeqCst);
            panic!("armour: handler");
        })
        .build()
        .expect("build");
    (pool, handled)
}
