//! Building: every `Builder` option takes effect, and bad configurations are errors.
mod common;

use boundpool::{BuildError, Builder, WorkerPool};
use common::{with_timeout, PATIENCE};
use std::error::Error;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};

#[test]
fn every_option_takes_effect() {
    with_timeout("every option takes effect", || {
        let starts = Arc::new(AtomicUsize::new(0));
        let stops = Arc::new(AtomicUsize::new(0));
        let (s1, s2) = (Arc::clone(&starts), Arc::clone(&stops));
        let pool = WorkerPool::builder()
            .workers(3)
            .capacity(7)
            .thread_name("etl")
            .stack_size(8 << 20)
            .on_thread_start(move || {
                s1.fetch_add(1, Ordering::SeqCst);
            })
            .on_thread_stop(move || {
                s2.fetch_add(1, Ordering::SeqCst);
            })
            .build()
            .unwrap();
        assert_eq!((pool.workers(), pool.capacity()), (3, 7), "shape");
        let (tx, rx) = mpsc::channel();
        pool.submit(move || {
            // 4 MiB on the stack: more than a default 2 MiB thread stack holds.
            let big = [1u8; 4 << 20];
            let sum: u64 = std::hint::black_box(&big)
                .iter()
                .map(|&b| u64::from(b))
                .sum();
            tx.send((std::thread::current().name().map(str::to_owned), sum))
                .unwrap();
        });
        let (name, sum) = rx.recv_timeout(PATIENCE).unwrap();
        assert!(name.unwrap().starts_with("etl-"), "named by prefix");
        assert_eq!(sum, 4 << 20, "the big stack frame worked");
        pool.shutdown();
        assert_eq!(
            starts.load(Ordering::SeqCst),
            3,
            "start hook once per worker"
        );
        assert_eq!(stops.load(Ordering::SeqCst), 3, "stop hook once per worker");
    });
}

#[test]
fn defaults() {
    with_timeout("defaults", || {
        let pool = WorkerPool::builder().workers(5).build().unwrap();
        assert_eq!(pool.capacity(), 10, "capacity defaults to 2 x workers");
        let pool = WorkerPool::default();
        assert_eq!(pool.workers(), num_cpus(), "one worker per CPU");
        assert_eq!(pool.capacity(), 2 * num_cpus(), "capacity 2 x workers");
        let pool = Builder::new().capacity(0).build().unwrap();
        assert_eq!(pool.capacity(), 0, "capacity 0 is allowed");
    });
}

/// What the pool's default is documented to use (`available_parallelism` can differ from it,
/// e.g. under a fractional cgroup CPU quota).
fn num_cpus() -> usize {
    num_cpus::get()
}

#[test]
fn zero_workers_is_an_error() {
    let err = WorkerPool::builder().workers(0).build().unwrap_err();
    assert!(matches!(err, BuildError::ZeroWorkers), "got {err:?}");
    assert!(err.source().is_none(), "no source");
}

#[test]
#[should_panic(expected = "needs at least one worker")]
fn new_with_zero_workers_panics_with_a_clear_message() {
    let _ = WorkerPool::new(0, 4);
}

#[test]
fn a_nul_in_the_thread_name_is_an_error() {
    let err = WorkerPool::builder()
        .thread_name("bad\0name")
        .build()
        .unwrap_err();
    assert!(matches!(err, BuildError::InvalidThreadName), "got {err:?}");
}

#[test]
fn a_refused_thread_is_a_spawn_error_with_its_source() {
    with_timeout("a refused thread is a spawn error with its source", || {
        // 64 TiB stacks: the OS refuses to map them.
        match WorkerPool::builder().workers(2).stack_size(1 << 46).build() {
            Err(BuildError::Spawn(io)) => {
                let err = BuildError::Spawn(io);
                assert!(err.source().is_some(), "the io::Error is the source");
                assert_eq!(
                    err.to_string(),
                    "failed to spawn a worker thread",
                    "Display"
                );
            }
            Err(other) => panic!("unexpected error {other:?}"),
            Ok(pool) => {
                // An OS that overcommits even this: nothing to check, but the pool must work.
                assert_eq!(pool.spawn(|| 1).join().unwrap(), 1, "pool works");
            }
        }
    });
}

#[test]
fn builder_debug_shows_the_settings() {
    let b = WorkerPool::builder()
        .workers(2)
        .thread_name("x")
        .panic_handler(|_| ());
    let text = format!("{b:?}");
    assert!(text.contains("workers: Some(2)"), "{text}");
    assert!(text.contains("panic_handler: true"), "{text}");
}
