//! `WorkerPool::scope`: scoped jobs borrow from the caller's stack, `scope` returns only after
//! every one of them has finished (also when its body panics), panics reach handles or the scope,
//! and scoped jobs can start more scoped jobs.

mod common;

use std::collections::HashSet;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;

use boundpool::{Scope, WorkerPool};
use common::{hold_workers, panic_message, with_timeout, Gate, PATIENCE};

#[test]
fn jobs_fill_a_borrowed_vec_by_index_through_a_mutex_and_atomics() {
    with_timeout("1,000 scoped jobs writing through borrows", || {
        let pool = WorkerPool::new(3, 16);
        let results = Mutex::new(vec![None::<u64>; 1_000]);
        let sum = AtomicU64::new(0);
        let runs = AtomicUsize::new(0);
        pool.scope(|s| {
            for i in 0..1_000u64 {
                let (results, sum, runs) = (&results, &sum, &runs);
                s.submit(move || {
                    let square = i * i;
                    let previous = results.lock().unwrap()[i as usize].replace(square);
                    assert!(previous.is_none(), "job {i} ran twice");
                    sum.fetch_add(square, Ordering::Relaxed);
                    runs.fetch_add(1, Ordering::Relaxed);
                });
            }
        });
        // No join, no wait_idle: `scope` returning is what guarantees all of this.
        let results = results.into_inner().unwrap();
        for (i, r) in results.iter().enumerate() {
            assert_eq!(*r, Some((i * i) as u64), "slot {i} after the scope");
        }
        assert_eq!(
            runs.into_inner(),
            1_000,
            "every scoped job ran exactly once"
        );
        let expected: u64 = (0..1_000u64).map(|i| i * i).sum();
        assert_eq!(sum.into_inner(), expected, "sum of squares");
    });
}

#[test]
fn many_jobs_read_one_borrowed_slice() {
    with_timeout("jobs reading a borrowed slice", || {
        let pool = WorkerPool::new(2, 8);
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let bytes: &[u8] = &data;
        let expected: u64 = bytes.iter().map(|&b| u64::from(b)).sum();
        let total = pool.scope(|s| {
            let handles: Vec<_> = bytes
                .chunks(10_000)
                .map(|chunk| s.spawn(move || chunk.iter().map(|&b| u64::from(b)).sum::<u64>()))
                .collect();
            assert_eq!(handles.len(), 100, "one job per chunk");
            handles
                .into_iter()
                .map(|h| h.join().expect("summing a chunk does not panic"))
                .sum::<u64>()
        });
        assert_eq!(total, expected, "parallel sum of the borrowed slice");
        // Every job also read the whole slice through the same borrow.
        let maxima = Mutex::new(Vec::new());
        pool.scope(|s| {
            for _ in 0..50 {
                let maxima = &maxima;
                s.submit(move || {
                    let max = bytes.iter().copied().max();
                    maxima.lock().unwrap().push(max);
                });
            }
        });
        let maxima = maxima.into_inner().unwrap();
        assert_eq!(maxima.len(), 50, "every reader ran");
        assert!(
            maxima.iter().all(|m| *m == Some(250)),
            "every reader saw the whole slice: {maxima:?}"
        );
    });
}

#[test]
fn jobs_write_through_mutable_chunks_and_elements() {
    with_timeout("jobs writing through &mut chunks", || {
        let pool = WorkerPool::new(2, 4);
        let mut grid = vec![0u32; 10_000];
        pool.scope(|s| {
            for (row, chunk) in grid.chunks_mut(100).enumerate() {
                s.submit(move || {
                    for (col, cell) in chunk.iter_mut().enumerate() {
                        *cell = (row * 100 + col) as u32;
                    }
                });
            }
        });
        assert!(
            grid.iter().enumerate().all(|(i, &v)| v == i as u32),
            "every chunk written by its job"
        );

        let mut words: Vec<String> = (0..500).map(|i| format!("w{i}")).collect();
        pool.scope(|s| {
            for word in words.iter_mut() {
                s.submit(move || word.push('!'));
            }
        });
        for (i, w) in words.iter().enumerate() {
            assert_eq!(*w, format!("w{i}!"), "element {i} mutated in place");
        }
    });
}

