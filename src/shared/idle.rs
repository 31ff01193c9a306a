//! `wait_idle` on [`Shared`]: the epochs' in-flight counts, suspended and lingering jobs, and the
//! waiting itself (see the module docs of `shared` for the protocol).

use super::*;

/// Takes a wait out of the waiters' count when it ends, also by a panic.
struct WaitGuard<'a> {
    shared: &'a Shared,
}

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        self.shared
            .flags
            .0
            .idle_waiters
            .fetch_sub(1, Ordering::SeqCst);
    }
}

/// The slot of `epoch`.
fn slot(epoch: u64) -> usize {
    (epoch % EPOCH_SLOTS as u64) as usize
}

impl context::Suspendable for Shared {
    fn suspend(&self, parity: usize, first: bool) -> Option<u64> {
        self.suspend_job(parity, first)
    }

    /// Counts a suspended job of `parity` as running again.
    fn resume(&self, parity: usize) {
        self.resumes[parity].fetch_add(1, Ordering::SeqCst);
    }
}

impl Shared {
    /// An upper bound on the jobs of `parity` that were in flight and not suspended at one moment
    /// during this call, never below the true count at that moment; so 0 proves a moment at
    /// which every such job had finished or was suspended.
    ///
    /// Each job's events happen in the order accept, (suspend, resume)*, finish (or accept,
    /// reject), and every counter only grows. Terms subtracted (suspends, finished, rejected) are
    /// read first, terms added (resumes, accepted) last: with t* the moment between the two
    /// groups, each read value errs on the side of a larger result than the true count at t*.
    fn unsuspended_in_flight(&self, parity: usize) -> i64 {
        let suspends = self.suspends[parity].load(Ordering::SeqCst);
        let rejected = self.rejected[parity].load(Ordering::SeqCst);
        let finished = self.sum_counters(|c| &c.finished[parity]);
        let resumes = self.resumes[parity].load(Ordering::SeqCst);
        let accepted = self.accepted.0[parity].load(Ordering::SeqCst);
        accepted
            .wrapping_sub(finished)
            .wrapping_sub(rejected)
            .wrapping_sub(suspends)
            .wrapping_add(resumes) as i64
    }

    /// Counts a job of `parity` as suspended in a boundpool wait. The first time a job is
    /// suspended (`first`), it is also registered as lingering until it finishes, under the epoch
    /// it was accepted in, which this returns for the job's frame to keep.
    ///
    /// That epoch is the current one or one still draining: the job is in flight and not yet
    /// suspended, so the drain of its epoch cannot have finished; and the epochs from the oldest
    /// draining one to the current one have distinct slots, so its slot names it.
    /// Registered before the suspension is counted, so a drain that passes over the job finds it
    /// registered.
    fn suspend_job(&self, parity: usize, first: bool) -> Option<u64> {
        let lingering = first.then(|| {
            let mut state = lock(&self.idle);
            // The one epoch from the oldest draining one to the current one in this slot.
            let current = state.generation;
            let epoch = current - (current.wrapping_sub(parity as u64) % EPOCH_SLOTS as u64);
            *state.lingering.entry(epoch).or_insert(0) += 1;
            epoch
        });
        self.suspends[parity].fetch_add(1, Ordering::SeqCst);
        self.notify_idle_waiters();
        lingering
    }

    /// A job registered as lingering under `epoch` has finished.
    #[cold]
    pub(super) fn unlinger(&self, epoch: u64) {
        let mut state = lock(&self.idle);
        if let Some(count) = state.lingering.get_mut(&epoch) {
            *count -= 1;
            if *count == 0 {
                state.lingering.remove(&epoch);
            }
        }
        self.notify_locked(&mut state);
    }

    /// Wakes the threads in `wait_idle`, if there are any: the check inline, on the hot path;
    /// the wake-up out of line.
    #[inline]
    pub(crate) fn notify_idle_waiters(&self) {
        if self.flags.0.idle_waiters.load(Ordering::SeqCst) > 0 {
            self.notify_idle();
        }
    }

    /// Wakes the threads in `wait_idle`: off the hot path, which only checks that there are some.
    #[cold]
    pub(super) fn notify_idle(&self) {
        self.notify_locked(&mut lock(&self.idle));
    }

    /// Wakes the threads in `wait_idle`, under the idle lock (`state` is its guard's content).
    /// Every notification bumps `notified`, which a helper that let go of the lock to run a job
    /// compares to tell whether it missed one.
    fn notify_locked(&self, state: &mut IdleState) {
        state.notified = state.notified.wrapping_add(1);
        self.idle_cv.notify_all();
    }

