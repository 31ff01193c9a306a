//! Paired A/B benchmark of two versions of boundpool in one process (`scripts/ab.sh` builds it).
//!
//! Each case runs on A and B back to back, the order alternating round by round, and reports
//! the medians and the median of the per-round ratios B/A with how many rounds B won. Pairing
//! adjacent runs cancels most of a noisy machine's drift between its fast and slow regimes,
//! which separate processes run minutes apart do not.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// A completion count on a cache line of its own, and a channel to say "all done".
#[repr(align(128))]
struct Done {
    count: AtomicUsize,
    target: usize,
    tx: mpsc::SyncSender<()>,
}

fn tick(done: &Done) {
    if done.count.fetch_add(1, Ordering::Relaxed) + 1 == done.target {
        let _ = done.tx.send(());
    }
}

/// About `units` µs of arithmetic on a ~2 GHz core, which the optimiser cannot remove.
#[inline(never)]
fn work(units: u32, seed: u64) -> u64 {
    let mut x = seed | 1;
    for _ in 0..units * 480 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    std::hint::black_box(x)
}

macro_rules! runner {
    ($name:ident, $krate:ident) => {
        /// ns per job for `jobs` jobs from `producers` threads into a fresh pool.
        fn $name(
            workers: usize,
            capacity: usize,
            producers: usize,
            jobs: usize,
            units: u32,
        ) -> f64 {
            let pool = $krate::WorkerPool::new(workers, capacity);
            let (tx, rx) = mpsc::sync_channel(1);
            let done = Arc::new(Done {
                count: AtomicUsize::new(0),
                target: jobs,
                tx,
            });
            let start = Instant::now();
            std::thread::scope(|s| {
                for _ in 0..producers {
                    let (pool, done) = (&pool, &done);
                    let produce = move || {
                        for i in 0..jobs / producers {
                            let done = Arc::clone(done);
                            pool.submit(move || {
                                if units > 0 {
                                    work(units, i as u64);
                                }
                                tick(&done);
                            });
                        }
                    };
                    // One producer runs on this thread, as in `compare`'s tiny rows.
                    if producers == 1 {
                        produce();
                    } else {
                        s.spawn(produce);
                    }
                }
            });
            rx.recv_timeout(Duration::from_secs(120))
                .expect("jobs finished");
            let elapsed = start.elapsed();
            pool.shutdown();
            elapsed.as_nanos() as f64 / jobs as f64
        }
    };
}
runner!(run_a, boundpool_a);
runner!(run_b, boundpool_b);

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rounds: usize = args.get(1).map_or(15, |r| r.parse().expect("rounds"));
    let only: Vec<&str> = args.iter().skip(2).map(String::as_str).collect();
    // (name, workers, capacity, producers, jobs, µs of work per job)
    let cases: [(&str, usize, usize, usize, usize, u32); 8] = [
        ("tiny w2 c4", 2, 4, 1, 200_000, 0),
        ("tiny w2 c1024", 2, 1024, 1, 200_000, 0),
        ("tiny w4 c8", 4, 8, 1, 200_000, 0),
        ("tiny w4 c1024", 4, 1024, 1, 200_000, 0),
        ("contended 1p c64", 2, 64, 1, 200_000, 0),
        ("contended 4p c64", 2, 64, 4, 200_000, 0),
        ("compute c4", 2, 4, 1, 100_000, 1),
        ("compute c1024", 2, 1024, 1, 100_000, 1),
    ];
    println!(
        "{:<18} {:>9} {:>9} {:>7} {:>10}",
        "case", "A ns/job", "B ns/job", "B/A", "B faster"
    );
    for (name, w, c, p, jobs, units) in cases {
        if !only.is_empty() && !only.iter().any(|o| name.starts_with(o)) {
            continue;
        }
        let (mut a, mut b, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds {
            let (ta, tb) = if round % 2 == 0 {
                let ta = run_a(w, c, p, jobs, units);
                (ta, run_b(w, c, p, jobs, units))
            } else {
                let tb = run_b(w, c, p, jobs, units);
                (run_a(w, c, p, jobs, units), tb)
            };
            a.push(ta);
            b.push(tb);
            ratio.push(tb / ta);
        }
        let wins = ratio.iter().filter(|&&r| r < 1.0).count();
        println!(
            "{name:<18} {:>9.0} {:>9.0} {:>7.3} {:>6}/{rounds}",
            median(a),
            median(b),
            median(ratio),
            wins
        );
    }
}
