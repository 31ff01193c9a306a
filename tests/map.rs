//! `WorkerPool::map`: results in input order, lazy, never more than `workers + capacity` items
//! ahead of the consumer, panics surfacing at their item, and a `Map` that can be dropped
//! half-consumed.

mod common;

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use boundpool::WorkerPool;
use common::{hold_workers, mix, panic_message, spin, with_timeout, Gate};

/// An input iterator over `0..n` that counts how often it was advanced.
fn counted(n: u64) -> (Arc<AtomicUsize>, impl Iterator<Item = u64> + Send + 'static) {
    let pulled = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&pulled);
    let iter = (0..n).inspect(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    (pulled, iter)
}

#[test]
fn results_come_out_in_input_order_with_uneven_work() {
    with_timeout("ordered map over 100,000 items", || {
        const N: u64 = 100_000;
        let pool = WorkerPool::new(4, 8);
        let mut count = 0u64;
        for (i, (index, value)) in pool
            .map(0..N, |i| {
                // 0 to 63 rounds: items finish out of order, results must not.
                spin(mix(i) % 64);
                (i, i * 3)
            })
            .enumerate()
        {
            assert_eq!(index, i as u64, "result {i} came out of order");
            assert_eq!(value, index * 3, "result {i} has the wrong value");
            count += 1;
        }
        assert_eq!(count, N, "one result per input item");
        assert!(
            pool.wait_idle_timeout(common::PATIENCE),
            "pool idle after the map"
        );
        assert_eq!(pool.stats().completed, N, "every item counted once");
    });
}

#[test]
fn results_keep_input_order_for_owned_values() {
    with_timeout("ordered map over strings", || {
        let pool = WorkerPool::new(2, 3);
        let words: Vec<String> = (0..2_000).map(|i| format!("word{i}")).collect();
        let expected: Vec<String> = words.iter().map(|w| w.to_uppercase()).collect();
        let upper: Vec<String> = pool
            .map(words, |w| {
                spin(mix(w.len() as u64) % 32);
                w.to_uppercase()
            })
            .collect();
        assert_eq!(upper, expected, "same items, same order");
    });
}

#[test]
fn map_is_lazy_on_an_infinite_input() {
    with_timeout("map over 0u64..", || {
        let pool = WorkerPool::new(2, 4);
        let pulled = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&pulled);
        let input = (0u64..).inspect(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        let mut map = pool.map(input, |n| n * n);
        assert_eq!(
            pulled.load(Ordering::SeqCst),
            0,
            "nothing is pulled before the first next()"
        );
        let first: Vec<u64> = map.by_ref().take(10).collect();
        assert_eq!(
            first,
            (0..10u64).map(|n| n * n).collect::<Vec<_>>(),
            "first ten squares"
        );
        let pulled_now = pulled.load(Ordering::SeqCst);
        assert!(
            pulled_now <= 10 + 2 + 4,
            "an infinite input was advanced only {pulled_now} times"
        );
        drop(map);
        assert!(
            pool.wait_idle_timeout(common::PATIENCE),
            "in-flight items finish after the drop"
        );
    });
}

#[test]
fn input_is_never_more_than_workers_plus_capacity_ahead() {
    for (workers, capacity) in [(1, 0), (1, 1), (2, 0), (2, 4), (3, 7), (4, 16)] {
        with_timeout("bounded map", move || {
            let pool = WorkerPool::new(workers, capacity);
            let bound = workers + capacity;
            let (pulled, input) = counted(3_000);
            let mut map = pool.map(input, |i| {
                spin(mix(i) % 200);
                i
            });
            let mut taken = 0usize;
            assert_eq!(pulled.load(Ordering::SeqCst), 0, "lazy until next()");
            for value in map.by_ref() {
                assert_eq!(value, taken as u64, "in order at {taken}");
                taken += 1;
                let p = pulled.load(Ordering::SeqCst);
                assert!(
                    p <= taken + bound,
                    "({workers}, {capacity}): pulled {p} after taking {taken}, bound {bound}"
                );
            }
            assert_eq!(taken, 3_000, "({workers}, {capacity}): every item came out");
            assert_eq!(
                pulled.load(Ordering::SeqCst),
                3_000,
                "each input item pulled once"
            );
        });
    }
}

