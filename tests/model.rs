//! Model-based tests: random sequences of operations on random pool shapes, checked against a
//! model that only counts. Each accepted job must run exactly once or be handed back; the stats
//! must agree with what the test observed; at most `capacity` jobs ever wait; nothing hangs.
//!
//! To reach backpressure states deterministically, `Hold` parks every worker in a gated job,
//! then fills the queue to exactly `capacity` and checks that the next `try_submit` and
//! `submit_timeout` hand the job back.
//!
//! Cases: 256 by default (about a second in debug); set `PROPTEST_CASES` to run more.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use boundpool::{JobHandle, WorkerPool};
use common::{quiet_panics, within, Gate, PATIENCE};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Submit {
        panics: bool,
    },
    TrySubmit {
        panics: bool,
    },
    SubmitTimeout {
        panics: bool,
        micros: u64,
    },
    /// Spawn now, join at the next `WaitIdle` or at the end.
    Spawn {
        panics: bool,
    },
    /// Spawn and join at once.
    SpawnJoin {
        panics: bool,
    },
    WaitIdle,
    Stats,
    /// Hold every worker, fill the queue exactly, check it refuses more, release.
    Hold,
}

#[derive(Clone, Copy, Debug)]
enum End {
    Shutdown,
    ShutdownTimeout,
    /// Run the handed-back jobs (`true`) or drop them (`false`).
    ShutdownNow {
        run_returned: bool,
    },
    Drop,
}

fn op() -> impl Strategy<Value = Op> {
    let panics = prop::bool::weighted(0.2);
    prop_oneof![
        4 => panics.prop_map(|panics| Op::Submit { panics }),
        3 => panics.prop_map(|panics| Op::TrySubmit { panics }),
        2 => (panics, 0u64..2000).prop_map(|(panics, micros)| Op::SubmitTimeout { panics, micros }),
        3 => panics.prop_map(|panics| Op::Spawn { panics }),
        2 => panics.prop_map(|panics| Op::SpawnJoin { panics }),
        1 => Just(Op::WaitIdle),
        1 => Just(Op::Stats),
        1 => Just(Op::Hold),
    ]
}

fn end() -> impl Strategy<Value = End> {
    prop_oneof![
        Just(End::Shutdown),
        Just(End::ShutdownTimeout),
        any::<bool>().prop_map(|run_returned| End::ShutdownNow { run_returned }),
        Just(End::Drop),
    ]
}

const MAX_IDS: usize = 1024;

/// A case that takes longer than this has hung (a case takes milliseconds).
const CASE_LIMIT: Duration = Duration::from_secs(20);

/// What the test knows.
struct Model {
    workers: usize,
    capacity: usize,
    /// How often each job id ran.
    ran: Arc<[AtomicU32]>,
    next_id: usize,
    /// Ids of accepted jobs (handed to the pool).
    accepted: Vec<usize>,
    /// Accepted jobs that panic.
    accepted_panicking: u64,
    /// Gate jobs (accepted, never panic).
    gate_jobs: u64,
    /// Ids handed back by `try_submit` / `submit_timeout`: must never run (we drop them).
    handed_back: Vec<usize>,
    /// Spawned jobs not yet joined.
    handles: Vec<(usize, bool, JobHandle<usize>)>,
}

impl Model {
    fn job(&mut self, panics: bool) -> (usize, impl FnOnce() -> usize + Send + 'static) {
        let id = self.next_id;
        self.next_id += 1;
        assert!(id < MAX_IDS, "model: too many ids");
        let ran = Arc::clone(&self.ran);
        (id, move || {
            ran[id].fetch_add(1, Ordering::SeqCst);
            if panics {
                panic!("armour: model job {id}");
            }
            id
        })
    }

    fn accept(&mut self, id: usize, panics: bool) {
        self.accepted.push(id);
        if panics {
            self.accepted_panicking += 1;
        }
    }

    fn total_accepted(&self) -> u64 {
        self.accepted.len() as u64 + self.gate_jobs
    }

