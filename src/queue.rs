//! The pool's queue: a bounded MPMC channel. In a normal build this *is* `crossbeam_channel`
//! (re-exported, not wrapped: the hot path `submit` → worker is crossbeam's send and receive and
//! nothing else).
//!
//! Built with `RUSTFLAGS="--cfg shuttle"` it is a Mutex + Condvar queue on
//! [`crate::sync`]'s primitives instead, with crossbeam's method names, semantics and error types,
//! because the shuttle model checker cannot schedule crossbeam's own lock-free waiting. What it
//! keeps of crossbeam's behaviour: FIFO order; a capacity bound (`send` blocks while full); a
//! capacity of 0 is a rendezvous (a `send` completes only when a receiver takes the message,
//! `try_send` succeeds only when a receiver is blocked in `recv`, `try_recv` only when a sender is
//! blocked in `send`; `len` is 0 and `is_empty` and `is_full` are both true); the channel
//! disconnects when the last `Sender` or the last `Receiver` is dropped, and receivers drain what
//! is buffered before they see the disconnection. Timeouts are modelled on the virtual clock of
//! [`crate::sync`]: a timed operation that has to wait yields to the other threads and reads the
//! clock until its deadline passes, so it may time out after any schedule. What it does not keep
//! is crossbeam's lock-freedom: every operation takes the queue's lock (a scheduling point).

#[cfg(not(shuttle))]
pub(crate) use crossbeam_channel::{
    bounded, Receiver, RecvTimeoutError, SendTimeoutError, Sender, TrySendError,
};

#[cfg(shuttle)]
pub(crate) use crossbeam_channel::{RecvTimeoutError, SendTimeoutError, TrySendError};
#[cfg(shuttle)]
pub(crate) use model::{bounded, Receiver, Sender};

#[cfg(shuttle)]
#[allow(dead_code)] // crossbeam's API, whether or not the crate calls every method today
mod model {
    use std::collections::VecDeque;
    use std::time::Duration;

    use crossbeam_channel::{
        RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError,
    };

    use crate::sync::{thread, Arc, Condvar, Instant, Mutex, MutexGuard, PoisonError};

