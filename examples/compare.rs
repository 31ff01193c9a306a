//! The README's performance table: every contender on the same workloads, interleaved
//! (A B C … A B C …, 5 rounds), medians with min–max, as ratios to the raw channel floor.
//! The flood memory test runs each contender in a child process of its own.
//!
//! `cargo run --release --example compare`

#[path = "../benches/contenders.rs"]
mod contenders;

use contenders::{
    latency, run_compute, run_contended, run_results, run_results_oneshot, run_tiny, work,
    Contender, POOLS,
};
use std::time::{Duration, Instant};

const ROUNDS: usize = 5;

fn median(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

/// The named contenders, each of shape `(workers, capacity)`, warmed up (threads started, pages
/// touched). Idle pools park: built together, they cost each other nothing.
fn warmed_up(names: &[&str], workers: usize, capacity: usize) -> Vec<Contender> {
    let pools: Vec<Contender> = names
        .iter()
        .map(|n| Contender::new(n, workers, capacity))
        .collect();
    for pool in &pools {
        run_tiny(pool, 10_000);
    }
    pools
}

/// Builds every contender once, then runs `measure` on each, interleaved over `ROUNDS` rounds;
/// returns (median, min, max) per pool, in `POOLS` order.
fn interleaved(
    workers: usize,
    capacity: usize,
    mut measure: impl FnMut(&Contender) -> f64,
) -> Vec<(f64, f64, f64)> {
    let pools = warmed_up(&POOLS, workers, capacity);
    let mut samples = vec![Vec::new(); pools.len()];
    for _ in 0..ROUNDS {
        for (i, pool) in pools.iter().enumerate() {
            samples[i].push(measure(pool));
        }
    }
    samples.into_iter().map(median).collect()
}

/// Times `run` (which runs `jobs` jobs) on every pool of shape `(workers, capacity)`,
/// interleaved, and prints the row of nanoseconds per job with ratios to the floor.
fn ns_per_job_row(
    label: &str,
    (workers, capacity): (usize, usize),
    jobs: usize,
    run: impl Fn(&Contender),
) {
    let stats = interleaved(workers, capacity, |pool| {
        let t = Instant::now();
        run(pool);
        t.elapsed().as_nanos() as f64 / jobs as f64
    });
    print_ratio_row(label, &stats, "ns");
}

fn print_ratio_row(label: &str, stats: &[(f64, f64, f64)], unit: &str) {
    let floor = stats[0].0;
    let cells: Vec<String> = stats
        .iter()
        .map(|(m, lo, hi)| format!("{m:.0} {unit} ({lo:.0}–{hi:.0}) **{:.2}×**", m / floor))
        .collect();
    println!("| {label} | {} |", cells.join(" | "));
}

/// CPU time of this process so far (all threads), from /proc/self/stat (clock ticks of 10 ms).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks: u64 = [11, 12] // utime, stime (fields 14 and 15, counted after the name)
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<u64>().ok()))
        .sum();
    Duration::from_millis(ticks * 10)
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Child process: flood `name` with `jobs` jobs carrying 256 bytes each, two workers slower
/// than the producer; print the growth of peak RSS in KiB.
fn flood_child(name: &str, jobs: usize) {
    let pool = Contender::new(name, 2, 64);
    let before = peak_rss_kib();
    for i in 0..jobs {
        let payload = [i as u8; 256];
        pool.execute(move || {
            std::hint::black_box(&payload);
            work(1, i as u64);
        });
    }
    drop(pool); // waits for the backlog
    println!("{}", peak_rss_kib().saturating_sub(before));
}

