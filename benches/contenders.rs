//! The pools measured side by side, behind one small interface (shared by `benches/pools.rs`
//! and `examples/compare.rs`). Every contender gets the same closure type, so none pays for a
//! double box.
#![allow(dead_code)] // each user takes a subset

use boundpool::WorkerPool;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// A job as the hand-written pools carry it.
pub type Job = Box<dyn FnOnce() + Send>;

/// A hand-rolled pool: a job sender and the threads that receive. Dropping it closes the
/// channel and joins the threads.
pub struct HandRolled<S> {
    tx: Option<S>,
    threads: Vec<JoinHandle<()>>,
}

impl<S> HandRolled<S> {
    fn new(tx: S, workers: usize, body: impl Fn() -> Box<dyn FnOnce() + Send>) -> Self {
        let threads = (0..workers).map(|_| std::thread::spawn(body())).collect();
        HandRolled {
            tx: Some(tx),
            threads,
        }
    }

    fn sender(&self) -> &S {
        self.tx.as_ref().expect("open until dropped")
    }
}

impl<S> Drop for HandRolled<S> {
    fn drop(&mut self) {
        self.tx.take();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// The physical floor of this design: a bounded crossbeam channel and N receiving threads,
/// with no bookkeeping at all.
pub type Floor = HandRolled<crossbeam_channel::Sender<Job>>;

fn floor(workers: usize, capacity: usize) -> Floor {
    let (tx, rx) = crossbeam_channel::bounded::<Job>(capacity);
    HandRolled::new(tx, workers, || {
        let rx = rx.clone();
        Box::new(move || {
            for job in rx {
                job();
            }
        })
    })
}

/// The textbook pool boundpool replaces: `sync_channel` + `Arc<Mutex<Receiver>>`.
pub type Textbook = HandRolled<mpsc::SyncSender<Job>>;

fn textbook(workers: usize, capacity: usize) -> Textbook {
    let (tx, rx) = mpsc::sync_channel::<Job>(capacity);
    let rx = Arc::new(Mutex::new(rx));
    HandRolled::new(tx, workers, || {
        let rx = Arc::clone(&rx);
        Box::new(move || loop {
            let job = rx.lock().unwrap().recv();
            match job {
                Ok(job) => job(),
                Err(_) => break,
            }
        })
    })
}

/// Every contender.
pub enum Contender {
    Floor(Floor),
    Textbook(Textbook),
    ThreadPool(threadpool::ThreadPool),
    Rayon(rayon::ThreadPool),
    Boundpool(WorkerPool),
    /// `std::thread::spawn` per job (only for small job counts).
    ThreadPerJob,
}

/// Names in table order.
pub const POOLS: [&str; 5] = ["floor", "boundpool", "threadpool", "rayon", "textbook"];

impl Contender {
    /// The contender called `name`, with `workers` threads and (where bounded) `capacity`.
    pub fn new(name: &str, workers: usize, capacity: usize) -> Contender {
        match name {
            "floor" => Contender::Floor(floor(workers, capacity)),
            "textbook" => Contender::Textbook(textbook(workers, capacity)),
            "threadpool" => Contender::ThreadPool(threadpool::ThreadPool::new(workers)),
            "rayon" => Contender::Rayon(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(workers)
                    .build()
                    .expect("rayon pool"),
            ),
            "boundpool" => Contender::Boundpool(WorkerPool::new(workers, capacity)),
            "thread-per-job" => Contender::ThreadPerJob,
            other => panic!("unknown contender {other}"),
        }
    }

    /// Runs `job` on the contender (blocking while a bounded queue is full).
    #[inline]
    pub fn execute<F: FnOnce() + Send + 'static>(&self, job: F) {
        match self {
            Contender::Floor(p) => p.sender().send(Box::new(job)).unwrap(),
            Contender::Textbook(p) => p.sender().send(Box::new(job)).unwrap(),
            Contender::ThreadPool(p) => p.execute(job),
            Contender::Rayon(p) => p.spawn(job),
            Contender::Boundpool(p) => p.submit(job),
            Contender::ThreadPerJob => {
                std::thread::spawn(job);
            }
        }
    }

    /// Runs `f` on the contender and hands its result back: boundpool through `spawn`, the
    /// others through a per-job oneshot crossbeam channel.
    pub fn compute<R: Send + 'static>(
        &self,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> Box<dyn FnOnce() -> R> {
        if let Contender::Boundpool(p) = self {
            let handle = p.spawn(f);
            return Box::new(move || handle.join().unwrap());
        }
        self.compute_oneshot(f)
    }

    /// Runs `f` on the contender and hands its result back through a per-job oneshot crossbeam
    /// channel, on every contender (boundpool included: its `submit`).
    pub fn compute_oneshot<R: Send + 'static>(
        &self,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> Box<dyn FnOnce() -> R> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.execute(move || {
            let _ = tx.send(f());
        });
        Box::new(move || rx.recv().unwrap())
    }
}