    /// A bounded channel of `capacity` slots; 0 makes it a rendezvous.
    pub(crate) fn bounded<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
        let chan = Arc::new(Chan {
            state: Mutex::new(State {
                buf: VecDeque::new(),
                offers: VecDeque::new(),
                next_ticket: 0,
                handed: VecDeque::new(),
                idle_receivers: 0,
                senders: 1,
                receivers: 1,
            }),
            changed: Condvar::new(),
            capacity,
        });
        (
            Sender {
                chan: Arc::clone(&chan),
            },
            Receiver { chan },
        )
    }

    struct Chan<T> {
        state: Mutex<State<T>>,
        /// Notified (all) on every change anyone could be waiting for.
        changed: Condvar,
        capacity: usize,
    }

    struct State<T> {
        /// Capacity > 0: the buffered messages, oldest first.
        buf: VecDeque<T>,
        /// Capacity 0: the messages of senders blocked in `send`, with their tickets, oldest
        /// first. A sender's send completes when a receiver removes its ticket.
        offers: VecDeque<(u64, T)>,
        next_ticket: u64,
        /// Capacity 0: messages whose send completed by pairing with a receiver blocked in `recv`
        /// (`try_send`, or a `send` that found one); only such blocked receivers take them, so
        /// `handed.len() <= idle_receivers` always.
        handed: VecDeque<T>,
        /// Capacity 0: receivers blocked in `recv`.
        idle_receivers: usize,
        senders: usize,
        receivers: usize,
    }

    impl<T> Chan<T> {
        fn lock(&self) -> MutexGuard<'_, State<T>> {
            self.state.lock().unwrap_or_else(PoisonError::into_inner)
        }

        /// Waits for a change, or with a deadline lets the other threads run once: gives the
        /// guard back as `Err` once `deadline` has passed. A timed wait spins on the virtual
        /// clock (each reading advances it) instead of blocking, so that its timeout is modelled:
        /// it ends once enough scheduling steps have passed, whether or not anyone wakes it.
        fn wait<'a>(
            &'a self,
            state: MutexGuard<'a, State<T>>,
            deadline: Option<Instant>,
        ) -> Result<MutexGuard<'a, State<T>>, MutexGuard<'a, State<T>>> {
            match deadline {
                None => Ok(self
                    .changed
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner)),
                Some(d) if Instant::now() >= d => Err(state),
                Some(_) => {
                    drop(state);
                    thread::yield_now();
                    Ok(self.lock())
                }
            }
        }

        /// `send` with an optional deadline; gives the message back on failure.
        fn send(&self, msg: T, deadline: Option<Instant>) -> Result<(), SendTimeoutError<T>> {
            let mut state = self.lock();
            if self.capacity > 0 {
                loop {
                    if state.receivers == 0 {
                        return Err(SendTimeoutError::Disconnected(msg));
                    }
                    if state.buf.len() < self.capacity {
                        state.buf.push_back(msg);
                        self.changed.notify_all();
                        return Ok(());
                    }
                    state = match self.wait(state, deadline) {
                        Ok(s) => s,
                        Err(_) => return Err(SendTimeoutError::Timeout(msg)),
                    };
                }
            }
            if state.receivers == 0 {
                return Err(SendTimeoutError::Disconnected(msg));
            }
            if state.idle_receivers > state.handed.len() {
                state.handed.push_back(msg);
                self.changed.notify_all();
                return Ok(());
            }
            let ticket = state.next_ticket;
            state.next_ticket += 1;
            state.offers.push_back((ticket, msg));
            self.changed.notify_all();
            loop {
                if !state.offers.iter().any(|(t, _)| *t == ticket) {
                    return Ok(()); // a receiver took it
                }
                let failure = if state.receivers == 0 {
                    SendTimeoutError::Disconnected
                } else {
                    match self.wait(state, deadline) {
                        Ok(s) => {
                            state = s;
                            continue;
                        }
                        Err(s) => {
                            state = s;
                            SendTimeoutError::Timeout
                        }
                    }
                };
                let i = state.offers.iter().position(|(t, _)| *t == ticket);
                return match i.and_then(|i| state.offers.remove(i)) {
                    Some((_, msg)) => Err(failure(msg)),
                    None => unreachable!("boundpool: the offer was checked under this lock"),
                };
            }
        }

        fn try_send(&self, msg: T) -> Result<(), TrySendError<T>> {
            let mut state = self.lock();
            if state.receivers == 0 {
                return Err(TrySendError::Disconnected(msg));
            }
            if self.capacity > 0 {
                if state.buf.len() >= self.capacity {
                    return Err(TrySendError::Full(msg));
                }
                state.buf.push_back(msg);
            } else {
                if state.idle_receivers <= state.handed.len() {
                    return Err(TrySendError::Full(msg));
                }
                state.handed.push_back(msg);
            }
            self.changed.notify_all();
            Ok(())
        }

        /// Takes a message without blocking: `Err(true)` if none and disconnected.
        fn take(&self, state: &mut State<T>) -> Result<T, bool> {
            let msg = if self.capacity > 0 {
                state.buf.pop_front()
            } else {
                state.offers.pop_front().map(|(_, msg)| msg)
            };
            match msg {
                Some(msg) => {
                    self.changed.notify_all();
                    Ok(msg)
                }
                None => Err(state.senders == 0),
            }
        }

        fn try_recv(&self) -> Result<T, TryRecvError> {
            self.take(&mut self.lock()).map_err(|disconnected| {
                if disconnected {
                    TryRecvError::Disconnected
                } else {
                    TryRecvError::Empty
                }
            })
        }

        fn recv(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
            let mut state = self.lock();
            match self.take(&mut state) {
                Ok(msg) => return Ok(msg),
                Err(true) => return Err(RecvTimeoutError::Disconnected),
                Err(false) => {}
            }
            if self.capacity == 0 {
                state.idle_receivers += 1;
            }
            let result = loop {
                if self.capacity == 0 {
                    if let Some(msg) = state.handed.pop_front() {
                        break Ok(msg);
                    }
                }
                match self.take(&mut state) {
                    Ok(msg) => break Ok(msg),
                    Err(true) => break Err(RecvTimeoutError::Disconnected),
                    Err(false) => {}
                }
                state = match self.wait(state, deadline) {
                    Ok(s) => s,
                    Err(s) => {
                        state = s;
                        break Err(RecvTimeoutError::Timeout);
                    }
                };
            };
            if self.capacity == 0 {
                state.idle_receivers -= 1;
            }
            result
        }

        fn len(&self) -> usize {
            self.lock().buf.len()
        }
    }

    /// The sending side; cloning adds a sender, dropping the last disconnects the receivers.
    pub(crate) struct Sender<T> {
        chan: Arc<Chan<T>>,
    }

    /// The receiving side; cloning adds a receiver, dropping the last disconnects the senders.
    pub(crate) struct Receiver<T> {
        chan: Arc<Chan<T>>,
    }

    /// The observers both ends have, as on crossbeam's `Sender` and `Receiver`.
    macro_rules! observers {
        ($end:ident) => {
            impl<T> $end<T> {
                pub(crate) fn len(&self) -> usize {
                    self.chan.len()
                }

                pub(crate) fn is_empty(&self) -> bool {
                    self.len() == 0
                }

                pub(crate) fn is_full(&self) -> bool {
                    self.len() >= self.chan.capacity
                }

                pub(crate) fn capacity(&self) -> Option<usize> {
                    Some(self.chan.capacity)
                }
            }
        };
    }
    observers!(Sender);
    observers!(Receiver);

    impl<T> Sender<T> {
        pub(crate) fn send(&self, msg: T) -> Result<(), SendError<T>> {
            self.chan
                .send(msg, None)
                .map_err(|e| SendError(e.into_inner()))
        }

        pub(crate) fn try_send(&self, msg: T) -> Result<(), TrySendError<T>> {
            self.chan.try_send(msg)
        }

        pub(crate) fn send_timeout(
            &self,
            msg: T,
            timeout: Duration,
        ) -> Result<(), SendTimeoutError<T>> {
            self.chan.send(msg, Instant::now().checked_add(timeout))
        }

        pub(crate) fn send_deadline(
            &self,
            msg: T,
            deadline: Instant,
        ) -> Result<(), SendTimeoutError<T>> {
            self.chan.send(msg, Some(deadline))
        }
    }

    impl<T> Receiver<T> {
        pub(crate) fn recv(&self) -> Result<T, RecvError> {
            self.chan.recv(None).map_err(|_| RecvError)
        }

        pub(crate) fn try_recv(&self) -> Result<T, TryRecvError> {
            self.chan.try_recv()
        }

        pub(crate) fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
            self.chan.recv(Instant::now().checked_add(timeout))
        }

        pub(crate) fn recv_deadline(&self, deadline: Instant) -> Result<T, RecvTimeoutError> {
            self.chan.recv(Some(deadline))
        }
    }

    impl<T> Clone for Sender<T> {
        fn clone(&self) -> Sender<T> {
            self.chan.lock().senders += 1;
            Sender {
                chan: Arc::clone(&self.chan),
            }
        }
    }

    impl<T> Clone for Receiver<T> {
        fn clone(&self) -> Receiver<T> {
            self.chan.lock().receivers += 1;
            Receiver {
                chan: Arc::clone(&self.chan),
            }
        }
    }

    impl<T> Drop for Sender<T> {
        fn drop(&mut self) {
            let mut state = self.chan.lock();
            state.senders -= 1;
            if state.senders == 0 {
                self.chan.changed.notify_all();
            }
        }
    }

    impl<T> Drop for Receiver<T> {
        fn drop(&mut self) {
            let mut state = self.chan.lock();
            state.receivers -= 1;
            if state.receivers == 0 {
                // As crossbeam does: the messages nobody can receive any more are dropped now,
                // outside the lock (they are user closures).
                let buffered = std::mem::take(&mut state.buf);
                self.chan.changed.notify_all();
                drop(state);
                drop(buffered);
            }
        }
    }
}