    /// Sleeps on `idle_cv` until notified, or until `deadline` if there is one; `Err` (with the
    /// guard) once the deadline has passed.
    fn wait_for_change<'a>(
        &self,
        state: MutexGuard<'a, IdleState>,
        deadline: Option<Instant>,
    ) -> Result<MutexGuard<'a, IdleState>, MutexGuard<'a, IdleState>> {
        match deadline {
            None => Ok(self
                .idle_cv
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner)),
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    return Err(state);
                }
                Ok(self
                    .idle_cv
                    .wait_timeout(state, d - now)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0)
            }
        }
    }

    /// Waits until no job accepted in an epoch up to `target` lingers (see `suspend_job`), or until
    /// `deadline`; true if none does.
    fn wait_lingering(
        &self,
        mut state: MutexGuard<'_, IdleState>,
        target: u64,
        deadline: Option<Instant>,
    ) -> bool {
        loop {
            if state.lingering.range(..=target).next().is_none() {
                return true;
            }
            state = match self.wait_for_change(state, deadline) {
                Ok(state) => state,
                Err(_) => return false,
            };
        }
    }

    /// The accepted counts of every epoch slot, for [`Stamp::is_before`].
    fn accepted_counts(&self) -> [u64; EPOCH_SLOTS] {
        std::array::from_fn(|i| self.accepted.0[i].load(Ordering::SeqCst))
    }

    /// `wait_idle` / `wait_idle_timeout`: true once every job accepted before the call has
    /// finished (inside a job: or is suspended in a boundpool wait, or lies beneath this call on
    /// this thread's stack); false if `deadline` passed first.
    ///
    /// Untimed and on a thread running one of this pool's jobs, it helps: it takes jobs out of
    /// the queue, runs those accepted before the call (the ones it waits for: see [`help`]), and
    /// sets later ones aside for the workers. Every pool thread might be waiting here, so
    /// without help the jobs it waits for might never run. A timed wait never runs a job (it
    /// could not keep its deadline), and a wait on any other thread has nobody depending on it.
    ///
    /// [`help`]: Self::help
    pub(crate) fn wait_idle(
        self: &Arc<Self>,
        tx: &Sender<Envelope>,
        deadline: Option<Instant>,
    ) -> bool {
        // Our own frames are beneath this call: suspending them takes them out of the count.
        let _suspension = Suspension::new();
        let helps = deadline.is_none() && context::in_pool(&**self);
        // Outside every job nothing can be waiting for this thread: it waits for the jobs
        // suspended in a boundpool wait as well.
        let outside = !context::in_any_job();
        let mut state = lock(&self.idle);
        self.flags.0.idle_waiters.fetch_add(1, Ordering::SeqCst);
        // A job stamped below these counts was accepted before they were read: the ones this
        // wait may run. Read again when the wait moves the epoch on (below).
        let mut before = self.accepted_counts();
        let _guard = WaitGuard { shared: self };
        // The last epoch this wait waits for, once it has moved the epoch on.
        let mut target = None;
        let idle = loop {
            // Epochs drain in order: the oldest draining one has drained once none of its jobs
            // is in flight and not suspended (all its slot's other epochs have drained).
            let mut drained = false;
            while state.drained_below < state.generation
                && self.unsuspended_in_flight(slot(state.drained_below)) <= 0
            {
                state.drained_below += 1;
                drained = true;
            }
            if drained {
                self.notify_locked(&mut state);
            }
            match target {
                Some(target) if state.drained_below > target => break true,
                Some(_) => {}
                None if state.generation - state.drained_below < EPOCH_SLOTS as u64 - 1 => {
                    // Move the epoch on: the jobs accepted from here on do not hold this wait
                    // up. Every job of the epochs it waits for was counted before the counts
                    // read now, so it may run any of them: it never waits for a job it may not
                    // run. (Had every slot been draining, the call came before this, and the jobs
                    // accepted in between are waited for, and so may be run, too.)
                    target = Some(state.generation);
                    state.generation += 1;
                    self.flags
                        .0
                        .epoch
                        .store(state.generation as usize, Ordering::SeqCst);
                    before = self.accepted_counts();
                    continue;
                }
                // Every slot is draining: wait for the oldest epoch to drain first.
                None => {}
            }
            if helps {
                let seen = state.notified;
                // Before this wait has moved the epoch on, the current epoch holds jobs accepted
                // after the call as well: it helps only with the closed epochs until then.
                let epochs = (
                    state.drained_below,
                    target.unwrap_or(state.generation.saturating_sub(1)),
                );
                drop(state);
                let ran = self.help(tx, before, epochs);
                state = lock(&self.idle);
                // Whatever happened while the lock was free (a job finishing on another thread,
                // a producer sending after our `try_recv`, another waiter finishing a drain)
                // notified under the lock, and that notification went to no one: look again
                // instead of sleeping through it.
                if ran || state.notified != seen {
                    continue;
                }
            }
            state = match self.wait_for_change(state, deadline) {
                Ok(state) => state,
                Err(timed_out) => {
                    state = timed_out;
                    break false;
                }
            };
        };
        let target = target.unwrap_or(0);
        // Every job accepted up to `target` has now finished or is suspended in a wait, and a
        // suspended one is registered as lingering (see `suspend_job`). Outside every job, wait for
        // those to finish as well: they do so without this thread's help.
        idle && (!outside || self.wait_lingering(state, target, deadline))
    }

    /// Whether some job accepted in an epoch from `first` to `last` may not have started yet
    /// (queued, in the overflow, or between its count and its send). Never false while one has
    /// not: the terms subtracted (started, rejected) are read before the one added (accepted).
    fn any_unstarted(&self, first: u64, last: u64) -> bool {
        (first..=last).any(|epoch| {
            let slot = slot(epoch);
            let started = self.sum_counters(|c| &c.started[slot]);
            let rejected = self.rejected[slot].load(Ordering::SeqCst);
            let accepted = self.accepted.0[slot].load(Ordering::SeqCst);
            accepted.wrapping_sub(rejected).wrapping_sub(started) as i64 > 0
        })
    }

    /// One round of `wait_idle`'s help, for a wait on the epochs from `first` to `last`: runs a
    /// job of those epochs accepted before the wait began (stamped below `before`) that is still
    /// waiting; true if it ran one.
    ///
    /// It looks in the overflow first (a job another wait set aside, or a re-entrant submit
    /// overflowed), then takes jobs out of the queue, but only while such a job has not started:
    /// once every job the wait waits for has started, there is nothing left for it to run, and
    /// taking later jobs out of the queue would only move them beyond its capacity.
    ///
    /// A later job must not run beneath the wait: it might wait for the waiting job (a deadlock)
    /// or take a lock the waiting job holds. So the later jobs it takes out of the queue are set
    /// aside at the front of the overflow, in queue order, where the workers take them before
    /// anything queued. The queue is FIFO and holds at most `capacity` jobs, so a job waited for
    /// has at most `capacity - 1` later jobs ahead of it: that many are set aside to reach it
    /// (more only while it is between its count and its send). Wake-ups for a worker met on the
    /// way are passed on. A round ends when the queue is empty or the job is found.
    ///
    /// The job found runs nested here, or on a helper thread past `MAX_NESTING` (see
    /// [`run_nested`](Self::run_nested)); with every helper thread taken, the waiting job panics
    /// (see [`too_deep`](Self::too_deep)), after giving the job back to the workers.
    fn help(
        self: &Arc<Self>,
        tx: &Sender<Envelope>,
        before: [u64; EPOCH_SLOTS],
        (first, last): (u64, u64),
    ) -> bool {
        // The slots of the epochs waited for: a job of a later epoch counted before `before`
        // was read is not one of them.
        let waited = (first..=last).fold(0u32, |m, e| m | 1 << slot(e));
        let ours = |e: &Envelope| {
            e.stamp()
                .is_some_and(|s| waited & 1 << s.parity != 0 && s.is_before(before))
        };
        let mut run = self.take_overflow_if(ours);
        let mut aside = VecDeque::new();
        let mut took = false;
        while run.is_none() && self.any_unstarted(first, last) {
            let Ok(envelope) = self.rx.try_recv() else {
                break;
            };
            took = true;
            self.after_dequeue();
            if ours(&envelope) {
                run = Some(envelope);
            } else {
                aside.push_back(envelope); // a later job, or a wake-up passed on below
            }
        }
        if !aside.is_empty() {
            self.set_aside(aside, tx);
        } else if took && self.flags.0.overflow.load(Ordering::SeqCst) > 0 {
            // What this round took out of the queue might have been what a worker was to wake
            // up for before looking at the overflow.
            self.wake_a_worker(tx);
        }
        let Some(envelope) = run else {
            return false;
        };
        if self.can_nest() {
            self.run_nested(|| self.run_envelope(context::worker_index(&**self), envelope));
        } else {
            // Give the job back to the workers before this wait gives up.
            self.set_aside(VecDeque::from([envelope]), tx);
            self.too_deep("wait_idle");
        }
        true
    }
}
