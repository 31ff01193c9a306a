//! Scoped jobs: [`WorkerPool::scope`], [`Scope`] and [`ScopedJobHandle`]. Jobs may borrow from
//! the caller's stack because `scope` returns only after every one of them has been destroyed.
//!
//! This is the one module with `unsafe`: a scoped job's lifetime is erased so it can travel
//! through the pool's `'static` queue. The argument that this is sound is in
//! [`Scope::spawn`]; what it rests on is [`ScopedTask`]'s `Drop` and [`ScopeState::wait_all`].

use std::any::Any;
use std::fmt;
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe};

use crate::context::{self, Suspension};
use crate::job::{Awaitable, JobError, SharedTask, Slot, Stamp, State, Work, BOX_ABOVE};
use crate::shared::Shared;
use crate::sync::{drop_catching, drop_quietly, lock};
use crate::sync::{Arc, Condvar, Mutex, PoisonError, Weak};
use crate::WorkerPool;

/// A scope's bookkeeping, shared (by `Arc`, never by borrow) with each of its jobs.
struct ScopeState {
    inner: Mutex<ScopeInner>,
    changed: Condvar,
}

struct ScopeInner {
    /// Jobs created and not yet destroyed.
    pending: usize,
    /// The queue entries of jobs that may still be queued, oldest first: the waiter runs
    /// those jobs itself and empties the entries.
    queued: Vec<Weak<QueueEntry>>,
    /// `queued.len()` after the last pruning (pruning again at twice that keeps it amortised).
    pruned_len: usize,
    /// Bumped by every job created or destroyed, so the waiter never sleeps through a change.
    changes: u64,
    /// Whether the scope's waiter is asleep on `changed`.
    waiting: bool,
    /// The first panic of a job nobody joined.
    panic: Option<Box<dyn Any + Send>>,
}

impl ScopeInner {
    /// Forgets the entries the queue has let go of. It never upgrades one: a temporary `Arc`
    /// that turned out to be the last would destroy its job here, and a job's destruction takes
    /// the lock the caller holds.
    fn prune(&mut self) {
        self.queued.retain(|entry| entry.strong_count() > 0);
        self.pruned_len = self.queued.len();
    }
}

impl ScopeState {
    fn new() -> ScopeState {
        ScopeState {
            inner: Mutex::new(ScopeInner {
                pending: 0,
                queued: Vec::new(),
                pruned_len: 0,
                changes: 0,
                waiting: false,
                panic: None,
            }),
            changed: Condvar::new(),
        }
    }

    fn changed(&self, inner: &mut ScopeInner) {
        inner.changes = inner.changes.wrapping_add(1);
        if inner.waiting {
            self.changed.notify_all();
        }
    }

    /// Counts a job that is about to be created.
    fn add(&self) {
        let mut inner = lock(&self.inner);
        inner.pending += 1;
        self.changed(&mut inner);
    }

    /// Remembers a job that was just created, so the waiter can run it if it is still queued.
    fn track(&self, entry: Weak<QueueEntry>) {
        let mut inner = lock(&self.inner);
        if inner.queued.len() >= 2 * inner.pruned_len.max(32) {
            inner.prune();
        }
        inner.queued.push(entry);
        self.changed(&mut inner);
    }

    /// Counts a job as destroyed, keeping the first unjoined panic. Touches only this
    /// `ScopeState`, which the job owns a share of: never the scope's borrowed data.
    fn complete(&self, panic: Option<Box<dyn Any + Send>>) {
        let mut inner = lock(&self.inner);
        let dropped = match panic {
            Some(p) if inner.panic.is_none() => {
                inner.panic = Some(p);
                None
            }
            other => other,
        };
        inner.pending -= 1;
        self.changed(&mut inner);
        drop(inner);
        drop_quietly(dropped);
    }

