//! The smallest useful program: build a pool, submit, spawn and join, shut down.
//!
//! `cargo run --example quickstart`

use boundpool::WorkerPool;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

fn main() {
    // Four workers; at most eight jobs wait in the queue (a `submit` that finds it full waits).
    let pool = WorkerPool::new(4, 8);

    // Fire-and-forget jobs.
    let total = Arc::new(AtomicU64::new(0));
    for n in 1..=1_000 {
        let total = Arc::clone(&total);
        pool.submit(move || {
            total.fetch_add(n, Ordering::Relaxed);
        });
    }

    // A job with a result.
    let handle = pool.spawn(|| (1..=20u64).product::<u64>());
    println!("20! = {}", handle.join().expect("the job does not panic"));

    // Shut down: every accepted job runs, every thread is joined.
    let stats = pool.shutdown();
    println!("sum 1..=1000 = {}", total.load(Ordering::Relaxed));
    println!("{stats:?}");
}
