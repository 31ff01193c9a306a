//! The waiting rules (issue 11): a thread outside the pool never runs a pool job (the 9th
//! connection, the big-stack job joined from a small thread, the end of a `scope`, a `map`
//! consumer); a producer blocked on a full queue takes a free slot when the workers stall;
//! `wait_idle` inside a job runs only jobs accepted before the call, and the timed wait none.
//!
//! Every blocking wait runs under [`with_timeout`]: a deadlock fails the test instead of hanging.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use boundpool::WorkerPool;
use common::{hold_workers, with_timeout, Gate, PATIENCE};

/// How long a test leaves a waiter to get into a wait it cannot observe. Not what makes a test
/// pass: it only makes the user's situation (the waiter already blocked) all but certain.
const GRACE: Duration = Duration::from_millis(50);

/// The calling thread's name, owned.
fn this_thread() -> Option<String> {
    thread::current().name().map(str::to_owned)
}

fn on_a_worker(name: &Option<String>) -> bool {
    name.as_deref().is_some_and(|n| n.starts_with("boundpool-"))
}

/// Watches `pool` for [`GRACE`] while a waiter settles into its wait; returns the most jobs seen
/// active. With `busy` workers held, more than `busy` means the waiter took a queued job to run
/// it itself.
fn settle(pool: &WorkerPool) -> usize {
    let end = Instant::now() + GRACE;
    let mut most = 0;
    while Instant::now() < end {
        most = most.max(pool.stats().active);
        thread::sleep(Duration::from_millis(1));
    }
    most
}

/// Polls (yielding) until `pool` has a job queued; false if `finished` (the waiter is done: it
/// ran the job itself) or nothing shows up within `PATIENCE`.
fn await_queued(pool: &WorkerPool, finished: &AtomicBool) -> bool {
    let end = Instant::now() + PATIENCE;
    while pool.stats().queued == 0 {
        if finished.load(SeqCst) || Instant::now() >= end {
            return false;
        }
        thread::yield_now();
    }
    true
}

/// Opens `gate` once a job is queued and the waiter has had [`GRACE`] to block; returns whether a
/// job was seen queued and the most jobs seen active meanwhile. Always opens the gate.
fn open_once_queued(pool: &WorkerPool, gate: &Gate, finished: &AtomicBool) -> (bool, usize) {
    let queued = await_queued(pool, finished);
    let most_active = settle(pool);
    gate.open();
    (queued, most_active)
}

#[test]
fn nine_connections_never_open_joining_from_main() {
    let (peak, names) = with_timeout("24 connection jobs joined from main", || {
        let pool = WorkerPool::new(8, 16);
        let open = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..24)
            .map(|_| {
                let (open, peak) = (Arc::clone(&open), Arc::clone(&peak));
                pool.spawn(move || {
                    let now = open.fetch_add(1, SeqCst) + 1;
                    peak.fetch_max(now, SeqCst);
                    thread::sleep(Duration::from_millis(20)); // the connection's work
                    open.fetch_sub(1, SeqCst);
                    this_thread()
                })
            })
            .collect();
        let names: Vec<_> = handles
            .into_iter()
            .rev()
            .map(|h| h.join().expect("a connection job"))
            .collect();
        (peak.load(SeqCst), names)
    });
    assert!(peak <= 8, "8 workers opened {peak} connections at once");
    assert_eq!(names.len(), 24, "every connection job returned");
    for name in &names {
        assert!(on_a_worker(name), "a connection job ran on {name:?}");
    }
}

/// Recurses `levels` deep with 64 KiB of stack per level; the optimiser cannot shrink it.
fn deep(levels: usize) -> usize {
    let mut frame = [0u8; 64 * 1024];
    std::hint::black_box(&mut frame);
    if levels == 0 {
        return frame[0] as usize;
    }
    deep(levels - 1) + std::hint::black_box(&frame)[levels % 1024] as usize
}

