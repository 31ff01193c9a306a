//! What the current thread is doing for boundpool: which pool it works for, the stack of jobs it is
//! running (a waiter that runs the job it waits on nests a job inside another), and which of those
//! jobs are suspended in a boundpool wait.
//!
//! `wait_idle` needs the last two: it must not wait for the jobs beneath it on its own stack, nor
//! for jobs suspended in a boundpool wait (two workers in `wait_idle` would otherwise wait for each
//! other forever). Caller-runs and "drop the pool on its own thread" need the first.

use std::cell::{Cell, RefCell};

use crate::sync::{thread_local, Arc};

/// What this module needs of a pool: to count its jobs suspended in a boundpool wait (see
/// [`Suspension`]). The pool's shared state implements it; this module knows nothing else of
/// it, and tells pools apart by address.
pub(crate) trait Suspendable: Send + Sync + 'static {
    /// Counts a job accepted with `parity` as suspended; `first`: for the first time, when the
    /// job is also registered as lingering, under the epoch returned.
    fn suspend(&self, parity: usize, first: bool) -> Option<u64>;
    /// Counts a suspended job accepted with `parity` as running again.
    fn resume(&self, parity: usize);
}

/// A pool, as this module holds it.
type PoolRef = Arc<dyn Suspendable>;

/// One job this thread is running.
struct Frame {
    /// The pool the job belongs to; `None` for the pool this thread is a worker of (saves an
    /// `Arc` clone, that is a shared-cache-line increment, per job on the hot path).
    pool: Option<PoolRef>,
    /// The idle epoch parity the job was accepted in.
    parity: usize,
    /// Whether a [`Suspension`] further down this thread's call stack counts it as suspended.
    suspended: bool,
    /// Once the job has been suspended: the idle epoch it was accepted in, under which the pool
    /// counts it as lingering until it finishes (see `Suspendable::suspend`).
    lingering: Option<u64>,
}

/// `WORKER_JOB` when the worker is not running a job of its own.
const NO_JOB: u8 = u8::MAX;
/// `WORKER_JOB`'s low bits: the job's epoch slot (below 8).
const SLOT: u8 = 7;
/// `WORKER_JOB` flag: a [`Suspension`] counts the worker's job as suspended.
const SUSPENDED: u8 = 8;
/// `WORKER_JOB` flag: the worker's job has been suspended, and lingers under the epoch in
/// `WORKER_LINGERING` until it finishes.
const LINGERING: u8 = 16;

thread_local! {
    /// `Arc::as_ptr` of the pool this thread is a worker of (0: none), and the worker's index.
    static WORKER: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
    /// The bottom frame of a worker: the job its loop is running (its slot, plus `SUSPENDED` and
    /// `LINGERING`), or `NO_JOB`. A `Cell`, not a `STACK` entry: it is set and cleared once per
    /// job on the hot path.
    static WORKER_JOB: Cell<u8> = const { Cell::new(NO_JOB) };
    /// The epoch the worker's job lingers under, when `WORKER_JOB` has `LINGERING`.
    static WORKER_LINGERING: Cell<u64> = const { Cell::new(0) };
    /// The pool this thread is a worker of, for frames whose `pool` is `None`.
    static WORKER_POOL: RefCell<Option<PoolRef>> = const { RefCell::new(None) };
    /// The jobs this thread is running, innermost last.
    static STACK: RefCell<Vec<Frame>> = const { RefCell::new(Vec::new()) };
}

/// A pool's identity: the address of its shared state.
fn addr<P: ?Sized>(pool: &P) -> usize {
    pool as *const P as *const () as usize
}

/// Marks this thread as worker `index` of `shared` until [`leave_worker`].
pub(crate) fn enter_worker<P: Suspendable>(shared: &Arc<P>, index: usize) {
    WORKER.with(|w| w.set((addr(&**shared), index)));
    let pool: PoolRef = Arc::clone(shared) as PoolRef;
    WORKER_POOL.with(|p| *p.borrow_mut() = Some(pool));
}

/// Undoes [`enter_worker`] (so the thread-local no longer keeps the pool's state alive).
pub(crate) fn leave_worker() {
    WORKER.with(|w| w.set((0, 0)));
    let pool = WORKER_POOL.with(|p| p.borrow_mut().take());
    drop(pool);
}

/// The index of this thread among `shared`'s workers, if it is one of them.
#[inline]
pub(crate) fn worker_index<P: Suspendable>(shared: &P) -> Option<usize> {
    let (pool, index) = WORKER.with(Cell::get);
    (pool == addr(shared)).then_some(index)
}

/// Whether this thread is a worker of any pool or is running any pool's job. `wait_idle` called
/// elsewhere waits for the jobs suspended in a boundpool wait too: nothing can be waiting for it.
pub(crate) fn in_any_job() -> bool {
    WORKER.with(Cell::get).0 != 0 || STACK.with(|s| !s.borrow().is_empty())
}

/// How many jobs this thread runs nested inside another job it runs: 0 at a worker's loop level
/// (its own job is not nested) and on a thread running no job; 1 inside a job that a waiter or
/// a caller-runs submit started inside another, or that a helper thread runs; and so on.
#[inline]
pub(crate) fn nesting() -> usize {
    STACK.with(|s| s.borrow().len())
}

