//! The producer side of [`Shared`]: handing a job to the queue with its accounting, blocking on a
//! full queue (a short spin, then parking until the queue has drained to the low-water mark or
//! the workers stall), the rendezvous slices of capacity 0, the workers' wake-up of parked
//! producers, and the overflow beyond the queue's capacity (re-entrant submits nested
//! [`MAX_NESTING`] deep, and jobs a `wait_idle` set aside).

use super::*;

impl Shared {
    /// Tries to hand `work` to the queue once, with accounting.
    #[inline]
    pub(crate) fn try_send(&self, tx: &Sender<Envelope>, work: Work) -> Result<(), Work> {
        self.send_counted(work, |e| tx.try_send(e).map_err(TrySendError::into_inner))
    }

    /// Hands `work` to the queue through `send` (one attempt of a channel operation that gives
    /// the envelope back if the queue refused it), with the accounting around it: the job is
    /// counted as accepted before, uncounted if refused, and `wait_idle` helpers that may be
    /// waiting for a job to enter the queue are woken if it went in.
    #[inline]
    fn send_counted(
        &self,
        work: Work,
        send: impl FnOnce(Envelope) -> Result<(), Envelope>,
    ) -> Result<(), Work> {
        let (envelope, stamp) = self.seal(work);
        match send(envelope) {
            Ok(()) => {
                self.notify_idle_waiters();
                Ok(())
            }
            Err(envelope) => {
                self.reject(stamp.parity);
                match envelope.into_work() {
                    Some(work) => Err(work),
                    None => unreachable!("boundpool: a refused job comes back as a job"),
                }
            }
        }
    }

    /// Counts `work` as accepted and seals it with its stamp, for the queue or the overflow.
    #[inline]
    fn seal(&self, work: Work) -> (Envelope, Stamp) {
        let stamp = self.accept();
        work.set_stamp(stamp);
        (Envelope::new(work, stamp), stamp)
    }

    /// Hands `work` to the queue, waiting while it is full: until `deadline` if there is one
    /// (then the work comes back), else for as long as it takes. Without a deadline, on a thread
    /// that is running one of this pool's jobs, a full queue makes the job run inline instead
    /// (caller-runs: that thread may be what the queue is waiting for), or, on a thread already
    /// [`MAX_NESTING`] jobs deep, go to the overflow (see [`overflow`](Self::overflow)).
    ///
    /// The first try is inlined into the caller; the waiting is [`send_full`](Self::send_full),
    /// out of line, so that the common case pays for no large stack frame.
    #[inline]
    pub(crate) fn send(
        self: &Arc<Self>,
        tx: &Sender<Envelope>,
        work: Work,
        deadline: Option<Instant>,
    ) -> Result<(), Work> {
        match self.try_send(tx, work) {
            Ok(()) => Ok(()),
            Err(work) => self.send_full(tx, work, deadline),
        }
    }

    /// [`send`](Self::send) after a try found the queue full.
    #[cold]
    #[inline(never)]
    fn send_full(
        self: &Arc<Self>,
        tx: &Sender<Envelope>,
        mut work: Work,
        deadline: Option<Instant>,
    ) -> Result<(), Work> {
        loop {
            if deadline.is_none() && context::in_pool(&**self) {
                self.reenter(tx, work);
                return Ok(());
            }
            if self.capacity == 0 {
                match self.send_rendezvous(tx, work, deadline)? {
                    None => return Ok(()),
                    Some(w) => work = w,
                }
                continue;
            }
            // Resume only once the queue has drained to the low-water mark, spinning briefly
            // first: a producer that resumed at the first free slot would fail again at the
            // next job, waking once per job and burning a core the workers need.
            if !self.spin_until_low(tx, deadline) {
                self.park(tx, deadline);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) && tx.is_full() {
                return Err(work);
            }
            match self.try_send(tx, work) {
                Ok(()) => return Ok(()),
                Err(w) => work = w,
            }
        }
    }