fn flood(name: &str, jobs: usize) -> f64 {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["flood", name, &jobs.to_string()])
        .output()
        .expect("child process");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse::<f64>()
        .unwrap_or(f64::NAN)
        / 1024.0
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores, {cpu}")
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 4 && args[1] == "flood" {
        flood_child(&args[2], args[3].parse().expect("job count"));
        return;
    }
    // `compare profile <contender> <jobs> [tiny|compute|contended [capacity]]`: one workload
    // alone on 2 workers (capacity 1024; contended: 4 producers, capacity 64), for `perf record -e
    // cpu-clock` or `valgrind --tool=callgrind`, whose instruction counts do not depend on the
    // noise. Instructions per job = the difference of two job counts' totals over the difference.
    if (4..=6).contains(&args.len()) && args[1] == "profile" {
        let jobs = args[3].parse().expect("job count");
        let workload = args.get(4).map_or("tiny", String::as_str);
        let capacity = match args.get(5) {
            Some(c) => c.parse().expect("capacity"),
            None if workload == "contended" => 64,
            None => 1024,
        };
        let pool = Contender::new(&args[2], 2, capacity);
        match workload {
            "tiny" => run_tiny(&pool, jobs),
            "compute" => run_compute(&pool, jobs, 1),
            "contended" => run_contended(&pool, 4, jobs),
            other => panic!("unknown workload {other:?}: tiny, compute or contended"),
        }
        return;
    }
    // `compare latency-settle <samples> <settle-µs>...`: the latency workload on the floor and
    // boundpool only, paired (the order alternating sample by sample), once per settle time: how
    // the gap between the two depends on how long the workers have been parked.
    if args.len() >= 4 && args[1] == "latency-settle" {
        let samples = args[2].parse().expect("sample count");
        for settle in &args[3..] {
            latency_settle(
                samples,
                Duration::from_micros(settle.parse().expect("settle µs")),
            );
        }
        return;
    }
    // `compare compute latency` runs only those workloads (tiny, results, contended, compute,
    // latency, flood); no argument runs them all.
    let only: Vec<&str> = args[1..].iter().map(String::as_str).collect();
    let want = |w: &str| only.is_empty() || only.contains(&w);
    let started = Instant::now();
    println!(
        "Machine: {}; median of {ROUNDS} interleaved rounds (min–max), ratio to the floor.\n",
        machine()
    );
    println!("| workload | {} |", POOLS.join(" | "));
    println!("|---|{}", "---|".repeat(POOLS.len()));

    // tiny: 100,000 jobs of one relaxed add; ns per job.
    const TINY: usize = 100_000;
    for (workers, capacity) in [(2, 4), (2, 1024), (4, 8), (4, 1024)] {
        if !want("tiny") {
            break;
        }
        ns_per_job_row(
            &format!("tiny, {workers} workers, capacity {capacity} (ns/job)"),
            (workers, capacity),
            TINY,
            |pool| run_tiny(pool, TINY),
        );
    }

    // results: 10,000 jobs returning u64, joined and summed by the caller: through a per-job
    // oneshot channel on every pool, and through boundpool's `spawn` + `join` (the others: the
    // oneshot channel again, a control of the pairing), round by round.
    const RESULTS: u64 = 10_000;
    if want("results") {
        paired_rows(
            [
                "results: per-job oneshot channel on every pool (ns/job)",
                "results: spawn + join, 2 workers (ns/job)",
            ],
            "results: spawn + join ÷ oneshot, paired per round (the others: oneshot ÷ oneshot)",
            (2, 64),
            RESULTS as usize,
            |pool, which| {
                let sum = if which == 0 {
                    run_results_oneshot(pool, RESULTS)
                } else {
                    run_results(pool, RESULTS)
                };
                assert_eq!(sum, 3 * RESULTS * (RESULTS - 1) / 2);
            },
        );
    }

    // contended: 4 producers vs 1, 100,000 tiny jobs, 2 workers, capacity 64: ns per job.
    if want("contended") {
        paired_rows(
            [
                "contended, 1 producer(s) (ns/job)",
                "contended, 4 producer(s) (ns/job)",
            ],
            "contended: time per job, 4 producers ÷ 1, paired per round",
            (2, 64),
            TINY,
            |pool, which| run_contended(pool, [1, 4][which], TINY),
        );
    }

    if want("compute") {
        compute_rows();
    }

    // latency: submit-to-start into an idle pool whose workers have parked (10 ms settle).
    if want("latency") {
        latency_row();
    }

    // flood: peak RSS growth while 2 slow workers fall behind a fast producer.
    for jobs in [200_000, 2_000_000] {
        if !want("flood") {
            break;
        }
        let cells: Vec<String> = POOLS
            .iter()
            .map(|n| format!("{:.1} MiB", flood(n, jobs)))
            .collect();
        println!(
            "| flood of {jobs} 256-byte jobs: peak RSS growth | {} |",
            cells.join(" | ")
        );
    }
    eprintln!("\n(total {:.1?})", started.elapsed());
}

