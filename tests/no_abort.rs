//! No legal use aborts the process: a closure of 1.5 MiB on a 2 MiB worker stack, a scope body
//! panicking over an unjoined job's payload whose `Drop` panics, absurd builder sizes. An abort
//! takes down the whole test binary, so each case runs in a child process (this binary re-run on
//! the hidden test `child_case`, the case named by an environment variable) and the parent test
//! checks how the child ended: an abort fails that test alone.

mod common;

use boundpool::{BuildError, WorkerPool};
use common::{panic_message, quiet_panics, with_timeout, PATIENCE};
use std::io::Read;
use std::panic::{self, AssertUnwindSafe};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Instant;

/// The environment variables naming the child's case and, for a closure case, its size in KiB.
const CASE_VAR: &str = "BOUNDPOOL_NO_ABORT_CASE";
const KIB_VAR: &str = "BOUNDPOOL_NO_ABORT_KIB";
/// The hidden test that runs one case in the child.
const HELPER: &str = "child_case";
/// What the child prints to stderr once its case passed (a filter matching nothing prints none).
const PASSED: &str = "no_abort child passed: ";
/// The workers' stack, and the stack of the thread that builds the big closure (so that only the
/// worker's stack is in question).
const WORKER_STACK: usize = 2 << 20;
const CALLER_STACK: usize = 64 << 20;
/// The closure size the pool must run on a 2 MiB worker stack, through every path.
const BIG_KIB: usize = 1536;
/// The closure sizes `largest_closure_per_path` bisects over (the arms of `run_trial`).
const STEP_KIB: usize = 64;
const TRIALS: usize = 32;

// ------------------------------------------------------------------ the parent's side

/// Why a child's case did not pass: whether its stack overflowed, and a report of its end.
struct Failure {
    overflowed: bool,
    report: String,
}

/// Runs case `case` (with a closure of `kib` KiB, for a path) in a child process: this binary
/// re-run on the hidden test `HELPER`. Kills the child and panics past twice `PATIENCE`.
fn run_child(case: &str, kib: Option<usize>) -> Result<(), Failure> {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut cmd = Command::new(exe);
    cmd.args(["--ignored", "--exact", HELPER, "--nocapture"])
        .env(CASE_VAR, case)
        .env("RUST_BACKTRACE", "0") // the failure's message, not pages of frames
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(kib) = kib {
        cmd.env(KIB_VAR, kib.to_string());
    }
    let mut child = cmd.spawn().expect("re-run the test binary as a child");
    // The pipe reaches end-of-file when the child exits: wait for that, not for a timer.
    let mut pipe = child.stderr.take().expect("piped stderr");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        let _ = tx.send(String::from_utf8_lossy(&bytes).into_owned());
    });
    let Ok(stderr) = rx.recv_timeout(2 * PATIENCE) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "case {case} ({kib:?} KiB): the child ran past {:?}",
            2 * PATIENCE
        );
    };
    let status = child.wait().expect("reap the child");
    if status.success() && stderr.contains(&format!("{PASSED}{case}")) {
        return Ok(());
    }
    let start = stderr.char_indices().rev().nth(3000).map_or(0, |(i, _)| i);
    Err(Failure {
        overflowed: stderr.contains("has overflowed its stack"),
        report: format!(
            "case {case} ({kib:?} KiB): the child ended with {status}; its stderr ends:\n{}",
            &stderr[start..]
        ),
    })
}

/// Runs `case` in a child process and fails unless it passed.
fn assert_child_passes(case: &str, kib: Option<usize>) {
    if let Err(failure) = run_child(case, kib) {
        panic!("{}", failure.report);
    }
}

// ------------------------------------------------------------------ the child's side

#[test]
#[ignore = "helper of the other tests: runs one case in a child process"]
fn child_case() {
    let Ok(case) = std::env::var(CASE_VAR) else {
        return;
    };
    let kib = std::env::var(KIB_VAR)
        .ok()
        .map(|k| k.parse::<usize>().expect("a size in KiB"));
    let c = case.clone();
    with_timeout("the child's case", move || run_case(&c, kib));
    eprintln!("{PASSED}{case}");
}