    /// Returns once every job of the scope has been destroyed. Inside a job, it runs
    /// still-queued ones on this thread (so a scope inside a job finishes even when every worker
    /// is busy), nested or on a helper thread (see `Shared::run_nested`); anywhere else it runs
    /// none: the workers do.
    fn wait_all(&self, shared: &Shared) {
        let helps = context::in_any_job();
        let mut suspension = None;
        let mut inner = lock(&self.inner);
        loop {
            if inner.pending == 0 {
                return;
            }
            let seen = inner.changes;
            // Past MAX_NESTING with every helper thread taken, it waits for the workers: a scope
            // cannot unwind (see `MAX_NESTING`) before its jobs are done.
            let candidates: Vec<Arc<QueueEntry>> = if helps && shared.can_nest() {
                inner.queued.iter().filter_map(Weak::upgrade).collect()
            } else {
                Vec::new()
            };
            drop(inner);
            let mut ran = false;
            for entry in &candidates {
                // Emptying the entry matters even when the job was claimed elsewhere (by a
                // `join`): the queue's reference would otherwise keep the job alive, and this
                // wait waiting, until a worker dequeued the entry, and every worker may be
                // blocked in a wait like this one.
                if let Some(task) = entry.take() {
                    // Does nothing if the job was claimed already.
                    shared.run_nested(|| task.run());
                    ran = true;
                }
            }
            // Dropping the last reference destroys a job, which locks the state: not held here.
            drop(candidates);
            inner = lock(&self.inner);
            inner.prune();
            if ran || inner.pending == 0 || inner.changes != seen {
                continue;
            }
            if suspension.is_none() {
                // Nothing to run: this thread is about to block in a boundpool wait.
                drop(inner);
                suspension = Some(Suspension::new());
                inner = lock(&self.inner);
                continue;
            }
            inner.waiting = true;
            inner = self
                .changed
                .wait(inner)
                .unwrap_or_else(PoisonError::into_inner);
            inner.waiting = false;
        }
    }
}

/// What the queue holds for a scoped job: a reference to it that the scope's waiter can take
/// back. Without it, a job claimed by a waiter or a `join` would stay alive in its queue entry
/// until a worker dequeued it, and a scope waits until its jobs are destroyed.
struct QueueEntry {
    task: Mutex<Option<Arc<dyn SharedTask>>>,
}

impl QueueEntry {
    /// Takes the job out of the entry, with the queue's reference to it.
    fn take(&self) -> Option<Arc<dyn SharedTask>> {
        lock(&self.task).take()
    }
}

impl SharedTask for QueueEntry {
    fn run(&self) {
        if let Some(task) = self.take() {
            task.run();
        }
    }
    fn cancel(&self) {
        if let Some(task) = self.take() {
            task.cancel();
        }
    }
    fn set_stamp(&self, stamp: Stamp) {
        if let Some(task) = lock(&self.task).as_ref() {
            task.set_stamp(stamp);
        }
    }
    fn stamp(&self) -> Stamp {
        lock(&self.task)
            .as_ref()
            .map_or_else(Stamp::default, |task| task.stamp())
    }
    fn is_queued(&self) -> bool {
        lock(&self.task)
            .as_ref()
            .is_some_and(|task| task.is_queued())
    }
}

/// A scoped job: the slot plus a share of its scope's state.
///
/// Its `Drop` is what the scope waits for: it first destroys whatever the slot still holds (the
/// closure with its captures if it never ran, an unjoined result), then decrements the scope's
/// count, and touches nothing borrowed after that.
struct ScopedTask<'scope, F, R> {
    slot: Slot<F, R>,
    scope: Arc<ScopeState>,
    _scope: PhantomData<&'scope ()>,
}

impl<F, R> Drop for ScopedTask<'_, F, R> {
    fn drop(&mut self) {
        let unjoined_panic = match self.slot.take_state() {
            State::Done(Err(JobError::Panicked(p))) => Some(p.into_inner()),
            // A closure that never ran (and its captures), an unjoined value: dropped here,
            // while the scope still waits for this job. A panic in their `Drop` is caught (it
            // must not skip the decrement below, which the scope waits for) and re-raised by
            // the scope like a job's panic.
            other => drop_catching(other),
        };
        self.scope.complete(unjoined_panic);
    }
}

impl<F, R> SharedTask for ScopedTask<'_, F, R>
where
    F: FnOnce() -> R + Send,
    R: Send,
{
    fn run(&self) {
        self.slot.run();
    }
    fn cancel(&self) {
        self.slot.cancel();
    }
    fn set_stamp(&self, stamp: Stamp) {
        self.slot.set_stamp(stamp);
    }
    fn stamp(&self) -> Stamp {
        self.slot.stamp()
    }
    fn is_queued(&self) -> bool {
        self.slot.is_queued()
    }
}

impl<F, R> Awaitable<R> for ScopedTask<'_, F, R>
where
    F: FnOnce() -> R + Send,
    R: Send,
{
    fn join(&self) -> Result<R, JobError> {
        self.slot.join()
    }
    fn is_finished(&self) -> bool {
        self.slot.is_finished()
    }
    fn wait_timeout(&self, timeout: std::time::Duration) -> bool {
        self.slot.wait_timeout(timeout)
    }
}