/// Counts finished jobs; `wait` blocks (without spinning on the workers' cores) until `n` did.
///
/// Cloning it (once per job) costs one reference-count increment; the count itself sits on a
/// cache line of its own, so the harness adds as little contention as it can to what it measures.
#[derive(Clone)]
pub struct Countdown(Arc<CountdownInner>);

pub struct CountdownInner {
    count: Padded,
    target: usize,
    tx: crossbeam_channel::Sender<()>,
    rx: crossbeam_channel::Receiver<()>,
}

#[repr(align(128))]
struct Padded(std::sync::atomic::AtomicUsize);

impl Countdown {
    pub fn new(target: usize) -> Countdown {
        let (tx, rx) = crossbeam_channel::bounded(1);
        Countdown(Arc::new(CountdownInner {
            count: Padded(std::sync::atomic::AtomicUsize::new(0)),
            target,
            tx,
            rx,
        }))
    }

    /// One job finished.
    #[inline]
    pub fn tick(&self) {
        let n = self
            .0
            .count
            .0
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        if n == self.0.target {
            let _ = self.0.tx.send(());
        }
    }

    pub fn wait(&self) {
        self.0.rx.recv().unwrap();
    }
}

/// About `units` µs of arithmetic that the optimiser cannot remove.
#[inline]
pub fn work(units: u32, seed: u64) -> u64 {
    let mut x = seed | 1;
    for _ in 0..units * ITERS_PER_MICRO {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    std::hint::black_box(x)
}

/// Roughly 1 µs of rounds on this project's 2-core Xeon (one round is ~2 ns here); the compare
/// table prints the measured single-thread time beside the efficiency it computes from it.
pub const ITERS_PER_MICRO: u32 = 480;

/// Submits `jobs` tiny jobs (one relaxed add each) and waits for all of them.
pub fn run_tiny(c: &Contender, jobs: usize) {
    let done = Countdown::new(jobs);
    for _ in 0..jobs {
        let done = done.clone();
        c.execute(move || done.tick());
    }
    done.wait();
}

/// `jobs` jobs of `units` µs of arithmetic each, awaited.
pub fn run_compute(c: &Contender, jobs: usize, units: u32) {
    let done = Countdown::new(jobs);
    for i in 0..jobs {
        let done = done.clone();
        c.execute(move || {
            work(units, i as u64);
            done.tick();
        });
    }
    done.wait();
}

/// `jobs` jobs returning a `u64`, joined and summed by the caller.
pub fn run_results(c: &Contender, jobs: u64) -> u64 {
    let pending: Vec<_> = (0..jobs).map(|i| c.compute(move || i * 3)).collect();
    pending.into_iter().map(|get| get()).sum()
}

/// [`run_results`] with every contender, boundpool included, returning through a per-job
/// oneshot channel: the baseline `spawn` + `join` must beat.
pub fn run_results_oneshot(c: &Contender, jobs: u64) -> u64 {
    let pending: Vec<_> = (0..jobs)
        .map(|i| c.compute_oneshot(move || i * 3))
        .collect();
    pending.into_iter().map(|get| get()).sum()
}

/// `producers` threads submit `jobs / producers` tiny jobs each, at once; awaited.
pub fn run_contended(c: &Contender, producers: usize, jobs: usize) {
    let done = Countdown::new(jobs);
    std::thread::scope(|s| {
        for _ in 0..producers {
            let done = &done;
            s.spawn(move || {
                for _ in 0..jobs / producers {
                    let done = done.clone();
                    c.execute(move || done.tick());
                }
            });
        }
    });
    done.wait();
}

/// Submit-to-start latency of one job into an idle pool: from just before the submit to a
/// timestamp taken inside the job.
pub fn latency(c: &Contender) -> std::time::Duration {
    let (tx, rx) = crossbeam_channel::bounded(1);
    let start = std::time::Instant::now();
    c.execute(move || {
        let _ = tx.send(std::time::Instant::now());
    });
    rx.recv().unwrap() - start
}