fn run_case(case: &str, kib: Option<usize>) {
    if let Some(&path) = PATHS.iter().find(|&&p| p == case) {
        let kib = kib.unwrap_or(BIG_KIB);
        let caller = thread::Builder::new()
            .name("big-closure caller".into())
            .stack_size(CALLER_STACK)
            .spawn(move || run_trial(kib, path))
            .expect("spawn the 64 MiB caller thread");
        if let Err(payload) = caller.join() {
            panic::resume_unwind(payload);
        }
        return;
    }
    if let Some(&(_, workers, capacity, workers_too)) = BUILDS.iter().find(|b| b.0 == case) {
        impossible_build(workers, capacity, workers_too);
        return;
    }
    match case {
        "scope_drop_panic" => scope_body_panic_over_a_payload_whose_drop_panics(),
        "new_capacity_max" => new_with_an_impossible_capacity_panics_naming_it(),
        other => panic!("no such case: {other}"),
    }
}

// ------------------------------------------------------------------ a. big closures

/// The paths a job can take into the pool (the case names of the big-closure trials).
const PATHS: [&str; 4] = ["submit", "spawn", "scope_submit", "scope_spawn"];

/// Asserts that the closure itself holds at least `bytes` bytes (captured by value, not boxed).
fn assert_big<F>(job: &F, bytes: usize) {
    let size = std::mem::size_of_val(job);
    assert!(size >= bytes, "the closure is {size} bytes, not >= {bytes}");
}

fn sum(buf: &[u8]) -> u64 {
    buf.iter().map(|&b| u64::from(b)).sum()
}

/// Runs a job whose closure holds a `BYTES`-byte buffer by value through `path` on a 1-worker
/// pool with 2 MiB stacks, and checks the sum the job computed. Called on a 64 MiB thread.
fn trial<const BYTES: usize>(path: &str) {
    let mut buf = [0u8; BYTES];
    for (i, b) in buf.iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    let want = sum(&buf);
    let pool = WorkerPool::builder()
        .workers(1)
        .stack_size(WORKER_STACK)
        .build()
        .expect("build a 1-worker pool with 2 MiB stacks");
    // `buf` is `Copy`: each `move` closure holds a copy of all of it.
    let got = match path {
        "submit" => {
            let (tx, rx) = mpsc::channel();
            let job = move || tx.send(sum(&buf)).unwrap();
            assert_big(&job, BYTES);
            pool.submit(job);
            rx.recv_timeout(PATIENCE).expect("the submitted job ran")
        }
        "spawn" => {
            let job = move || sum(&buf);
            assert_big(&job, BYTES);
            pool.spawn(job).join().expect("the spawned job ran")
        }
        "scope_submit" => {
            let (tx, rx) = mpsc::channel();
            let job = move || tx.send(sum(&buf)).unwrap();
            assert_big(&job, BYTES);
            pool.scope(|s| s.submit(job));
            rx.recv_timeout(PATIENCE).expect("the scoped job ran")
        }
        "scope_spawn" => {
            let job = move || sum(&buf);
            assert_big(&job, BYTES);
            pool.scope(|s| s.spawn(job).join().expect("the scoped spawned job ran"))
        }
        other => panic!("no such path: {other}"),
    };
    assert_eq!(
        got, want,
        "{path}: the job saw its {BYTES}-byte capture intact"
    );
    pool.shutdown();
}

/// Dispatches a size in KiB to its compile-time instance of `trial`.
macro_rules! trials {
    ($kib:expr, $path:expr; $($k:literal)*) => {
        match $kib {
            $($k => trial::<{ $k * 1024 }>($path),)*
            other => panic!("no trial for {other} KiB"),
        }
    };
}