#[test]
fn scope_waits_for_every_job_before_reraising_the_bodys_panic() {
    with_timeout("a scope whose body panics", || {
        let pool = WorkerPool::new(2, 64);
        let gate = Gate::new();
        let done = AtomicUsize::new(0);
        let (panicking_tx, panicking) = mpsc::channel::<()>();
        let result = thread::scope(|t| {
            // Opens the gate only once the body is about to panic: until then no scoped job can
            // finish, so if `scope` did not wait, `done` would still be 0 when it unwinds.
            let gate = &gate;
            t.spawn(move || {
                panicking
                    .recv_timeout(PATIENCE)
                    .expect("the body announces its panic");
                gate.open();
            });
            panic::catch_unwind(AssertUnwindSafe(|| {
                pool.scope(|s| {
                    for _ in 0..40 {
                        let (gate, done) = (&gate, &done);
                        s.submit(move || {
                            gate.wait();
                            done.fetch_add(1, Ordering::SeqCst);
                        });
                    }
                    panicking_tx.send(()).unwrap();
                    panic!("the body gives up");
                })
            }))
        });
        let payload = result.expect_err("the body's panic is re-raised by scope");
        assert_eq!(
            panic_message(&*payload),
            Some("the body gives up"),
            "the body's payload comes back intact"
        );
        assert_eq!(
            done.load(Ordering::SeqCst),
            40,
            "every scoped job finished before the panic surfaced"
        );
        let stats = pool.stats();
        assert_eq!(
            (stats.completed, stats.active),
            (40, 0),
            "the pool counted the jobs"
        );
        assert_eq!(
            pool.spawn(|| 5).join().unwrap(),
            5,
            "pool healthy after the panic"
        );
    });
}

#[test]
fn join_returns_the_value_or_the_panic_and_a_joined_panic_is_not_reraised() {
    with_timeout("joining scoped handles", || {
        let pool = WorkerPool::new(2, 8);
        let label = String::from("label");
        let out = pool.scope(|s| {
            let ok = s.spawn(|| label.len() * 10);
            let bad = s.spawn(|| -> usize { panic!("scoped job failed: {}", label) });
            let ok = ok.join().expect("the ok job returns its value");
            let err = bad
                .join()
                .expect_err("the bad job's panic goes to its handle");
            assert!(err.is_panic(), "a panic, not a cancellation: {err:?}");
            assert_eq!(
                err.panic_message(),
                Some("scoped job failed: label"),
                "panic message intact"
            );
            ok
        });
        assert_eq!(
            out, 50,
            "scope returned normally: the joined panic is consumed"
        );
        assert_eq!(pool.stats().panicked, 1, "the panic was counted");
    });
}

#[test]
fn an_unjoined_panic_makes_scope_panic_after_every_job_finished() {
    with_timeout("a scope with an unjoined panic", || {
        let pool = WorkerPool::new(2, 64);
        let gate = Gate::new();
        let done = AtomicUsize::new(0);
        let result = panic::catch_unwind(AssertUnwindSafe(|| {
            pool.scope(|s| {
                for i in 0..30 {
                    let (gate, done) = (&gate, &done);
                    s.submit(move || {
                        if i == 0 {
                            // Let the others finish only once this panic is under way: if
                            // `scope` re-raised it early, `done` would be short. (It is the
                            // first job: a job queued behind jobs that wait for it could be
                            // left queued while every thread waits at the gate.)
                            gate.open();
                            panic!("scoped job {i} failed");
                        }
                        gate.wait();
                        done.fetch_add(1, Ordering::SeqCst);
                    });
                }
                "the body itself is fine"
            })
        }));
        let payload = result.expect_err("the unjoined panic is re-raised by scope");
        assert_eq!(
            panic_message(&*payload),
            Some("scoped job 0 failed"),
            "payload intact"
        );
        assert_eq!(
            done.load(Ordering::SeqCst),
            29,
            "every other job finished before the scope panicked"
        );
        let stats = pool.stats();
        assert_eq!(
            (stats.completed, stats.panicked),
            (30, 1),
            "all 30 jobs counted, one panicked"
        );
    });
}