    /// A job submitted into its own full pool by a thread running one of its jobs, which must
    /// neither wait (it may be what the queue waits for) nor nest without bound.
    ///
    /// - Nested fewer than [`MAX_NESTING`] jobs deep, the job runs here (caller-runs). A loop of
    ///   such submits keeps memory flat: each job has finished before the next is made.
    /// - Deeper, it is accepted into the overflow beyond the queue's capacity and this thread
    ///   returns at once; the workers take overflowed jobs before queued ones, at loop level. A
    ///   chain of jobs that each submit the next so runs in stretches of at most `MAX_NESTING`
    ///   nested links, and holds at most one overflowed job at a time, however long it is.
    /// - Deeper, with the overflow already holding `workers + capacity` jobs (a loop of submits
    ///   that deep), the job runs on a helper thread while this one waits (see
    ///   [`run_nested`](Self::run_nested)): the overflow, and memory, stay bounded. Only with
    ///   every helper thread taken as well does the overflow grow further.
    ///
    /// Accepting beyond the capacity is the only way the queue exceeds it, and `Stats::overflow`
    /// shows it.
    fn reenter(self: &Arc<Self>, tx: &Sender<Envelope>, work: Work) {
        if context::nesting() < MAX_NESTING {
            self.run_inline(work);
        } else if self.flags.0.overflow.load(Ordering::Relaxed) < self.workers + self.capacity
            || !self.helper_available()
        {
            self.overflow(self.seal(work).0, tx);
            self.notify_idle_waiters();
        } else {
            self.run_nested(|| self.run_inline(work));
        }
    }

    /// Holds a re-entrant job beyond the queue's capacity, at the back of the overflow, and
    /// makes sure a worker will look (see [`wake_a_worker`](Self::wake_a_worker)).
    fn overflow(&self, envelope: Envelope, tx: &Sender<Envelope>) {
        self.with_overflow(|overflow| overflow.push_back(envelope));
        self.wake_a_worker(tx);
    }

    /// Runs `f` on the overflow under its lock, then publishes its length to the workers' flag.
    /// Every change to the overflow goes through here, so the two never disagree.
    fn with_overflow<T>(&self, f: impl FnOnce(&mut VecDeque<Envelope>) -> T) -> T {
        let mut overflow = lock(&self.overflow);
        let result = f(&mut overflow);
        self.flags
            .0
            .overflow
            .store(overflow.len(), Ordering::SeqCst);
        result
    }

    /// Puts what `wait_idle` took out of the queue and may not run at the front of the overflow,
    /// in the order it came (it preceded everything still queued), and makes sure a worker will
    /// look. Wake-ups among it are not kept: one is sent again.
    pub(super) fn set_aside(&self, aside: VecDeque<Envelope>, tx: &Sender<Envelope>) {
        self.with_overflow(|overflow| {
            for envelope in aside.into_iter().rev() {
                if !matches!(envelope, Envelope::Wake) {
                    overflow.push_front(envelope);
                }
            }
        });
        self.wake_a_worker(tx);
    }

    /// Takes the first job of the overflow that `wanted` picks, for a `wait_idle` that waits for
    /// it.
    pub(super) fn take_overflow_if(&self, wanted: impl Fn(&Envelope) -> bool) -> Option<Envelope> {
        if self.flags.0.overflow.load(Ordering::SeqCst) == 0 {
            return None;
        }
        self.with_overflow(|overflow| {
            let i = overflow.iter().position(wanted)?;
            overflow.remove(i)
        })
    }

    /// Every job held in the overflow, in order (for `shutdown_now`).
    pub(crate) fn drain_overflow(&self) -> VecDeque<Envelope> {
        self.with_overflow(std::mem::take)
    }

    /// Takes the first job of the overflow, if any. The workers call it before every dequeue:
    /// the check inline, one load of a line that is rarely written.
    #[inline]
    pub(crate) fn take_overflow(&self) -> Option<Envelope> {
        if self.flags.0.overflow.load(Ordering::SeqCst) == 0 {
            return None;
        }
        self.take_overflow_slow()
    }

    #[cold]
    fn take_overflow_slow(&self) -> Option<Envelope> {
        self.with_overflow(VecDeque::pop_front)
    }