fn run_trial(kib: usize, path: &str) {
    trials!(kib, path;
        64 128 192 256 320 384 448 512 576 640 704 768 832 896 960 1024
        1088 1152 1216 1280 1344 1408 1472 1536 1600 1664 1728 1792 1856 1920 1984 2048)
}

#[test]
fn a_1_5_mib_closure_runs_through_submit() {
    assert_child_passes(PATHS[0], Some(BIG_KIB));
}

#[test]
fn a_1_5_mib_closure_runs_through_spawn_and_join() {
    assert_child_passes(PATHS[1], Some(BIG_KIB));
}

#[test]
fn a_1_5_mib_closure_runs_through_scope_submit() {
    assert_child_passes(PATHS[2], Some(BIG_KIB));
}

#[test]
fn a_1_5_mib_closure_runs_through_scope_spawn_and_join() {
    assert_child_passes(PATHS[3], Some(BIG_KIB));
}

#[test]
#[ignore = "measurement: prints the largest closure each path runs on a 2 MiB worker stack"]
fn largest_closure_per_path() {
    let sizes: Vec<usize> = (1..=TRIALS).map(|i| i * STEP_KIB).collect();
    let mut rows = Vec::new();
    for path in PATHS {
        // Invariant: sizes[..lo] ran, sizes[hi..] overflowed.
        let (mut lo, mut hi) = (0, sizes.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            match run_child(path, Some(sizes[mid])) {
                Ok(()) => lo = mid + 1,
                Err(failure) if failure.overflowed => hi = mid,
                Err(failure) => panic!("neither ran nor overflowed: {}", failure.report),
            }
        }
        rows.push((path, lo));
    }
    println!("largest closure run on a 2 MiB worker stack (64 KiB steps, 64..=2048 KiB):");
    println!("{:<14} {:>12}", "path", "largest KiB");
    for &(path, ran) in &rows {
        let largest = match ran {
            0 => "< 64".to_string(),
            n if n == sizes.len() => format!(">= {}", sizes[n - 1]),
            n => sizes[n - 1].to_string(),
        };
        println!("{path:<14} {largest:>12}");
    }
    let none = rows.iter().filter(|r| r.1 == 0).map(|r| r.0);
    let none: Vec<&str> = none.collect();
    assert!(none.is_empty(), "{none:?} cannot run even a 64 KiB closure");
}

// ------------------------------------------------------------------ c. a panicking payload drop

/// A panic payload whose `Drop` panics.
struct DropPanics;

impl Drop for DropPanics {
    fn drop(&mut self) {
        panic!("no_abort: the payload's drop panicked");
    }
}

/// Waits (up to `PATIENCE`) until `done` holds; polls, yielding between looks.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {PATIENCE:?}");
        thread::yield_now();
    }
}

fn scope_body_panic_over_a_payload_whose_drop_panics() {
    quiet_panics("no_abort:");
    let pool = WorkerPool::new(2, 4);
    let out = panic::catch_unwind(AssertUnwindSafe(|| {
        pool.scope(|s| {
            let (tx, rx) = mpsc::channel();
            s.submit(move || {
                tx.send(()).unwrap();
                panic::panic_any(DropPanics)
            });
            rx.recv_timeout(PATIENCE).expect("the scoped job started");
            // Once it counts as completed, the scope holds its unjoined payload.
            wait_until("the scoped job finishing", || pool.stats().completed >= 1);
            panic!("no_abort: body");
        })
    }));
    let payload = out.expect_err("scope re-raises the body's panic");
    assert_eq!(
        panic_message(&*payload),
        Some("no_abort: body"),
        "the body's payload comes out, not the job's"
    );
    let value = pool.spawn(|| 7u8).join().expect("the pool still runs jobs");
    assert_eq!(value, 7, "the pool still runs jobs after the scope");
    assert_eq!(
        pool.stats().panicked,
        1,
        "the scoped job's panic is counted"
    );
}