#[test]
fn with_several_unjoined_panics_scope_raises_one_of_them_intact() {
    with_timeout("a scope with several unjoined panics", || {
        let pool = WorkerPool::new(2, 8);
        let result = panic::catch_unwind(AssertUnwindSafe(|| {
            pool.scope(|s| {
                for i in 0..10 {
                    s.submit(move || {
                        if i % 3 == 0 {
                            panic!("failure {i}");
                        }
                    });
                }
            })
        }));
        let payload = result.expect_err("scope panics");
        let message = panic_message(&*payload).expect("a string payload");
        assert!(
            ["failure 0", "failure 3", "failure 6", "failure 9"].contains(&message),
            "one of the jobs' own payloads, intact: {message:?}"
        );
        assert_eq!(pool.stats().panicked, 4, "every panic counted");
    });
}

#[test]
fn the_bodys_panic_wins_over_a_jobs_panic() {
    with_timeout("body and job both panic", || {
        let pool = WorkerPool::new(1, 4);
        let result = panic::catch_unwind(AssertUnwindSafe(|| {
            pool.scope(|s| {
                s.submit(|| panic!("the job's panic"));
                panic!("the body's panic");
            })
        }));
        let payload = result.expect_err("scope panics");
        assert_eq!(
            panic_message(&*payload),
            Some("the body's panic"),
            "the body's payload, as documented"
        );
    });
}

#[test]
fn scope_returns_the_bodys_value() {
    with_timeout("scope's return value", || {
        let pool = WorkerPool::new(2, 4);
        let names = ["ada", "grace", "edsger"];
        let (joined, count) = pool.scope(|s| {
            let handles: Vec<_> = names.iter().map(|n| s.spawn(move || n.len())).collect();
            let lens: Vec<usize> = handles.into_iter().map(|h| h.join().unwrap()).collect();
            (names.join("+"), lens.iter().sum::<usize>())
        });
        assert_eq!(joined, "ada+grace+edsger", "the body's first value");
        assert_eq!(count, 14, "the body's second value, computed from jobs");
        let empty: Vec<u8> = pool.scope(|_| Vec::new());
        assert!(empty.is_empty(), "a scope that spawns nothing returns too");
    });
}

/// Spawns three children per node down to `depth`, each through the shared `&Scope`.
fn grow<'scope>(s: &'scope Scope<'scope, '_>, nodes: &'scope AtomicUsize, depth: u32) {
    nodes.fetch_add(1, Ordering::SeqCst);
    if depth == 0 {
        return;
    }
    for _ in 0..3 {
        s.submit(move || grow(s, nodes, depth - 1));
    }
}

#[test]
fn scoped_jobs_spawn_more_scoped_jobs() {
    with_timeout("nested spawning inside a scope", || {
        let pool = WorkerPool::new(2, 4);
        let nodes = AtomicUsize::new(0);
        pool.scope(|s| grow(s, &nodes, 5));
        assert_eq!(
            nodes.into_inner(),
            1 + 3 + 9 + 27 + 81 + 243,
            "every node of the tree ran before scope returned"
        );

        // A scoped job that spawns a child and joins it, borrowing from the caller both times.
        let words = vec!["alpha", "beta", "gamma"];
        let lengths = pool.scope(|s| {
            let words = &words;
            let outer = s.spawn(move || {
                let inner = s.spawn(move || words.iter().map(|w| w.len()).sum::<usize>());
                inner.join().expect("the inner job") * 2
            });
            outer.join().expect("the outer job")
        });
        assert_eq!(lengths, 28, "inner and outer results combined");
    });
}

