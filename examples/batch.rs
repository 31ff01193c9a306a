//! The job boundpool exists for: a batch of 50,000 items, each needing one of a few scarce
//! connections.
//!
//! One thread per item (`for item in items { thread::spawn(..) }`) would start 50,000 threads,
//! each opening a connection: the database refuses connection 101 and the OS runs out of memory.
//! The textbook `Arc<Mutex<Receiver>>` pool fixes the thread count, but its unbounded queue holds
//! all 50,000 items at once and a panicking item kills a worker.
//!
//! Here a pool of `CONNECTIONS` workers runs the batch through a bounded queue: never more than
//! `CONNECTIONS` items hold a connection (the simulated database panics if they ever do), the
//! producer waits whenever the queue is full, and the few items that fail are counted, not lost.
//!
//! Run it with `cargo run --release --example batch`.

use boundpool::WorkerPool;
use indicatif::{ProgressBar, ProgressStyle};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ITEMS: usize = 50_000;
const CONNECTIONS: usize = 8;

/// A database that allows `limit` connections at once and panics on one more.
struct Database {
    limit: usize,
    in_use: Mutex<usize>,
    peak: AtomicUsize,
}

/// A connection: returned to the database when dropped.
struct Connection<'a>(&'a Database);

impl Database {
    fn new(limit: usize) -> Database {
        Database {
            limit,
            in_use: Mutex::new(0),
            peak: AtomicUsize::new(0),
        }
    }

    /// Opens a connection. Panics if that would exceed the limit: the failure mode of one thread
    /// per item.
    fn connect(&self) -> Connection<'_> {
        let mut in_use = self.in_use.lock().unwrap();
        *in_use += 1;
        assert!(
            *in_use <= self.limit,
            "too many connections: {} > {}",
            *in_use,
            self.limit
        );
        self.peak.fetch_max(*in_use, Ordering::Relaxed);
        Connection(self)
    }
}

impl Drop for Connection<'_> {
    fn drop(&mut self) {
        *self.0.in_use.lock().unwrap() -= 1;
    }
}

impl Connection<'_> {
    /// A query: a network round trip (100 µs of waiting) and a little CPU work. Item ids
    /// divisible by 9,973 hit a bad row and fail.
    fn process(&self, id: usize) -> u64 {
        std::thread::sleep(Duration::from_micros(100));
        assert!(id % 9_973 != 0 || id == 0, "bad row {id}");
        let mut x = id as u64 | 1;
        for _ in 0..500 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        x
    }
}

fn main() {
    // The failing items' panic messages would scribble over the progress bar.
    std::panic::set_hook(Box::new(|_| {}));

    let db = Arc::new(Database::new(CONNECTIONS));
    let done = Arc::new(AtomicUsize::new(0));
    let pool = WorkerPool::new(CONNECTIONS, 2 * CONNECTIONS);

    let bar = ProgressBar::new(ITEMS as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} items  {per_sec}  {msg}")
            .expect("a valid template"),
    );
    let start = Instant::now();
    let mut peak_queue = 0;
    for id in 0..ITEMS {
        let (db, done) = (Arc::clone(&db), Arc::clone(&done));
        // Blocks while 2 × CONNECTIONS items already wait: the batch never sits in memory whole.
        pool.submit(move || {
            let conn = db.connect();
            std::hint::black_box(conn.process(id));
            done.fetch_add(1, Ordering::Relaxed);
        });
        if id % 256 == 0 {
            let stats = pool.stats();
            peak_queue = peak_queue.max(stats.queued);
            bar.set_position(stats.completed);
            bar.set_message(format!("{} failed", stats.panicked));
        }
    }
    let stats = pool.shutdown();
    bar.set_position(stats.completed);
    bar.finish_with_message(format!("{} failed", stats.panicked));
    let elapsed = start.elapsed();

    println!("items:            {}", stats.completed);
    println!("  succeeded:      {}", done.load(Ordering::Relaxed));
    println!(
        "  panicked:       {} (counted, workers kept running)",
        stats.panicked
    );
    println!("time:             {:.2?}", elapsed);
    println!(
        "rate:             {:.0} items/s",
        ITEMS as f64 / elapsed.as_secs_f64().max(f64::EPSILON)
    );
    println!(
        "peak concurrency: {} of {} connections",
        db.peak.load(Ordering::Relaxed),
        CONNECTIONS
    );
    println!(
        "peak queue:       {} of {} slots",
        peak_queue, stats.capacity
    );
    assert_eq!(
        stats.completed as usize, ITEMS,
        "every item was processed or counted"
    );
    assert!(db.peak.load(Ordering::Relaxed) <= CONNECTIONS);
}