#[test]
fn a_big_stack_job_joined_from_a_small_thread_runs_on_its_worker() {
    let (joined, most_active) = with_timeout("a 32 MiB job joined from a 2 MiB thread", || {
        let pool = WorkerPool::builder()
            .workers(1)
            .stack_size(64 << 20)
            .build()
            .expect("build");
        let (gate, _held) = hold_workers(&pool, 1);
        let handle = pool.spawn(|| {
            deep(512); // ~32 MiB of stack
            this_thread()
        });
        let (entering_tx, entering) = mpsc::channel();
        let joiner = thread::Builder::new()
            .name("joiner-2MiB".into())
            .stack_size(2 << 20)
            .spawn(move || {
                entering_tx.send(()).expect("the test waits for the joiner");
                handle.join()
            })
            .expect("spawn the 2 MiB joiner");
        entering.recv_timeout(PATIENCE).expect("the joiner started");
        let most_active = settle(&pool);
        gate.open();
        let joined = joiner.join().expect("the 2 MiB joiner did not panic");
        (joined, most_active)
    });
    assert!(
        most_active <= 1,
        "the 2 MiB joiner took the queued job to run it itself ({most_active} jobs active)"
    );
    let name = joined.expect("the deep job finished");
    assert_eq!(
        name.as_deref(),
        Some("boundpool-0"),
        "the deep job ran on the pool's 64 MiB worker"
    );
}

#[test]
fn the_end_of_a_scope_on_main_waits_for_the_worker() {
    let (name, queued, most_active) = with_timeout("a scope ending on main", || {
        let pool = WorkerPool::new(1, 4);
        let (gate, _held) = hold_workers(&pool, 1);
        let name = Mutex::new(None);
        let finished = AtomicBool::new(false);
        let (queued, most_active) = thread::scope(|ts| {
            let opener = ts.spawn(|| open_once_queued(&pool, &gate, &finished));
            pool.scope(|s| {
                let name = &name;
                s.submit(move || *name.lock().unwrap() = Some(this_thread()));
            });
            finished.store(true, SeqCst);
            opener.join().expect("the opener")
        });
        (name.into_inner().unwrap(), queued, most_active)
    });
    let name = name.expect("the scoped job ran");
    assert_eq!(
        name.as_deref(),
        Some("boundpool-0"),
        "the scoped job ran off the worker"
    );
    assert!(queued, "the scoped job was never seen queued");
    assert!(
        most_active <= 1,
        "the scope's end took the queued job to run it on main ({most_active} jobs active)"
    );
}

#[test]
fn a_map_consumer_on_main_waits_for_the_worker() {
    let (names, queued, most_active) = with_timeout("a map consumed on main", || {
        let pool = WorkerPool::new(1, 4);
        let (gate, _held) = hold_workers(&pool, 1);
        let finished = AtomicBool::new(false);
        thread::scope(|ts| {
            let opener = ts.spawn(|| open_once_queued(&pool, &gate, &finished));
            let names: Vec<_> = pool.map(0..6u32, |_| this_thread()).collect();
            finished.store(true, SeqCst);
            let (queued, most_active) = opener.join().expect("the opener");
            (names, queued, most_active)
        })
    });
    assert_eq!(names.len(), 6, "every item yielded");
    for name in &names {
        assert_eq!(
            name.as_deref(),
            Some("boundpool-0"),
            "a map item ran off the worker"
        );
    }
    assert!(queued, "no map item was ever seen queued");
    assert!(
        most_active <= 1,
        "the map consumer took a queued item to run it on main ({most_active} jobs active)"
    );
}

/// How the producer hands its 8 gated jobs to the pool.
#[derive(Clone, Copy, Debug)]
enum Via {
    Submit,
    SubmitTimeout,
    Spawn,
}

