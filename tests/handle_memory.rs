//! A finished job's handle must not pin the pool's memory: after `shutdown`, a `JobHandle` kept
//! for later holds its result, not the pool's queue. Its own test binary, so that no other test
//! moves the resident set size while it is read.

mod common;

use boundpool::WorkerPool;
use common::{with_timeout, PATIENCE};

/// The most a finished handle may keep alive.
const LIMIT: u64 = 16 << 20;
/// A queue this long takes hundreds of MB (the old code kept ~310 MB through the handle).
const CAPACITY: usize = 10_000_000;

/// This process's resident set size in bytes, from /proc/self/status (Linux); `None` elsewhere.
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(kb * 1024)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1 << 20)
}

#[test]
fn a_finished_handle_does_not_pin_the_queue_after_shutdown() {
    if rss_bytes().is_none() {
        println!("note: no VmRSS in /proc/self/status here; test skipped");
        return;
    }
    with_timeout("a finished handle kept past shutdown", || {
        let before = rss_bytes().expect("VmRSS readable");
        let pool = WorkerPool::new(1, CAPACITY);
        let built = rss_bytes().expect("VmRSS readable");
        let handle = pool.spawn(|| 42u32);
        assert!(handle.wait_timeout(PATIENCE), "the job finished in time");
        pool.shutdown();
        let with_handle = rss_bytes().expect("VmRSS readable");
        // `join` consumes the handle: nothing of it is left for the second reading.
        let value = handle.join().expect("the job's result");
        let after = rss_bytes().expect("VmRSS readable");
        let kept = with_handle.saturating_sub(after);
        println!(
            "RSS: {:.1} MiB before build, {:.1} MiB built, {:.1} MiB after shutdown with the \
             handle, {:.1} MiB after join; the handle kept {:.1} MiB",
            mib(before),
            mib(built),
            mib(with_handle),
            mib(after),
            mib(kept)
        );
        assert_eq!(value, 42, "join after shutdown returns the job's value");
        assert!(
            kept < LIMIT,
            "the finished handle kept {:.1} MiB alive after shutdown (limit {:.1} MiB)",
            mib(kept),
            mib(LIMIT)
        );
    });
}