/// Two variants of a workload of `jobs` jobs (`run(pool, 0)` and `run(pool, 1)`) on every pool
/// of shape `(workers, capacity)`. Each round runs both on every pool back to back, in
/// alternating order; prints a row of ns per job for each, with ratios to the floor, and a row of
/// the per-round ratio variant 1 ÷ variant 0 — runs made moments apart, where rows made minutes
/// apart can land in different regimes of a noisy machine.
fn paired_rows(
    labels: [&str; 2],
    ratio_label: &str,
    (workers, capacity): (usize, usize),
    jobs: usize,
    run: impl Fn(&Contender, usize),
) {
    let pools = warmed_up(&POOLS, workers, capacity);
    let mut ns = [vec![Vec::new(); POOLS.len()], vec![Vec::new(); POOLS.len()]];
    let mut ratio = vec![Vec::new(); POOLS.len()];
    for round in 0..ROUNDS {
        for (i, pool) in pools.iter().enumerate() {
            let mut t = [0.0; 2];
            for k in 0..2 {
                let which = (round + k) % 2;
                let started = Instant::now();
                run(pool, which);
                t[which] = started.elapsed().as_nanos() as f64 / jobs as f64;
                ns[which][i].push(t[which]);
            }
            ratio[i].push(t[1] / t[0]);
        }
    }
    for (which, label) in labels.into_iter().enumerate() {
        let stats: Vec<_> = ns[which].iter().cloned().map(median).collect();
        print_ratio_row(label, &stats, "ns");
    }
    let cells: Vec<String> = ratio
        .into_iter()
        .map(|r| {
            let (m, lo, hi) = median(r);
            format!("**{m:.2}×** ({lo:.2}–{hi:.2})")
        })
        .collect();
    println!("| {ratio_label} | {} |", cells.join(" | "));
}

/// compute: 1 µs jobs on 2 workers: efficiency = (jobs × single-thread time / workers) / wall.
fn compute_rows() {
    const COMPUTE: usize = 200_000;
    let single = {
        let t = Instant::now();
        for i in 0..COMPUTE {
            work(1, i as u64);
        }
        t.elapsed().as_secs_f64() / COMPUTE as f64
    };
    for capacity in [4, 1024] {
        let mut cells = Vec::new();
        let mut cpu_cells = Vec::new();
        let mut eff = vec![Vec::new(); POOLS.len()];
        let mut cpu = vec![Vec::new(); POOLS.len()];
        let pools: Vec<Contender> = POOLS
            .iter()
            .map(|n| Contender::new(n, 2, capacity))
            .collect();
        for _ in 0..ROUNDS {
            for (i, pool) in pools.iter().enumerate() {
                let (t, c) = (Instant::now(), cpu_time());
                run_compute(pool, COMPUTE, 1);
                let wall = t.elapsed().as_secs_f64();
                let used = (cpu_time() - c).as_secs_f64();
                eff[i].push(COMPUTE as f64 * single / 2.0 / wall);
                cpu[i].push(used / COMPUTE as f64 * 1e9);
            }
        }
        for (e, c) in eff.into_iter().zip(cpu) {
            let (m, lo, hi) = median(e);
            cells.push(format!("{m:.2} ({lo:.2}–{hi:.2})"));
            cpu_cells.push(format!("{:.0} ns", median(c).0));
        }
        println!(
            "| compute 1 µs jobs, 2 workers, capacity {capacity}: efficiency | {} |",
            cells.join(" | ")
        );
        println!(
            "| … CPU time per job (ideal {:.0} ns) | {} |",
            single * 1e9,
            cpu_cells.join(" | ")
        );
    }
}

/// latency: submit-to-start into an idle pool whose workers have parked (10 ms settle).
fn latency_row() {
    let pools: Vec<Contender> = POOLS.iter().map(|n| Contender::new(n, 2, 4)).collect();
    let mut lat = vec![Vec::new(); POOLS.len()];
    for _ in 0..40 {
        for (i, pool) in pools.iter().enumerate() {
            std::thread::sleep(Duration::from_millis(10));
            lat[i].push(latency(pool).as_nanos() as f64 / 1000.0);
        }
    }
    drop(pools);
    let cells: Vec<String> = lat
        .into_iter()
        .map(|l| {
            let (m, lo, hi) = median(l);
            format!("{m:.1} µs ({lo:.1}–{hi:.1})")
        })
        .collect();
    println!(
        "| latency, idle pool, median of 40 | {} |",
        cells.join(" | ")
    );
}

/// One row of `compare latency-settle`: `samples` paired latency samples on the floor and
/// boundpool (2 workers, capacity 4) after `settle` of idleness each.
fn latency_settle(samples: usize, settle: Duration) {
    let pools = warmed_up(&["floor", "boundpool"], 2, 4);
    let mut lat = [Vec::new(), Vec::new()];
    for round in 0..samples {
        for k in 0..2 {
            let i = (round + k) % 2;
            std::thread::sleep(settle);
            lat[i].push(latency(&pools[i]).as_nanos() as f64 / 1000.0);
        }
    }
    let wins = (0..samples).filter(|&r| lat[1][r] < lat[0][r]).count();
    let [floor, boundpool] = lat.map(|l| median(l).0);
    println!(
        "settle {settle:>8.1?}: floor {floor:6.1} µs, boundpool {boundpool:6.1} µs, \
         ratio {:.3}, boundpool faster in {wins}/{samples}",
        boundpool / floor
    );
}