    fn ran(&self, id: usize) -> u32 {
        self.ran[id].load(Ordering::SeqCst)
    }

    fn check_stats_bounds(&self, pool: &WorkerPool, when: &str) {
        let s = pool.stats();
        assert_eq!(
            (s.workers, s.capacity),
            (self.workers, self.capacity),
            "{when}: shape"
        );
        assert!(
            s.queued <= self.capacity,
            "{when}: queued {} > capacity",
            s.queued
        );
        assert!(
            s.completed <= self.total_accepted(),
            "{when}: completed {} > accepted {}",
            s.completed,
            self.total_accepted()
        );
        assert!(s.panicked <= s.completed, "{when}: panicked > completed");
        assert!(
            s.panicked <= self.accepted_panicking,
            "{when}: more panics than panicking jobs"
        );
    }

    fn join_handles(&mut self, when: &str) {
        for (id, panics, h) in self.handles.drain(..) {
            match h.join() {
                Ok(v) => assert!(!panics && v == id, "{when}: job {id} returned {v}"),
                Err(e) => assert!(panics && e.is_panic(), "{when}: job {id}: {e:?}"),
            }
        }
    }

    /// After a `wait_idle`: everything accepted so far has run exactly once.
    fn check_idle(&mut self, pool: &WorkerPool) {
        let s = pool.stats();
        assert_eq!((s.queued, s.active), (0, 0), "after wait_idle: {s:?}");
        assert_eq!(
            s.completed,
            self.total_accepted(),
            "after wait_idle: completed"
        );
        assert_eq!(
            s.panicked, self.accepted_panicking,
            "after wait_idle: panicked"
        );
        for &id in &self.accepted {
            assert_eq!(self.ran(id), 1, "after wait_idle: job {id} ran once");
        }
        for &id in &self.handed_back {
            assert_eq!(self.ran(id), 0, "a handed-back job {id} never runs");
        }
        self.join_handles("after wait_idle");
    }
}