/// 20 rounds: a 4-worker, capacity-4 pool; the producer submits 8 jobs that wait at a gate it
/// opens only after the 8th submit. The 8 fit (4 running, 4 queued), so the producer must never
/// sleep on beside a free slot.
fn producer_opens_the_gate_after_its_submits(via: Via) {
    with_timeout(&format!("8 gated jobs via {via:?}, 20 rounds"), move || {
        for round in 0..20 {
            let pool = WorkerPool::new(4, 4);
            let gate = Gate::new();
            let ran = Arc::new(AtomicUsize::new(0));
            let mut handles = Vec::new();
            for i in 0..8 {
                let (gate, ran) = (gate.clone(), Arc::clone(&ran));
                let job = move || {
                    gate.wait();
                    ran.fetch_add(1, SeqCst);
                };
                match via {
                    Via::Submit => pool.submit(job),
                    Via::SubmitTimeout => {
                        let taken = pool.submit_timeout(job, Duration::from_secs(30));
                        assert!(taken.is_ok(), "round {round}: job {i} timed out");
                    }
                    Via::Spawn => handles.push(pool.spawn(job)),
                }
            }
            let queued = pool.stats().queued;
            assert!(queued <= 4, "round {round}: {queued} queued, capacity 4");
            gate.open();
            for h in handles {
                h.join().expect("a gated job");
            }
            pool.wait_idle();
            assert_eq!(ran.load(SeqCst), 8, "round {round}: gated jobs ran");
        }
    });
}

#[test]
fn producer_takes_a_free_slot_when_workers_stall() {
    producer_opens_the_gate_after_its_submits(Via::Submit);
}

#[test]
fn producer_takes_a_free_slot_when_workers_stall_submit_timeout() {
    producer_opens_the_gate_after_its_submits(Via::SubmitTimeout);
}

#[test]
fn producer_takes_a_free_slot_when_workers_stall_spawn() {
    producer_opens_the_gate_after_its_submits(Via::Spawn);
}

#[test]
fn wait_idle_in_a_job_does_not_run_a_later_job_that_waits_for_the_waiter() {
    let (got, returned) = with_timeout("wait_idle and a later job waiting for it", || {
        let pool = Arc::new(WorkerPool::new(2, 8));
        let gate = Gate::new();
        gate.hold(&pool, 1); // P: accepted before the call, holds the other worker
        let (c_tx, c_rx) = mpsc::channel();
        let (inside_tx, inside) = mpsc::channel();
        let returned = Arc::new(AtomicBool::new(false));
        let (p, r) = (Arc::clone(&pool), Arc::clone(&returned));
        pool.submit(move || {
            inside_tx.send(()).unwrap();
            p.wait_idle();
            r.store(true, SeqCst);
            c_tx.send(()).unwrap();
        });
        inside.recv_timeout(PATIENCE).expect("W started");
        thread::sleep(GRACE); // W is inside wait_idle: J is accepted after the call
        let got = Arc::new(AtomicBool::new(false));
        let g = Arc::clone(&got);
        pool.submit(move || g.store(c_rx.recv_timeout(PATIENCE).is_ok(), SeqCst));
        gate.open();
        pool.wait_idle();
        (got.load(SeqCst), returned.load(SeqCst))
    });
    assert!(returned, "W's wait_idle returned");
    assert!(got, "the later job ran beneath W and missed its message");
}

