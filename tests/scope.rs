//! Scoped jobs borrow from the caller's stack; `scope` returns only after all of them finished.
mod common;

use boundpool::WorkerPool;
use common::with_timeout;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

#[test]
fn a_thousand_jobs_fill_a_vec_by_index_through_borrowed_state() {
    let pool = WorkerPool::new(4, 16);
    let mut out = vec![0usize; 1_000];
    let writes = AtomicUsize::new(0);
    let log = Mutex::new(Vec::new());
    pool.scope(|s| {
        for (i, slot) in out.iter_mut().enumerate() {
            let (writes, log) = (&writes, &log);
            s.submit(move || {
                *slot = i * 3;
                writes.fetch_add(1, Ordering::Relaxed);
                if i % 100 == 0 {
                    log.lock().unwrap().push(i);
                }
            });
        }
    });
    assert!(
        out.iter().enumerate().all(|(i, &v)| v == i * 3),
        "every slot written"
    );
    assert_eq!(writes.into_inner(), 1_000, "every job ran");
    let mut log = log.into_inner().unwrap();
    log.sort_unstable();
    assert_eq!(
        log,
        (0..10).map(|i| i * 100).collect::<Vec<_>>(),
        "borrowed mutex"
    );
    assert_eq!(pool.stats().completed, 1_000, "scoped jobs are counted");
}

#[test]
fn many_jobs_read_one_borrowed_slice_and_return_values() {
    let pool = WorkerPool::new(3, 8);
    let data: Vec<u8> = (0..=255).cycle().take(1 << 16).collect();
    let bytes: &[u8] = &data;
    let total: u64 = pool.scope(|s| {
        let handles: Vec<_> = bytes
            .chunks(1024)
            .map(|chunk| s.spawn(move || chunk.iter().map(|&b| u64::from(b)).sum::<u64>()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(
        total,
        bytes.iter().map(|&b| u64::from(b)).sum::<u64>(),
        "sum"
    );
}

#[test]
fn scoped_jobs_can_spawn_more_scoped_jobs() {
    let pool = WorkerPool::new(2, 4);
    let count = AtomicUsize::new(0);
    pool.scope(|s| {
        for _ in 0..10 {
            s.submit(|| {
                for _ in 0..10 {
                    s.submit(|| {
                        count.fetch_add(1, Ordering::Relaxed);
                    });
                }
            });
        }
    });
    assert_eq!(
        count.into_inner(),
        100,
        "nested scoped jobs all ran before scope returned"
    );
}

#[test]
fn a_panicking_body_waits_for_its_jobs_before_the_panic_surfaces() {
    common::quiet_panics("deliberate");
    let pool = WorkerPool::new(2, 64);
    let done = AtomicUsize::new(0);
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        pool.scope(|s| {
            for _ in 0..50 {
                s.submit(|| {
                    std::thread::yield_now();
                    done.fetch_add(1, Ordering::SeqCst);
                });
            }
            panic!("deliberate body panic");
        })
    }));
    let payload = result.expect_err("the body's panic is re-raised");
    assert_eq!(
        payload.downcast_ref::<&str>(),
        Some(&"deliberate body panic"),
        "intact"
    );
    assert_eq!(
        done.load(Ordering::SeqCst),
        50,
        "all jobs finished before the panic surfaced"
    );
}

#[test]
fn join_gives_values_or_the_panic() {
    common::quiet_panics("deliberate");
    let pool = WorkerPool::new(2, 8);
    let local = String::from("borrowed");
    let (ok, err) = pool.scope(|s| {
        let ok = s.spawn(|| local.len());
        let bad = s.spawn(|| -> usize { panic!("deliberate joined") });
        (ok.join(), bad.join())
    });
    assert_eq!(ok.unwrap(), 8, "value");
    assert_eq!(
        err.unwrap_err().panic_message(),
        Some("deliberate joined"),
        "payload"
    );
}

#[test]
fn an_unjoined_panic_makes_scope_panic_after_all_jobs_finished() {
    common::quiet_panics("deliberate");
    let pool = WorkerPool::new(2, 64);
    let done = AtomicUsize::new(0);
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        pool.scope(|s| {
            s.submit(|| panic!("deliberate unjoined"));
            for _ in 0..30 {
                s.submit(|| {
                    std::thread::yield_now();
                    done.fetch_add(1, Ordering::SeqCst);
                });
            }
            "body value"
        })
    }));
    let payload = result.expect_err("scope re-raises the job's panic");
    assert_eq!(
        payload.downcast_ref::<&str>(),
        Some(&"deliberate unjoined"),
        "intact"
    );
    assert_eq!(
        done.load(Ordering::SeqCst),
        30,
        "the other jobs all finished first"
    );
    assert_eq!(pool.stats().panicked, 1, "counted");
}

#[test]
fn scope_returns_the_body_value_and_works_with_capacity_zero() {
    with_timeout("scope at capacity 0", || {
        let pool = WorkerPool::new(1, 0);
        let v = [1, 2, 3];
        let n = pool.scope(|s| {
            let h = s.spawn(|| v.iter().sum::<i32>());
            h.join().unwrap() * 2
        });
        assert_eq!(n, 12, "body value");
    });
}