fn run_case(workers: usize, capacity: usize, ops: Vec<Op>, end: End) {
    quiet_panics("armour:");
    let pool = WorkerPool::new(workers, capacity);
    let mut m = Model {
        workers,
        capacity,
        ran: (0..MAX_IDS).map(|_| AtomicU32::new(0)).collect(),
        next_id: 0,
        accepted: Vec::new(),
        accepted_panicking: 0,
        gate_jobs: 0,
        handed_back: Vec::new(),
        handles: Vec::new(),
    };
    for op in ops {
        match op {
            Op::Submit { panics } => {
                let (id, job) = m.job(panics);
                pool.submit(move || {
                    job();
                });
                m.accept(id, panics);
            }
            Op::TrySubmit { panics } => {
                let (id, job) = m.job(panics);
                match pool.try_submit(move || {
                    job();
                }) {
                    Ok(()) => m.accept(id, panics),
                    Err(e) => {
                        drop(e.into_inner());
                        m.handed_back.push(id);
                    }
                }
            }
            Op::SubmitTimeout { panics, micros } => {
                let (id, job) = m.job(panics);
                let t = Duration::from_micros(micros);
                match pool.submit_timeout(
                    move || {
                        job();
                    },
                    t,
                ) {
                    Ok(()) => m.accept(id, panics),
                    Err(e) => {
                        drop(e.into_inner());
                        m.handed_back.push(id);
                    }
                }
            }
            Op::Spawn { panics } => {
                let (id, job) = m.job(panics);
                m.handles.push((id, panics, pool.spawn(job)));
                m.accept(id, panics);
            }
            Op::SpawnJoin { panics } => {
                let (id, job) = m.job(panics);
                let r = pool.spawn(job).join();
                m.accept(id, panics);
                match r {
                    Ok(v) => assert!(!panics && v == id, "spawn-join {id} returned {v}"),
                    Err(e) => assert!(panics && e.is_panic(), "spawn-join {id}: {e:?}"),
                }
                assert_eq!(m.ran(id), 1, "a joined job ran once");
            }
            Op::WaitIdle => {
                pool.wait_idle();
                m.check_idle(&pool);
            }
            Op::Stats => m.check_stats_bounds(&pool, "stats"),
            Op::Hold => {
                let gate = Gate::new();
                gate.hold(&pool, workers);
                m.gate_jobs += workers as u64;
                // Every worker is in a gate job, which was queued behind everything before it:
                // the queue is empty now.
                let s = pool.stats();
                assert_eq!((s.queued, s.active), (0, workers), "held, empty: {s:?}");
                for k in 0..capacity {
                    let (id, job) = m.job(false);
                    let r = pool.try_submit(move || {
                        job();
                    });
                    assert!(r.is_ok(), "slot {k} of {capacity} accepts");
                    m.accept(id, false);
                }
                let s = pool.stats();
                assert_eq!(s.queued, capacity, "the queue is exactly full: {s:?}");
                let (id, job) = m.job(false);
                let r = pool.try_submit(move || {
                    job();
                });
                assert!(r.is_err(), "a full queue refuses try_submit");
                m.handed_back.push(id);
                let (id, job) = m.job(false);
                let r = pool.submit_timeout(
                    move || {
                        job();
                    },
                    Duration::from_micros(200),
                );
                assert!(r.is_err(), "a full queue refuses submit_timeout");
                m.handed_back.push(id);
                m.check_stats_bounds(&pool, "held");
                gate.open();
            }
        }
        m.check_stats_bounds(&pool, "after op");
    }

    let total = m.total_accepted();
    let final_stats = match end {
        End::Shutdown => Some(pool.shutdown()),
        End::ShutdownTimeout => Some(
            pool.shutdown_timeout(PATIENCE)
                .expect("short jobs finish in time"),
        ),
        End::Drop => {
            drop(pool);
            None
        }
        End::ShutdownNow { run_returned } => {
            let returned = pool.shutdown_now();
            let n = returned.len() as u64;
            assert!(n <= capacity as u64, "no more returned than can be queued");
            if run_returned {
                for job in returned {
                    // A panicking job unwinds into us.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.run()));
                }
                for &id in &m.accepted {
                    assert_eq!(m.ran(id), 1, "shutdown_now + run: job {id} ran once");
                }
            } else {
                drop(returned);
                let unrun = m.accepted.iter().filter(|&&id| m.ran(id) == 0).count() as u64;
                assert_eq!(unrun, n, "exactly the returned jobs never ran");
                for &id in &m.accepted {
                    assert!(m.ran(id) <= 1, "job {id} ran at most once");
                }
            }
            for (id, panics, h) in std::mem::take(&mut m.handles) {
                match h.join() {
                    Ok(v) => assert!(!panics && v == id, "job {id} returned {v}"),
                    Err(e) if e.is_cancelled() => {
                        assert!(!run_returned, "only dropped jobs are cancelled");
                        assert_eq!(m.ran(id), 0, "a cancelled job never ran");
                    }
                    Err(e) => assert!(panics && e.is_panic(), "job {id}: {e:?}"),
                }
            }
            None
        }
    };
    if let Some(s) = final_stats {
        assert_eq!(s.completed, total, "shutdown runs everything accepted");
        assert_eq!(s.panicked, m.accepted_panicking, "every panic counted");
        assert_eq!((s.queued, s.active), (0, 0), "nothing left: {s:?}");
    }
    if !matches!(end, End::ShutdownNow { .. }) {
        for &id in &m.accepted {
            assert_eq!(m.ran(id), 1, "{end:?}: job {id} ran exactly once");
        }
        m.join_handles("end");
    }
    for &id in &m.handed_back {
        assert_eq!(m.ran(id), 0, "a handed-back job {id} never runs");
    }
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_operations_keep_the_invariants(
        workers in 1usize..=4,
        capacity in 0usize..=8,
        ops in prop::collection::vec(op(), 0..40),
        end in end(),
    ) {
        within(CASE_LIMIT, "model case", move || run_case(workers, capacity, ops, end));
    }
}