#[test]
fn a_slow_consumer_keeps_the_window_full_but_bounded() {
    with_timeout("slow consumer", || {
        let pool = WorkerPool::new(2, 2);
        let (pulled, input) = counted(200);
        let mut map = pool.map(input, |i| i + 1);
        let mut taken = 0;
        for v in map.by_ref() {
            taken += 1;
            assert_eq!(v, taken as u64, "value {taken}");
            // The consumer dawdles: the workers are free to run ahead, but only so far.
            spin(5_000);
            let p = pulled.load(Ordering::SeqCst);
            assert!(p <= taken + 4, "pulled {p} after taking {taken}");
        }
        assert_eq!(taken, 200, "all items");
    });
}

#[test]
fn a_panic_surfaces_at_its_item_on_the_consumer_thread_and_fuses_the_map() {
    with_timeout("map with a panicking item", || {
        const K: u64 = 37;
        let pool = WorkerPool::new(3, 5);
        let consumer = thread::current().id();
        let mut map = pool.map(0..100u64, |i| {
            if i == K {
                panic!("item {i} failed");
            }
            i * 10
        });
        let mut got = Vec::new();
        let payload = loop {
            match panic::catch_unwind(AssertUnwindSafe(|| map.next())) {
                Ok(Some(v)) => got.push(v),
                Ok(None) => panic!("the map ended without surfacing the panic"),
                Err(payload) => break payload,
            }
        };
        assert_eq!(
            thread::current().id(),
            consumer,
            "caught on the consumer thread"
        );
        assert_eq!(
            got,
            (0..K).map(|i| i * 10).collect::<Vec<_>>(),
            "every item before {K} came out, in order"
        );
        assert_eq!(
            panic_message(&*payload),
            Some("item 37 failed"),
            "payload intact"
        );
        assert_eq!(map.next(), None, "fused after the panic");
        assert_eq!(map.next(), None, "still fused");
        drop(map);
        assert!(
            pool.wait_idle_timeout(common::PATIENCE),
            "in-flight items drain"
        );
        assert_eq!(pool.stats().panicked, 1, "the panic was counted once");
        let again: Vec<u64> = pool.map(0..5u64, |i| i + 1).collect();
        assert_eq!(again, [1, 2, 3, 4, 5], "the pool maps fine afterwards");
    });
}

#[test]
fn dropping_a_half_consumed_map_does_not_block_and_in_flight_items_run_once() {
    with_timeout("dropping a half-consumed map", || {
        const N: usize = 1_000;
        let (workers, capacity) = (2, 6);
        let pool = WorkerPool::new(workers, capacity);
        let runs: Arc<Vec<AtomicUsize>> = Arc::new((0..N).map(|_| AtomicUsize::new(0)).collect());
        let gate = Arc::new(Gate::new());
        let (pulled, input) = counted(N as u64);
        let mut map = {
            let runs = Arc::clone(&runs);
            let gate = Arc::clone(&gate);
            pool.map(input, move |i| {
                if i >= 3 {
                    // Items past the first three hold the workers until the map is gone.
                    gate.wait();
                }
                runs[i as usize].fetch_add(1, Ordering::SeqCst);
                i
            })
        };
        // The first three come out although the workers may both be parked at the gate: the
        // consumer runs a still-queued front item itself.
        for expected in 0..3u64 {
            assert_eq!(map.next(), Some(expected), "item {expected}");
        }
        let pulled_at_drop = pulled.load(Ordering::SeqCst);
        assert!(
            pulled_at_drop <= 3 + workers + capacity,
            "pulled {pulled_at_drop} before the drop"
        );
        // With the gate closed, a drop that waited for the in-flight items would hang here.
        drop(map);
        assert!(!gate.is_open(), "the drop returned with items still held");
        gate.open();
        assert!(
            pool.wait_idle_timeout(common::PATIENCE),
            "in-flight items finish after the drop"
        );
        let pulled = pulled.load(Ordering::SeqCst);
        assert_eq!(pulled, pulled_at_drop, "nothing pulled after the drop");
        let ran: Vec<usize> = (0..N)
            .filter(|&i| runs[i].load(Ordering::SeqCst) > 0)
            .collect();
        for (i, r) in runs.iter().enumerate() {
            let r = r.load(Ordering::SeqCst);
            assert!(r <= 1, "item {i} ran {r} times");
            assert!(r == 0 || i < pulled, "item {i} ran but was never pulled");
        }
        assert!(
            (0..3).all(|i| runs[i].load(Ordering::SeqCst) == 1),
            "the consumed items ran"
        );
        // Only the window's newest item can be waiting unsent when the map drops; every item
        // handed to the queue runs.
        assert!(
            ran.len() + 1 >= pulled,
            "{} of {pulled} pulled items ran",
            ran.len()
        );
        assert_eq!(
            pool.spawn(|| "alive").join().unwrap(),
            "alive",
            "the pool is healthy"
        );
    });
}