#[test]
fn wait_idle_in_a_job_holding_a_mutex_does_not_run_a_later_job_taking_it() {
    let (beneath, took) = with_timeout("wait_idle holding a Mutex", || {
        let pool = Arc::new(WorkerPool::new(2, 8));
        let gate = Gate::new();
        gate.hold(&pool, 1); // a job accepted before the call keeps the waiter waiting
        let lock = Arc::new(Mutex::new(()));
        let waiter: Arc<Mutex<Option<ThreadId>>> = Arc::default();
        let holding = Arc::new(AtomicBool::new(false));
        let (inside_tx, inside) = mpsc::channel();
        {
            let (p, lock, waiter, holding) = (
                Arc::clone(&pool),
                Arc::clone(&lock),
                Arc::clone(&waiter),
                Arc::clone(&holding),
            );
            pool.submit(move || {
                let guard = lock.lock().unwrap();
                *waiter.lock().unwrap() = Some(thread::current().id());
                holding.store(true, SeqCst);
                inside_tx.send(()).unwrap();
                p.wait_idle();
                holding.store(false, SeqCst);
                drop(guard);
            });
        }
        inside.recv_timeout(PATIENCE).expect("the waiter started");
        thread::sleep(GRACE); // the waiter is inside wait_idle: the next job comes after the call
        let beneath = Arc::new(AtomicBool::new(false));
        let took = Arc::new(AtomicBool::new(false));
        {
            let (beneath, took) = (Arc::clone(&beneath), Arc::clone(&took));
            pool.submit(move || {
                let same = *waiter.lock().unwrap() == Some(thread::current().id());
                if same && holding.load(SeqCst) {
                    beneath.store(true, SeqCst); // locking now would self-deadlock
                    return;
                }
                let _guard = lock.lock().unwrap();
                took.store(true, SeqCst);
            });
        }
        gate.open();
        pool.wait_idle();
        (beneath.load(SeqCst), took.load(SeqCst))
    });
    assert!(
        !beneath,
        "the later job ran beneath the waiter holding the lock"
    );
    assert!(
        took,
        "the later job took the lock after the waiter released it"
    );
}

#[test]
fn wait_idle_timeout_never_runs_a_job_inline() {
    let (inline, ran, returned) = with_timeout("wait_idle_timeout in a job", || {
        let pool = Arc::new(WorkerPool::new(1, 8));
        // The thread in the timed wait, while it is in it.
        let waiting: Arc<Mutex<Option<ThreadId>>> = Arc::default();
        let inline = Arc::new(AtomicUsize::new(0));
        let ran = Arc::new(AtomicUsize::new(0));
        let probe = {
            let (waiting, inline, ran) =
                (Arc::clone(&waiting), Arc::clone(&inline), Arc::clone(&ran));
            move || {
                let (waiting, inline, ran) =
                    (Arc::clone(&waiting), Arc::clone(&inline), Arc::clone(&ran));
                move || {
                    if *waiting.lock().unwrap() == Some(thread::current().id()) {
                        inline.fetch_add(1, SeqCst);
                    }
                    ran.fetch_add(1, SeqCst);
                }
            }
        };
        let (started_tx, started) = mpsc::channel();
        let (returned_tx, returned) = mpsc::channel();
        {
            let (p, waiting, before) = (Arc::clone(&pool), Arc::clone(&waiting), probe());
            pool.submit(move || {
                p.submit(before); // accepted before the call: queued, the only worker is here
                *waiting.lock().unwrap() = Some(thread::current().id());
                started_tx.send(()).unwrap();
                let idle = p.wait_idle_timeout(Duration::from_millis(50));
                *waiting.lock().unwrap() = None;
                returned_tx.send(idle).unwrap();
            });
        }
        started.recv_timeout(PATIENCE).expect("the waiter started");
        pool.submit(probe()); // accepted while (or just after) the timed wait runs
        let returned = returned.recv_timeout(PATIENCE).is_ok();
        pool.wait_idle();
        (inline.load(SeqCst), ran.load(SeqCst), returned)
    });
    assert!(returned, "wait_idle_timeout returned");
    assert_eq!(inline, 0, "the timed wait ran {inline} job(s) inline");
    assert_eq!(ran, 2, "both probe jobs ran afterwards");
}

#[test]
fn five_thousand_nested_wait_idles() {
    let (done, completed) = with_timeout("5,000 jobs each calling wait_idle", || {
        let pool = Arc::new(WorkerPool::new(1, 5_000));
        let (gate, _held) = hold_workers(&pool, 1);
        let done = Arc::new(AtomicUsize::new(0));
        for _ in 0..5_000 {
            let (p, done) = (Arc::clone(&pool), Arc::clone(&done));
            pool.submit(move || {
                p.wait_idle();
                done.fetch_add(1, SeqCst);
            });
        }
        gate.open();
        pool.wait_idle();
        (done.load(SeqCst), pool.stats().completed)
    });
    assert_eq!(done, 5_000, "every waiting job finished");
    assert_eq!(completed, 5_001, "stats count the held job and the 5,000");
}