#[test]
fn a_scope_body_panic_over_a_payload_whose_drop_panics_does_not_abort() {
    assert_child_passes("scope_drop_panic", None);
}

// ------------------------------------------------------------------ d. impossible sizes

/// The impossible builds: (case, workers, capacity, whether `TooManyWorkers` is right too: a
/// worker count whose default capacity, 2 x workers, is also impossible).
const BUILDS: [(&str, usize, Option<usize>, bool); 4] = [
    ("build_workers_max", usize::MAX, None, true),
    ("build_workers_2_30", 1 << 30, None, true),
    ("build_capacity_max", 1, Some(usize::MAX), false),
    ("build_capacity_2_42", 1, Some(1 << 42), false),
];

/// Builds a pool that cannot be made: `build` must return `CapacityTooLarge` (or, where
/// `workers_too`, `TooManyWorkers`), neither panic nor abort; the error must behave as one.
fn impossible_build(workers: usize, capacity: Option<usize>, workers_too: bool) {
    let what = format!("workers({workers}), capacity {capacity:?}");
    let build = || {
        let builder = WorkerPool::builder().workers(workers);
        match capacity {
            Some(c) => builder.capacity(c),
            None => builder,
        }
        .build()
    };
    let err = match panic::catch_unwind(build) {
        Ok(Ok(pool)) => {
            std::mem::forget(pool); // dropping it would join every worker
            panic!("{what}: build succeeded; expected an error");
        }
        Ok(Err(err)) => err,
        Err(payload) => panic!(
            "{what}: build panicked ({:?}) instead of returning an error",
            panic_message(&*payload)
        ),
    };
    let fits = matches!(err, BuildError::CapacityTooLarge)
        || (workers_too && matches!(err, BuildError::TooManyWorkers));
    let or = [" or TooManyWorkers", ""][usize::from(!workers_too)];
    assert!(
        fits,
        "{what}: got {err:?} ({err}), expected CapacityTooLarge{or}"
    );
    let shown = err.to_string();
    assert!(!shown.is_empty(), "{what}: {err:?} displays as nothing");
    let boxed: Box<dyn std::error::Error + Send + Sync> = err.into();
    assert_eq!(
        boxed.to_string(),
        shown,
        "{what}: a Box<dyn Error> shows it"
    );
    assert!(boxed.is::<BuildError>(), "{what}: downcasts back");
}

fn new_with_an_impossible_capacity_panics_naming_it() {
    quiet_panics("capacity");
    let payload = match panic::catch_unwind(|| WorkerPool::new(1, usize::MAX)) {
        Ok(pool) => {
            std::mem::forget(pool);
            panic!("WorkerPool::new(1, usize::MAX) returned a pool");
        }
        Err(payload) => payload,
    };
    let message = panic_message(&*payload).unwrap_or("").to_lowercase();
    assert!(
        message.contains("capacity"),
        "WorkerPool::new(1, usize::MAX) panicked without naming the capacity: {message:?}"
    );
}

#[test]
fn build_with_usize_max_workers_is_an_error() {
    assert_child_passes("build_workers_max", None);
}

#[test]
fn build_with_a_billion_workers_is_an_error() {
    assert_child_passes("build_workers_2_30", None);
}

#[test]
fn build_with_usize_max_capacity_is_capacity_too_large() {
    assert_child_passes("build_capacity_max", None);
}

#[test]
fn build_with_a_2_pow_42_capacity_is_capacity_too_large() {
    assert_child_passes("build_capacity_2_42", None);
}

#[test]
fn new_with_usize_max_capacity_panics_naming_the_capacity() {
    assert_child_passes("new_capacity_max", None);
}

// e. Hook and handler panics not counted in `Stats::panicked`: already asserted by
// tests/panics.rs (panicking_hooks_handler_and_jobs_leave_both_workers_alive: exactly 20) and
// tests/bad_input.rs (panicking_hooks_and_handler_never_kill_a_worker: exactly 6).