#[test]
fn empty_input_gives_empty_output() {
    with_timeout("map over nothing", || {
        let pool = WorkerPool::new(2, 2);
        let mut map = pool.map(Vec::<u32>::new(), |x| x);
        assert_eq!(map.next(), None, "no items");
        assert_eq!(map.next(), None, "fused");
        assert_eq!(map.size_hint(), (0, Some(0)), "an empty, finished map");
        drop(map);
        assert_eq!(pool.stats().completed, 0, "nothing ran");
    });
}

#[test]
fn works_with_one_worker_and_a_rendezvous_queue() {
    with_timeout("map on WorkerPool::new(1, 0)", || {
        let pool = WorkerPool::new(1, 0);
        let (pulled, input) = counted(2_000);
        let mut taken = 0u64;
        for v in pool.map(input, |i| i ^ 0x55) {
            assert_eq!(v, taken ^ 0x55, "item {taken}");
            taken += 1;
            let p = pulled.load(Ordering::SeqCst) as u64;
            assert!(p <= taken + 1, "pulled {p} after {taken} with a bound of 1");
        }
        assert_eq!(taken, 2_000, "all items");
    });
}

#[test]
fn a_consumer_inside_a_job_runs_the_front_item_when_every_worker_is_blocked() {
    with_timeout(
        "map inside a job while the other workers are blocked",
        || {
            let pool = Arc::new(WorkerPool::new(3, 4));
            let (gate, blockers) = hold_workers(&pool, 2);
            let threads = Arc::new(Mutex::new(Vec::new()));
            let inner = Arc::clone(&pool);
            let recorded = Arc::clone(&threads);
            // The consumer occupies the third worker: nobody but the consumer can run an item.
            let consumer = pool.spawn(move || {
                let out: Vec<u32> = inner
                    .map(0..50u32, move |i| {
                        recorded.lock().unwrap().push(thread::current().id());
                        i * 2
                    })
                    .collect();
                (out, thread::current().id())
            });
            let (out, consumer) = consumer.join().expect("the consumer job finished");
            assert_eq!(
                out,
                (0..50).map(|i| i * 2).collect::<Vec<_>>(),
                "all results, in order"
            );
            gate.open();
            for b in blockers {
                b.join().expect("blockers finish once released");
            }
            let threads = threads.lock().unwrap();
            assert!(
                threads.contains(&consumer),
                "the consumer ran items itself while the workers were blocked"
            );
        },
    );
}

#[test]
fn a_consumer_outside_the_pool_never_runs_an_item() {
    with_timeout("map from main while the workers are held", || {
        let pool = Arc::new(WorkerPool::new(2, 4));
        let (gate, blockers) = hold_workers(&pool, 2);
        // Opens the gate once the map has filled the queue: until then nothing can run, and the
        // consumer must wait instead of running the front item itself.
        let opener = {
            let pool = Arc::clone(&pool);
            let gate = gate.clone();
            thread::spawn(move || {
                let deadline = std::time::Instant::now() + common::PATIENCE;
                while pool.stats().queued < 4 && std::time::Instant::now() < deadline {
                    thread::yield_now();
                }
                gate.open();
            })
        };
        let names = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&names);
        let out: Vec<u32> = pool
            .map(0..50u32, move |i| {
                let name = thread::current().name().map(str::to_owned);
                recorded.lock().unwrap().push(name);
                i * 2
            })
            .collect();
        opener.join().expect("the opener finished");
        for b in blockers {
            b.join().expect("blockers finish once released");
        }
        assert_eq!(out, (0..50).map(|i| i * 2).collect::<Vec<_>>());
        let names = names.lock().unwrap();
        assert_eq!(names.len(), 50, "every item ran once");
        assert!(
            names
                .iter()
                .all(|n| n.as_deref().is_some_and(|n| n.starts_with("boundpool-"))),
            "every item ran on a worker: {names:?}"
        );
    });
}