    /// Makes sure that some worker looks at the overflow after `envelope` went in.
    ///
    /// Workers look before every dequeue, so only a worker blocked on an empty queue could miss
    /// it: a [`Envelope::Wake`] sent into the empty queue reaches such a worker. If the queue
    /// holds jobs, no worker is blocked on it, and the one that takes the next job looks at the
    /// overflow after it. At capacity 0 a send succeeds only while a worker is blocked in
    /// `recv`; a worker that is about to block but has not yet is counted in `looking` (from
    /// before its look at the overflow until its `recv` returns), so the wake-up is retried until
    /// it lands, someone took the overflow, or no worker is between its look and its `recv`. SeqCst pairs the overflow count written above with `looking`
    /// written by the worker: one of the two sides sees the other.
    pub(crate) fn wake_a_worker(&self, tx: &Sender<Envelope>) {
        if self.capacity > 0 {
            // Only an empty queue can have a worker blocked on it; and a wake-up sent into a
            // queue with jobs would take a slot a producer may be waiting for.
            if tx.is_empty() {
                let _ = tx.try_send(Envelope::Wake);
            }
            return;
        }
        while self.flags.0.overflow.load(Ordering::SeqCst) > 0
            && self.flags.0.looking.load(Ordering::SeqCst) > 0
        {
            if tx.try_send(Envelope::Wake).is_ok() {
                return;
            }
            thread::yield_now();
        }
    }

    /// The worker loop's dequeue at a capacity above 0: the overflow first, then the queue,
    /// blocking while both are empty. `None` once the queue is closed and drained and the
    /// overflow is empty.
    #[inline(always)]
    pub(crate) fn next_job(&self, rx: &Receiver<Envelope>) -> Option<Envelope> {
        if let Some(envelope) = self.take_overflow() {
            return Some(envelope);
        }
        match rx.recv() {
            Ok(envelope) => Some(envelope),
            // Closed and drained; what a job still running elsewhere overflowed is run here.
            Err(_) => self.take_overflow(),
        }
    }

    /// [`next_job`](Self::next_job) at capacity 0, with the `looking` count that
    /// [`wake_a_worker`](Self::wake_a_worker) relies on.
    pub(crate) fn next_job_rendezvous(&self, rx: &Receiver<Envelope>) -> Option<Envelope> {
        let looking = &self.flags.0.looking;
        looking.fetch_add(1, Ordering::SeqCst);
        let next = match self.take_overflow() {
            Some(envelope) => Some(envelope),
            None => rx.recv().ok(),
        };
        looking.fetch_sub(1, Ordering::SeqCst);
        next.or_else(|| self.take_overflow())
    }

    /// Capacity 0: nothing would wake a parked producer, so block in the channel's own `send`, in
    /// slices. `Ok(None)`: sent. `Ok(Some(work))`: a slice ended without a taker, retry.
    /// `Err(work)`: the deadline passed.
    fn send_rendezvous(
        &self,
        tx: &Sender<Envelope>,
        work: Work,
        deadline: Option<Instant>,
    ) -> Result<Option<Work>, Work> {
        let now = Instant::now();
        let slice = match deadline {
            Some(d) if d <= now => return Err(work),
            Some(d) => (d - now).min(RENDEZVOUS_SLICE),
            None => RENDEZVOUS_SLICE,
        };
        let sent = self.send_counted(work, |e| {
            tx.send_timeout(e, slice)
                .map_err(SendTimeoutError::into_inner)
        });
        Ok(sent.err())
    }

    /// Spins briefly for the queue to drain to the low-water mark; true if it did.
    fn spin_until_low(&self, tx: &Sender<Envelope>, deadline: Option<Instant>) -> bool {
        let start = Instant::now();
        let end = deadline.map_or(start + SPIN, |d| d.min(start + SPIN));
        let mut i = 0u32;
        loop {
            if tx.len() <= self.low_water {
                return true;
            }
            for _ in 0..(1 << i.min(6)) {
                crate::sync::spin_loop();
            }
            i += 1;
            if Instant::now() >= end {
                return tx.len() <= self.low_water;
            }
        }
    }

