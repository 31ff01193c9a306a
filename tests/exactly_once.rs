//! Exactly once: a million jobs from four producers each run exactly once.
mod common;

use boundpool::WorkerPool;
use common::with_timeout;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

#[test]
fn four_producers_a_million_jobs_each_runs_exactly_once() {
    with_timeout("a million jobs", a_million_jobs);
}

fn a_million_jobs() {
    const PRODUCERS: usize = 4;
    const PER_PRODUCER: usize = 250_000;
    let flags: Arc<Vec<AtomicU8>> = Arc::new(
        (0..PRODUCERS * PER_PRODUCER)
            .map(|_| AtomicU8::new(0))
            .collect(),
    );
    let pool = WorkerPool::new(2, 256);
    std::thread::scope(|s| {
        for p in 0..PRODUCERS {
            let (pool, flags) = (&pool, &flags);
            s.spawn(move || {
                for i in 0..PER_PRODUCER {
                    let flags = Arc::clone(flags);
                    let id = p * PER_PRODUCER + i;
                    pool.submit(move || {
                        flags[id].fetch_add(1, Ordering::Relaxed);
                    });
                }
            });
        }
    });
    let stats = pool.shutdown();
    assert_eq!(
        stats.completed,
        (PRODUCERS * PER_PRODUCER) as u64,
        "completed count"
    );
    assert_eq!(
        (stats.queued, stats.active, stats.panicked),
        (0, 0, 0),
        "final stats"
    );
    let wrong: Vec<(usize, u8)> = flags
        .iter()
        .enumerate()
        .map(|(i, f)| (i, f.load(Ordering::Relaxed)))
        .filter(|&(_, n)| n != 1)
        .take(10)
        .collect();
    assert!(
        wrong.is_empty(),
        "jobs not run exactly once (id, runs): {wrong:?}"
    );
}
