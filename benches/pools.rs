//! boundpool against the pools people use, each workload through every contender in one
//! criterion group. `cargo bench`; `examples/compare.rs` prints the ratio table for the README.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::time::Duration;

mod contenders;
use contenders::{
    latency, run_compute, run_contended, run_results, run_results_oneshot, run_tiny, Contender,
    POOLS,
};

const TINY_JOBS: usize = 100_000;

fn tiny(c: &mut Criterion) {
    for workers in [2, 4] {
        for capacity in [2 * workers, 1024] {
            let mut group = c.benchmark_group(format!("tiny/w{workers}-c{capacity}"));
            group.throughput(Throughput::Elements(TINY_JOBS as u64));
            group
                .sample_size(10)
                .measurement_time(Duration::from_secs(2));
            for name in POOLS {
                let pool = Contender::new(name, workers, capacity);
                group.bench_function(BenchmarkId::from_parameter(name), |b| {
                    b.iter(|| run_tiny(&pool, TINY_JOBS))
                });
            }
            group.finish();
        }
    }
}

fn compute(c: &mut Criterion) {
    const JOBS: usize = 20_000;
    for capacity in [4, 1024] {
        let mut group = c.benchmark_group(format!("compute/w2-c{capacity}"));
        group.throughput(Throughput::Elements(JOBS as u64));
        group
            .sample_size(10)
            .measurement_time(Duration::from_secs(2));
        for name in POOLS {
            let pool = Contender::new(name, 2, capacity);
            group.bench_function(BenchmarkId::from_parameter(name), |b| {
                b.iter(|| run_compute(&pool, JOBS, 1))
            });
        }
        group.finish();
    }
}

fn latency_group(c: &mut Criterion) {
    let mut group = c.benchmark_group("latency/w2");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3));
    for name in POOLS {
        let pool = Contender::new(name, 2, 4);
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    std::thread::sleep(Duration::from_millis(10)); // let the workers park
                    total += latency(&pool);
                }
                total
            })
        });
    }
    group.finish();
}

fn results(c: &mut Criterion) {
    const JOBS: u64 = 10_000;
    let mut group = c.benchmark_group("results/w2-c64");
    group.throughput(Throughput::Elements(JOBS));
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(2));
    for name in POOLS {
        let pool = Contender::new(name, 2, 64);
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| assert_eq!(run_results(&pool, JOBS), 3 * JOBS * (JOBS - 1) / 2))
        });
    }
    // The baseline `spawn` must beat: the same fan-out/fan-in on boundpool's `submit` with a
    // per-job oneshot channel.
    let pool = Contender::new("boundpool", 2, 64);
    group.bench_function(BenchmarkId::from_parameter("boundpool-oneshot"), |b| {
        b.iter(|| assert_eq!(run_results_oneshot(&pool, JOBS), 3 * JOBS * (JOBS - 1) / 2))
    });
    group.finish();
}

fn contended(c: &mut Criterion) {
    let mut group = c.benchmark_group("contended/w2-c64");
    group.throughput(Throughput::Elements(TINY_JOBS as u64));
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(2));
    for name in POOLS {
        let pool = Contender::new(name, 2, 64);
        for producers in [1, 4] {
            group.bench_function(BenchmarkId::new(name, format!("{producers}p")), |b| {
                b.iter(|| run_contended(&pool, producers, TINY_JOBS))
            });
        }
    }
    group.finish();
}

fn thread_per_job(c: &mut Criterion) {
    // The baseline everyone starts from, at a job count it survives.
    let mut group = c.benchmark_group("tiny-1000/thread-per-job");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(2));
    for name in ["thread-per-job", "boundpool"] {
        let pool = Contender::new(name, 2, 4);
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| run_tiny(&pool, 1_000))
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    tiny,
    compute,
    latency_group,
    results,
    contended,
    thread_per_job
);
criterion_main!(benches);
