//! [`WorkerPool::map`] and its iterator [`Map`]: an ordered, lazy, bounded parallel map.
//!
//! At most `workers + capacity` items are in flight (pulled from the input and not yet returned),
//! so memory stays flat on any input, infinite ones included. Items the queue has no room for
//! wait in the window unsent. Inside a job, the consumer runs the front item itself when it is
//! still queued (or was never sent), so `next` never needs a free worker; anywhere else it
//! waits for a worker to run it.

use std::collections::VecDeque;
use std::fmt;
use std::iter::FusedIterator;
use std::panic;
use std::sync::Arc;

use crate::context;
use crate::job::{Awaitable, JobError, Slot, Work};
use crate::WorkerPool;

/// Makes the job for the next input item: its result slot and the work to send.
type Feed<R> = Box<dyn FnMut() -> Option<(Arc<dyn Awaitable<R>>, Work)>>;

/// The iterator returned by [`WorkerPool::map`]: yields `f(item)` for each input item, **in
/// input order**, computed on the pool.
///
/// It borrows the pool, so the pool cannot be shut down under it. Dropping a `Map` never blocks:
/// items already handed to the queue still run and their results are dropped.
pub struct Map<'a, R> {
    pool: &'a WorkerPool,
    feed: Feed<R>,
    /// The input is exhausted.
    exhausted: bool,
    /// Results in input order: pulled from the input, not yet returned.
    window: VecDeque<Arc<dyn Awaitable<R>>>,
    /// The work of the window's last item, when the queue had no room for it yet.
    held: Option<Work>,
    /// `workers + capacity`: the most items in the window.
    limit: usize,
    /// Returned `None` or resumed a panic: fused.
    finished: bool,
}

impl WorkerPool {
    /// An ordered, lazy, bounded parallel map: `f` runs on the pool for each item, and the
    /// returned iterator yields the results **in input order**.
    ///
    /// Nothing runs before the first call of `next`. After `next` has returned `n` results, the
    /// input has been advanced at most `n + workers + capacity` times, so memory is bounded on any
    /// input, infinite iterators included. Inside a job, while waiting for the next result in
    /// order, the consuming thread runs that item itself if it is still queued, so `map` works
    /// from inside a job, even on a one-worker pool; on any other thread every item runs on the
    /// pool's workers.
    ///
    /// # Panics
    ///
    /// A panic in `f` for item `k` is resumed, payload intact, by the `k`-th call of `next` on
    /// the consuming thread; the iterator is fused after that.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = boundpool::WorkerPool::new(4, 8);
    /// let lengths: Vec<usize> = pool
    ///     .map(vec!["a", "bb", "ccc"], |s: &str| s.len())
    ///     .collect();
    /// assert_eq!(lengths, [1, 2, 3]);
    ///
    /// // Lazy and bounded: fine on an infinite input.
    /// let first: Vec<u64> = pool.map(1u64.., |n| n * n).take(5).collect();
    /// assert_eq!(first, [1, 4, 9, 16, 25]);
    /// ```
    pub fn map<I, F, R>(&self, items: I, f: F) -> Map<'_, R>
    where
        I: IntoIterator,
        I::Item: Send + 'static,
        I::IntoIter: 'static,
        F: Fn(I::Item) -> R + Send + Sync + 'static,
        R: Send + 'static,
    {
        let f = Arc::new(f);
        let shared = Arc::clone(self.shared());
        let mut items = items.into_iter();
        let feed: Feed<R> = Box::new(move || {
            let item = items.next()?;
            let f = Arc::clone(&f);
            let slot = Arc::new(Slot::new(move || f(item), Arc::clone(&shared)));
            Some((slot.clone() as Arc<dyn Awaitable<R>>, Work::Shared(slot)))
        });
        Map {
            pool: self,
            feed,
            exhausted: false,
            window: VecDeque::new(),
            held: None,
            limit: self.workers() + self.capacity(),
            finished: false,
        }
    }
}

impl<R> Map<'_, R> {
    /// Pulls items into the window and hands them to the queue, without ever blocking.
    fn refill(&mut self) {
        let shared = self.pool.shared();
        loop {
            if let Some(work) = self.held.take() {
                if let Err(work) = shared.try_send(self.pool.sender(), work) {
                    self.held = Some(work);
                    return;
                }
            }
            if self.exhausted || self.window.len() >= self.limit {
                return;
            }
            match (self.feed)() {
                Some((result, work)) => {
                    self.window.push_back(result);
                    self.held = Some(work);
                }
                None => self.exhausted = true,
            }
        }
    }
}

impl<R> Iterator for Map<'_, R> {
    type Item = R;

    fn next(&mut self) -> Option<R> {
        if self.finished {
            return None;
        }
        self.refill();
        let Some(front) = self.window.pop_front() else {
            self.finished = true;
            return None;
        };
        if self.window.is_empty() {
            // `held` belongs to the window's last item, which is `front`, never sent. Inside a
            // job it runs here (nested: this thread may be what the queue waits for); anywhere
            // else it goes to the queue, waiting for room, and a worker runs it.
            if let Some(work) = self.held.take() {
                let shared = self.pool.shared();
                if context::in_any_job() {
                    if !shared.can_nest() {
                        shared.too_deep("map"); // `work` is dropped unrun with the `Map`
                    }
                    shared.run_nested(|| shared.run_inline(work));
                } else {
                    self.pool.send_blocking(work);
                }
            }
        }
        match front.join() {
            Ok(value) => Some(value),
            Err(error) => {
                self.finished = true;
                match error {
                    JobError::Panicked(payload) => panic::resume_unwind(payload.into_inner()),
                    // The pool is borrowed, so nothing can cancel an item.
                    other => unreachable!("boundpool: a map item failed: {other}"),
                }
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.finished {
            (0, Some(0))
        } else if self.exhausted {
            (self.window.len(), Some(self.window.len()))
        } else {
            (self.window.len(), None)
        }
    }
}

impl<R> FusedIterator for Map<'_, R> {}

impl<R> fmt::Debug for Map<'_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Map")
            .field("in_flight", &self.window.len())
            .field("limit", &self.limit)
            .field("exhausted", &self.exhausted)
            .finish()
    }
}