    /// Parks until the queue has drained to the low-water mark (or the deadline passes).
    ///
    /// The producer puts its thread on the `parked_producers` list, announces itself in `parked`,
    /// re-checks the queue and parks. The worker that sees the queue at the low-water mark takes
    /// the whole list and unparks each thread after letting go of the lock, so a woken producer
    /// goes straight back to sending. (With a condition variable every woken producer had to take
    /// the lock again, the others and the notifying worker still holding or wanting it: four
    /// producers queued up on it on every wake-up.) An unpark that arrives when this thread no
    /// longer waits for it is a spurious wake-up of some later park, which every park allows;
    /// and an unpark meant for another of this thread's waits that this loop swallows came after
    /// whatever that wait re-checks, so the thread still sees it once it gets there.
    ///
    /// While parked it re-checks every [`STALL`]: once the queue's length has not moved for that
    /// long while a slot is free (no worker takes a job), it stops waiting for the low-water mark (the workers may be blocked on what
    /// this producer does next, and would never drain the queue further) and takes the slot. The
    /// first look at the workers' progress comes after the first park, so a stall is acted on
    /// within about two `STALL`s.
    fn park(&self, tx: &Sender<Envelope>, deadline: Option<Instant>) {
        let me = thread::current();
        // The queue's length and since when it has been that: read only once a park has come
        // back and the queue is still above the mark, so that the common wake-up (by a worker, at
        // the mark) costs no clock reading. A length that does not move while a slot is free
        // means that no worker takes a job (had other producers refilled what the workers took,
        // there would be no free slot): the workers stalled.
        let mut progress: Option<(usize, Instant)> = None;
        let mut parked = false;
        loop {
            {
                let mut waiting = lock(&self.parked_producers);
                if !waiting.iter().any(|t| t.id() == me.id()) {
                    waiting.push(me.clone());
                }
            }
            // Announce, then re-check exactly what the workers wake us on. SeqCst pairs with the
            // SeqCst head update in crossbeam's `recv` followed by the worker's SeqCst load of
            // `parked` (see `after_dequeue`): one of the two sides sees the other. The list entry
            // is in before the announcement, so a worker that sees the one finds the other.
            self.flags.0.parked.store(true, Ordering::SeqCst);
            if tx.len() <= self.low_water {
                break;
            }
            let now = (parked || deadline.is_some()).then(Instant::now);
            if let (true, Some(now)) = (parked, now) {
                let len = tx.len();
                match progress {
                    Some((seen, since)) if seen == len => {
                        if now - since >= STALL && len < self.capacity {
                            break; // the workers stalled above the low-water mark: take the slot
                        }
                    }
                    _ => progress = Some((len, now)),
                }
            }
            let mut wait = STALL;
            if let (Some(d), Some(now)) = (deadline, now) {
                if now >= d {
                    break;
                }
                wait = wait.min(d - now);
            }
            crate::sync::park_timeout(wait);
            parked = true;
        }
        // Still on the list if nobody woke this thread (it never parked, or timed out).
        lock(&self.parked_producers).retain(|t| t.id() != me.id());
    }

    /// Called after each dequeue (by [`run_dequeued`](Self::run_dequeued)): wakes parked
    /// producers once the queue has drained to the low-water mark, so that a producer wakes once
    /// per many jobs, not once per job. Always inlined (see `Shared::run_plain`); the wake-up
    /// itself is out of line.
    #[inline(always)]
    pub(super) fn after_dequeue(&self) {
        if self.flags.0.parked.load(Ordering::SeqCst) {
            self.wake_producers_at_low_water();
        }
    }

    /// [`after_dequeue`](Self::after_dequeue) while a producer is parked.
    #[cold]
    #[inline(never)]
    fn wake_producers_at_low_water(&self) {
        let flags = &self.flags.0;
        if self.rx.len() <= self.low_water && flags.parked.swap(false, Ordering::SeqCst) {
            // Unparked outside the lock: see `park`.
            let waiting = std::mem::take(&mut *lock(&self.parked_producers));
            for producer in waiting {
                producer.unpark();
            }
        }
    }
}
