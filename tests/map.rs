//! `map`: ordered, lazy, bounded; panics surface at their item; dropping never blocks.
mod common;

use boundpool::WorkerPool;
use common::with_timeout;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A deterministic amount of spinning for item `i` (xorshift), so items finish out of order.
fn busy(i: u64) -> u64 {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    for _ in 0..(x % 64) {
        std::hint::spin_loop();
    }
    x
}

#[test]
fn a_hundred_thousand_results_come_out_in_input_order() {
    let pool = WorkerPool::new(4, 32);
    let mut expected = 0u64;
    for (k, (i, _)) in pool.map(0..100_000u64, |i| (i, busy(i))).enumerate() {
        assert_eq!(i, expected, "result {k} out of order");
        expected += 1;
    }
    assert_eq!(expected, 100_000, "all items");
}

#[test]
fn lazy_on_an_infinite_input() {
    with_timeout("map over 0..", || {
        let pool = WorkerPool::new(2, 4);
        let first: Vec<u64> = pool.map(0u64.., |i| i * 3).take(10).collect();
        assert_eq!(
            first,
            (0..10).map(|i| i * 3).collect::<Vec<_>>(),
            "first ten"
        );
    });
}

/// An input that counts how often it was advanced.
struct Counted {
    next: u64,
    pulls: Arc<AtomicUsize>,
}

impl Iterator for Counted {
    type Item = u64;
    fn next(&mut self) -> Option<u64> {
        self.pulls.fetch_add(1, Ordering::SeqCst);
        self.next += 1;
        Some(self.next - 1)
    }
}

#[test]
fn never_more_than_workers_plus_capacity_ahead() {
    for (workers, capacity) in [(1, 0), (2, 3), (4, 16)] {
        let pool = WorkerPool::new(workers, capacity);
        let pulls = Arc::new(AtomicUsize::new(0));
        let input = Counted {
            next: 0,
            pulls: Arc::clone(&pulls),
        };
        let mut map = pool.map(input, busy);
        assert_eq!(
            pulls.load(Ordering::SeqCst),
            0,
            "nothing pulled before next()"
        );
        for taken in 1..=500 {
            map.next().expect("infinite input");
            let pulled = pulls.load(Ordering::SeqCst);
            assert!(
                pulled <= taken + workers + capacity,
                "{pulled} pulled after {taken} taken ({workers} workers, capacity {capacity})"
            );
        }
    }
}

#[test]
fn a_panic_for_item_k_surfaces_at_item_k_then_the_map_is_fused() {
    common::quiet_panics("deliberate");
    let pool = WorkerPool::new(2, 4);
    let mut map = pool.map(0..100u32, |i| {
        if i == 37 {
            panic!("deliberate item {i}");
        }
        i
    });
    for k in 0..37 {
        assert_eq!(map.next(), Some(k), "items before the panic");
    }
    let payload = panic::catch_unwind(AssertUnwindSafe(|| map.next()))
        .expect_err("the 38th next() resumes the panic");
    assert_eq!(
        payload.downcast_ref::<String>().map(String::as_str),
        Some("deliberate item 37"),
        "payload intact"
    );
    assert_eq!(map.next(), None, "fused after the panic");
    assert_eq!(map.next(), None, "still fused");
}

#[test]
fn dropping_a_half_consumed_map_does_not_block_and_the_pool_stays_healthy() {
    with_timeout("dropping a map", || {
        let pool = WorkerPool::new(2, 8);
        let runs: Arc<Vec<AtomicUsize>> =
            Arc::new((0..1_000).map(|_| AtomicUsize::new(0)).collect());
        let r = Arc::clone(&runs);
        let mut map = pool.map(0..1_000usize, move |i| {
            r[i].fetch_add(1, Ordering::SeqCst);
            busy(i as u64);
            i
        });
        for k in 0..100 {
            assert_eq!(map.next(), Some(k), "in order");
        }
        drop(map);
        pool.wait_idle();
        let ran: usize = runs.iter().map(|r| r.load(Ordering::SeqCst)).sum();
        assert!(
            runs.iter().all(|r| r.load(Ordering::SeqCst) <= 1),
            "no item ran twice"
        );
        assert!(
            (100..=100 + 2 + 8).contains(&ran),
            "{ran} items ran: taken + in flight"
        );
        assert_eq!(pool.spawn(|| 5).join().unwrap(), 5, "the pool still works");
    });
}

#[test]
fn empty_input_and_capacity_zero() {
    let pool = WorkerPool::new(1, 0);
    assert_eq!(
        pool.map(Vec::<u8>::new(), |b| b).count(),
        0,
        "empty in, empty out"
    );
    let out: Vec<u32> = pool.map(0..50u32, |i| i + 1).collect();
    assert_eq!(out, (1..=50).collect::<Vec<_>>(), "capacity 0");
}