#[test]
fn stats_count_scoped_jobs() {
    with_timeout("stats after a scope", || {
        let pool = WorkerPool::new(2, 8);
        let threads = Mutex::new(HashSet::new());
        pool.scope(|s| {
            let mut handles = Vec::new();
            for i in 0..300 {
                let threads = &threads;
                handles.push(s.spawn(move || {
                    threads.lock().unwrap().insert(thread::current().id());
                    if i % 50 == 0 {
                        panic!("counted panic {i}");
                    }
                    i
                }));
            }
            for (i, h) in handles.into_iter().enumerate() {
                match h.join() {
                    Ok(v) => assert_eq!(v, i, "value of job {i}"),
                    Err(e) => assert_eq!(
                        e.panic_message(),
                        Some(format!("counted panic {i}").as_str()),
                        "panic of job {i}"
                    ),
                }
            }
        });
        // Read right after `scope`: the counters are updated before the scope is released.
        let stats = pool.stats();
        assert_eq!(stats.completed, 300, "every scoped job counted: {stats:?}");
        assert_eq!(stats.panicked, 6, "every scoped panic counted: {stats:?}");
        assert_eq!(
            (stats.queued, stats.active),
            (0, 0),
            "nothing left: {stats:?}"
        );
        assert!(
            !threads.into_inner().unwrap().is_empty(),
            "jobs ran somewhere"
        );
    });
}

#[test]
fn scope_works_with_one_worker_and_a_rendezvous_queue() {
    with_timeout("scope on WorkerPool::new(1, 0)", || {
        let pool = WorkerPool::new(1, 0);
        let mut out = vec![0usize; 200];
        pool.scope(|s| {
            for (i, o) in out.iter_mut().enumerate() {
                s.submit(move || *o = i + 1);
            }
        });
        assert!(
            out.iter().enumerate().all(|(i, &v)| v == i + 1),
            "every job wrote its slot"
        );
        assert_eq!(pool.stats().completed, 200, "all counted");
    });
}

#[test]
fn scope_in_a_job_finishes_when_the_other_worker_waits_for_one_of_its_jobs() {
    // One worker is stuck until a scoped job runs; the other opened the scope inside a job, and
    // runs the queued scoped jobs itself while it waits.
    with_timeout("scope in a job while the other worker is blocked", || {
        let pool = Arc::new(WorkerPool::new(2, 8));
        let (gate, held) = hold_workers(&pool, 1);
        let inner = Arc::clone(&pool);
        let opener = pool.spawn(move || {
            let me = thread::current().id();
            let ran_on = Mutex::new(Vec::new());
            inner.scope(|s| {
                for _ in 0..5 {
                    let ran_on = &ran_on;
                    let gate = &gate;
                    s.submit(move || {
                        ran_on.lock().unwrap().push(thread::current().id());
                        gate.open();
                    });
                }
            });
            (me, ran_on.into_inner().unwrap())
        });
        let (me, ran_on) = opener.join().expect("the scope's job finished");
        for h in held {
            h.join().expect("the blocker finishes once released");
        }
        assert_eq!(ran_on.len(), 5, "every scoped job ran");
        assert!(
            ran_on.contains(&me),
            "the waiting job ran queued scoped jobs itself"
        );
    });
}

#[test]
fn many_scopes_of_many_tiny_jobs_all_finish() {
    // Stresses the scope's bookkeeping racing with workers destroying finished jobs (a job's
    // last reference dropped while the scope's own lock was held used to hang the scope).
    with_timeout("many scopes of tiny jobs", || {
        let pool = WorkerPool::new(2, 4);
        let total = AtomicUsize::new(0);
        for _ in 0..300 {
            pool.scope(|s| {
                for _ in 0..200 {
                    let total = &total;
                    s.submit(move || {
                        total.fetch_add(1, Ordering::Relaxed);
                    });
                }
            });
        }
        assert_eq!(total.into_inner(), 300 * 200, "every tiny job ran");
    });
}
