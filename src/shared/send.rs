//! The producer side of [`Shared`]: handing a job to the queue with its accounting, blocking on a
//! full queue (a short spin, then parking until the queue has drained to the low-water mark), the
//! rendezvous slices of capacity 0, and the workers' wake-up of parked producers.

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
        let parity = self.accept();
        work.set_parity(parity);
        match send(Envelope::new(work, parity)) {
            Ok(()) => {
                self.notify_idle_waiters();
                Ok(())
            }
            Err(envelope) => {
                self.reject(parity);
                Err(envelope.into_work())
            }
        }
    }

    /// Hands `work` to the queue, waiting while it is full: until `deadline` if there is one
    /// (then the work comes back), else for as long as it takes. Without a deadline, on a thread
    /// that is running one of this pool's jobs, a full queue makes the job run inline instead
    /// (caller-runs: that thread may be what the queue is waiting for).
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
            if deadline.is_none() && context::in_pool(self) {
                self.run_inline(work);
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
    fn park(&self, tx: &Sender<Envelope>, deadline: Option<Instant>) {
        let me = thread::current();
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
            let mut wait = PARK_GUARD;
            if let Some(d) = deadline {
                let now = Instant::now();
                if now >= d {
                    break;
                }
                wait = wait.min(d - now);
            }
            thread::park_timeout(wait);
        }
        // Still on the list if nobody woke this thread (it never parked, or timed out).
        lock(&self.parked_producers).retain(|t| t.id() != me.id());
    }

    /// Called after each dequeue (by [`run_dequeued`](Self::run_dequeued)): wakes parked
    /// producers once the queue has drained to the low-water mark, so that a producer wakes once
    /// per many jobs, not once per job.
    #[inline]
    pub(super) fn after_dequeue(&self) {
        let flags = &self.flags.0;
        if flags.parked.load(Ordering::SeqCst)
            && self.rx.len() <= self.low_water
            && flags.parked.swap(false, Ordering::SeqCst)
        {
            // Unparked outside the lock: see `park`.
            let waiting = std::mem::take(&mut *lock(&self.parked_producers));
            for producer in waiting {
                producer.unpark();
            }
        }
    }
}