/// A scope in which jobs may borrow anything that outlives it; created by
/// [`WorkerPool::scope`].
///
/// Like [`std::thread::Scope`]: `'scope` is the scope's own lifetime, `'env` that of what its jobs
/// borrow. `Scope` is `Sync`, so scoped jobs can capture `&Scope` and start more scoped jobs.
pub struct Scope<'scope, 'env: 'scope> {
    pool: &'env WorkerPool,
    state: Arc<ScopeState>,
    /// Invariance over `'scope` and `'env`, as in `std::thread::Scope`.
    scope: PhantomData<&'scope mut &'scope ()>,
    env: PhantomData<&'env mut &'env ()>,
}

/// A handle to the result of a scoped job, from [`Scope::spawn`].
///
/// It cannot outlive the scope. A scoped job's panic goes to its handle's
/// [`join`](ScopedJobHandle::join); a panic nobody joined makes [`WorkerPool::scope`] panic once
/// every job has finished.
pub struct ScopedJobHandle<'scope, R> {
    task: Arc<dyn Awaitable<R> + 'scope>,
}

impl<R> ScopedJobHandle<'_, R> {
    /// Waits for the job and returns its value; if the job is still queued, runs it on this
    /// thread.
    ///
    /// # Errors
    ///
    /// [`JobError::Panicked`] if the job panicked.
    pub fn join(self) -> Result<R, JobError> {
        self.task.join()
    }

    /// Whether the job has finished, without blocking.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