/// Whether this thread is one of `shared`'s workers or is running one of its jobs: there, blocking
/// on the pool (a full queue, joining its workers) could wait for this very thread.
pub(crate) fn in_pool<P: Suspendable>(shared: &P) -> bool {
    if worker_index(shared).is_some() {
        return true;
    }
    let me = addr(shared);
    STACK.with(|s| {
        s.borrow()
            .iter()
            .any(|f| f.pool.as_deref().map(addr) == Some(me))
    })
}

/// Where [`push`] recorded a job, for the matching [`pop`].
#[derive(Clone, Copy)]
pub(crate) enum FrameSlot {
    /// The worker's own loop-level job (`WORKER_JOB`).
    Worker,
    /// A nested job (`STACK`).
    Stack,
}

/// Records that this thread starts running a job of `shared` accepted with `parity`;
/// `own_worker`: this thread is one of `shared`'s workers (the caller has looked it up).
#[inline]
pub(crate) fn push<P: Suspendable>(shared: &Arc<P>, own_worker: bool, parity: usize) -> FrameSlot {
    if own_worker && WORKER_JOB.with(Cell::get) == NO_JOB {
        WORKER_JOB.with(|w| w.set(parity as u8));
        return FrameSlot::Worker;
    }
    let pool = if own_worker {
        None
    } else {
        Some(Arc::clone(shared) as PoolRef)
    };
    STACK.with(|s| {
        s.borrow_mut().push(Frame {
            pool,
            parity,
            suspended: false,
            lingering: None,
        })
    });
    FrameSlot::Stack
}

/// Records that the innermost job of this thread has finished; returns the epoch it lingers
/// under if it was ever suspended.
#[inline]
pub(crate) fn pop(slot: FrameSlot) -> Option<u64> {
    match slot {
        FrameSlot::Worker => {
            let job = WORKER_JOB.with(|w| w.replace(NO_JOB));
            (job & LINGERING != 0).then(|| WORKER_LINGERING.with(Cell::get))
        }
        FrameSlot::Stack => STACK
            .with(|s| s.borrow_mut().pop())
            .and_then(|f| f.lingering),
    }
}

/// While alive, the jobs on this thread's stack count as suspended in a boundpool wait.
///
/// Created by every blocking wait (`join`, a scope's end, `Map::next`, `wait_idle`). Frames that
/// an outer suspension already counts are left alone, so nothing is counted twice.
pub(crate) struct Suspension {
    /// The frames this suspension marked: their index on the stack, pool and parity.
    marked: Vec<(usize, PoolRef, usize)>,
    /// The worker's own job, if this suspension marked it: its pool and parity.
    worker_job: Option<(PoolRef, usize)>,
}

impl Suspension {
    /// Suspends every not-yet-suspended job on this thread's stack.
    pub(crate) fn new() -> Suspension {
        let mut marked = Vec::new();
        let mut worker_job = None;
        let job = WORKER_JOB.with(Cell::get);
        if job != NO_JOB && job & SUSPENDED == 0 {
            if let Some(pool) = WORKER_POOL.with(|p| p.borrow().clone()) {
                WORKER_JOB.with(|w| w.set(job | SUSPENDED));
                worker_job = Some((pool, usize::from(job & SLOT), job & LINGERING == 0));
            }
        }
        STACK.with(|s| {
            let mut stack = s.borrow_mut();
            if stack.is_empty() {
                return;
            }
            let worker_pool = WORKER_POOL.with(|p| p.borrow().clone());
            for (i, frame) in stack.iter_mut().enumerate() {
                if frame.suspended {
                    continue;
                }
                let pool = match (&frame.pool, &worker_pool) {
                    (Some(pool), _) | (None, Some(pool)) => Arc::clone(pool),
                    (None, None) => continue, // unreachable: a `None` frame is a worker's
                };
                frame.suspended = true;
                marked.push((i, pool, frame.parity, frame.lingering.is_none()));
            }
        });
        // Counted outside the thread-local borrow: notifying takes the pools' idle locks.
        if let Some((pool, parity, first)) = &worker_job {
            if let Some(epoch) = pool.suspend(*parity, *first) {
                WORKER_LINGERING.with(|w| w.set(epoch));
                WORKER_JOB.with(|w| w.set(w.get() | LINGERING));
            }
        }
        for (i, pool, parity, first) in &marked {
            if let Some(epoch) = pool.suspend(*parity, *first) {
                STACK.with(|s| s.borrow_mut()[*i].lingering = Some(epoch));
            }
        }
        Suspension {
            marked: marked
                .into_iter()
                .map(|(i, p, parity, _)| (i, p, parity))
                .collect(),
            worker_job: worker_job.map(|(p, parity, _)| (p, parity)),
        }
    }
}

impl Drop for Suspension {
    fn drop(&mut self) {
        STACK.with(|s| {
            let mut stack = s.borrow_mut();
            for (i, _, _) in &self.marked {
                if let Some(frame) = stack.get_mut(*i) {
                    frame.suspended = false;
                }
            }
        });
        for (_, pool, parity) in &self.marked {
            pool.resume(*parity);
        }
        if let Some((pool, parity)) = &self.worker_job {
            WORKER_JOB.with(|w| w.set(w.get() & !SUSPENDED));
            pool.resume(*parity);
        }
    }
}
