//! Helpers shared by the armour tests (drop accounting, model, stress, bad input): drop-counted
//! payloads, gates that hold workers, and a watchdog that turns a hang into a failure.
#![allow(dead_code)] // each test crate uses a different subset

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use boundpool::WorkerPool;

/// How long any single wait in these tests may take before it counts as a hang.
pub const PATIENCE: Duration = Duration::from_secs(60);

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

/// Holds pool workers inside jobs until released.
pub struct Gate {
    release: Mutex<Option<mpsc::Sender<()>>>,
    rx: Arc<Mutex<mpsc::Receiver<()>>>,
    started_tx: mpsc::Sender<()>,
    started: Mutex<mpsc::Receiver<()>>,
}

impl Gate {
    pub fn new() -> Gate {
        let (release, rx) = mpsc::channel();
        let (started_tx, started) = mpsc::channel();
        Gate {
            release: Mutex::new(Some(release)),
            rx: Arc::new(Mutex::new(rx)),
            started_tx,
            started: Mutex::new(started),
        }
    }

    /// A job that announces it started, then blocks until the gate opens.
    pub fn job(&self) -> impl FnOnce() + Send + 'static {
        let rx = Arc::clone(&self.rx);
        let started = self.started_tx.clone();
        move || {
            started.send(()).expect("gate: the test is gone");
            // Disconnection (the gate opened) ends the wait.
            let _ = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
        }
    }

    /// Submits `n` gate jobs and waits until all of them are running (holds `n` workers).
    pub fn hold(&self, pool: &WorkerPool, n: usize) {
        if let Err(i) = self.try_hold(pool, n, PATIENCE) {
            panic!("gate: held job {i} of {n} never started");
        }
    }

    /// Like `hold`, but gives up after `limit`: `Err(i)` if only `i` jobs started (some worker
    /// is gone or stuck).
    pub fn try_hold(&self, pool: &WorkerPool, n: usize, limit: Duration) -> Result<(), usize> {
        for _ in 0..n {
            pool.submit(self.job());
        }
        let deadline = Instant::now() + limit;
        let started = self.started.lock().unwrap_or_else(|e| e.into_inner());
        for i in 0..n {
            let left = deadline.saturating_duration_since(Instant::now());
            if started.recv_timeout(left).is_err() {
                return Err(i);
            }
        }
        Ok(())
    }

    /// Lets every gate job finish.
    pub fn open(&self) {
        self.release.lock().unwrap().take();
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.open();
    }
}

/// Runs `f` on its own thread and fails if it does not finish within `limit` (a hang).
/// A panic in `f` is re-raised here.
pub fn within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::Builder::new()
        .name(format!("within:{what}"))
        .spawn(move || {
            let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            let _ = tx.send(());
            out
        })
        .expect("spawn watchdog thread");
    match rx.recv_timeout(limit) {
        Ok(()) => match handle.join().expect("watchdog thread") {
            Ok(v) => v,
            Err(p) => std::panic::resume_unwind(p),
        },
        Err(_) => panic!("{what}: did not finish within {limit:?} (hang)"),
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

/// Polls the thread count until it is at most `limit`, for at most `PATIENCE`. Thread exit is
/// asynchronous after the last user-visible work, so this polls in a deadline loop.
pub fn wait_threads_at_most(limit: usize) -> Result<(), usize> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let Some(now) = thread_count() else {
            return Ok(());
        };
        if now <= limit {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(now);
        }
        std::thread::sleep(Duration::from_millis(5));
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

/// Installs (once) a panic hook that stays silent for panics whose message starts with
/// `armour:` (tests that panic on purpose would otherwise flood the output).
pub fn quiet_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let msg = info
                .payload()
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| info.payload().downcast_ref::<String>().map(String::as_str))
                .unwrap_or("");
            if !msg.starts_with("armour:") {
                default(info);
            }
        }));
    });
}