impl<'scope, 'env> Scope<'scope, 'env> {
    /// Runs `job` on the pool; it may borrow anything that outlives the scope.
    ///
    /// Blocks while the queue is full, like [`WorkerPool::submit`] (caller-runs included). If
    /// the job panics, the scope panics with that payload once every job has finished (the first
    /// such payload, if several).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    ///
    /// let pool = boundpool::WorkerPool::new(2, 8);
    /// let words = ["tea", "coffee", "mate"];
    /// let letters = AtomicUsize::new(0);
    /// pool.scope(|s| {
    ///     for w in &words {
    ///         let letters = &letters;
    ///         s.submit(move || {
    ///             letters.fetch_add(w.len(), Ordering::Relaxed);
    ///         });
    ///     }
    /// });
    /// assert_eq!(letters.into_inner(), 13);
    /// ```
    pub fn submit<F>(&'scope self, job: F)
    where
        F: FnOnce() + Send + 'scope,
    {
        drop(self.spawn(job));
    }

    /// Runs `job` on the pool and returns a handle to its result; `job` may borrow anything that
    /// outlives the scope.
    ///
    /// Blocks while the queue is full, like [`WorkerPool::spawn`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = boundpool::WorkerPool::new(2, 8);
    /// let data = vec![1, 2, 3, 4, 5, 6];
    /// let (left, right) = data.split_at(3);
    /// let total = pool.scope(|s| {
    ///     let a = s.spawn(|| left.iter().sum::<i32>());
    ///     let b = s.spawn(|| right.iter().sum::<i32>());
    ///     a.join().unwrap() + b.join().unwrap()
    /// });
    /// assert_eq!(total, 21);
    /// ```
    pub fn spawn<F, R>(&'scope self, job: F) -> ScopedJobHandle<'scope, R>
    where
        F: FnOnce() -> R + Send + 'scope,
        R: Send + 'scope,
    {
        // A large closure is boxed, as in `WorkerPool::spawn`: moved by value on its way to the
        // call, it would be copied onto the running thread's stack more than once.
        if std::mem::size_of::<F>() > BOX_ABOVE {
            self.spawn_slot(Box::new(job))
        } else {
            self.spawn_slot(job)
        }
    }

    /// [`spawn`](Scope::spawn) with the closure as it goes into the slot (boxed if large).
    fn spawn_slot<F, R>(&'scope self, job: F) -> ScopedJobHandle<'scope, R>
    where
        F: FnOnce() -> R + Send + 'scope,
        R: Send + 'scope,
    {
        self.state.add();
        let task = Arc::new(ScopedTask {
            slot: Slot::new(job, Arc::clone(self.pool.shared())),
            scope: Arc::clone(&self.state),
            _scope: PhantomData,
        });
        let scoped: Arc<dyn SharedTask + 'scope> = task.clone();
        // SAFETY: this erases `'scope` so the job can travel through the pool's queue, whose
        // items are `'static`. No use of the job can outlive `'scope`, because:
        // - `WorkerPool::scope` does not return (nor unwind) before `ScopeState::wait_all` has
        //   seen `pending == 0`; `pending` was incremented above, before the job existed.
        // - `pending` is decremented only in `ScopedTask::drop`, i.e. when the last `Arc` to
        //   the job (queue entry, worker, handle, waiter's snapshot) is gone, and only after
        //   `take_state` has dropped everything in the slot that may borrow from the scope: the
        //   closure and its captures if it never ran, the result if no handle took it. The
        //   closure is otherwise consumed when it runs, inside `Slot::execute`, and its result
        //   is stored in the slot before the runner drops its `Arc`.
        // - After the decrement the job touches only its own `Arc<ScopeState>` (owned, not
        //   borrowed) and then frees its memory, which borrows nothing.
        // - Every path ends in that drop: run (the runner's `Arc` is released after `execute`),
        //   panic (`execute` catches it and stores it in the slot, then likewise), cancel (only
        //   `shutdown_now`'s `Job` cancels, and it needs the pool by value, which the scope
        //   borrows), and a job never handed to the queue (its `Arc` is dropped on return).
        //   The queue itself cannot drop the job unrun while the scope lives: it is closed only
        //   when the pool is dropped or shut down, which the scope's borrow of the pool forbids.
        // - The queue holds the job through a `QueueEntry`, which `wait_all` empties (and drops
        //   the queue's reference outside every lock), so a queue entry that no worker has
        //   reached yet cannot keep the job, nor the scope, waiting; a worker that later
        //   dequeues an emptied entry does nothing. The `Weak` kept in `ScopeState::queued`
        //   points at the entry and keeps nothing alive.
        // Forgetting a `ScopedJobHandle` leaks the job: the scope then waits forever, which is
        // safe (as with a forgotten `std::thread::ScopedJoinHandle`).
        let erased: Arc<dyn SharedTask + 'static> = unsafe {
            std::mem::transmute::<Arc<dyn SharedTask + 'scope>, Arc<dyn SharedTask + 'static>>(
                scoped,
            )
        };
        let entry = Arc::new(QueueEntry {
            task: Mutex::new(Some(erased)),
        });
        let weak = Arc::downgrade(&entry);
        self.pool.send_blocking(Work::Shared(entry));
        // Only now, once the job is accepted and stamped with its idle epoch, may the scope's
        // waiter run it: run before, it would count as finished in an epoch it was never
        // accepted in, and `wait_idle`'s counts would stay off for good.
        self.state.track(weak);
        ScopedJobHandle { task }
    }
}

impl WorkerPool {
    /// Runs `f` with a [`Scope`] in which jobs may borrow from the caller's stack, like
    /// [`std::thread::scope`] but on the pool's workers.
    ///
    /// `f` runs on the calling thread. `scope` returns only after every scoped job has finished,
    /// also when `f` panics (the panic is then re-raised after the wait). Opened inside a job,
    /// the calling thread runs scoped jobs that are still queued while it waits, so the scope
    /// finishes even on a one-worker pool; opened anywhere else, every scoped job runs on the
    /// pool's workers. Returns what `f` returns.
    ///
    /// # Panics
    ///
    /// If `f` panics (its payload), or else if a scoped job panicked and nobody
    /// [`join`](ScopedJobHandle::join)ed it (the first such payload, intact).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Mutex;
    ///
    /// let pool = boundpool::WorkerPool::new(4, 16);
    /// let mut squares = vec![0u64; 100];
    /// let log = Mutex::new(Vec::new());
    /// pool.scope(|s| {
    ///     for (i, slot) in squares.iter_mut().enumerate() {
    ///         let log = &log;
    ///         s.submit(move || {
    ///             *slot = (i * i) as u64;
    ///             if i % 25 == 0 {
    ///                 log.lock().unwrap().push(i);
    ///             }
    ///         });
    ///     }
    /// });
    /// assert_eq!(squares[9], 81);
    /// assert_eq!(log.into_inner().unwrap().len(), 4);
    /// ```
    pub fn scope<'env, F, T>(&'env self, f: F) -> T
    where
        F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> T,
    {
        let scope = Scope {
            pool: self,
            state: Arc::new(ScopeState::new()),
            scope: PhantomData,
            env: PhantomData,
        };
        let result = panic::catch_unwind(AssertUnwindSafe(|| f(&scope)));
        scope.state.wait_all(self.shared());
        let job_panic = lock(&scope.state.inner).panic.take();
        match (result, job_panic) {
            (Err(body_panic), job_panic) => {
                // Dropped before the body's panic resumes: dropped while unwinding, a payload
                // whose `Drop` panics would abort the process.
                drop_quietly(job_panic);
                panic::resume_unwind(body_panic)
            }
            (Ok(_), Some(job_panic)) => panic::resume_unwind(job_panic),
            (Ok(value), None) => value,
        }
    }
}

impl fmt::Debug for Scope<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pending = lock(&self.state.inner).pending;
        f.debug_struct("Scope").field("pending", &pending).finish()
    }
}

impl<R> fmt::Debug for ScopedJobHandle<'_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopedJobHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}
