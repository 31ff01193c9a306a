//! The worker loop: take the overflow's jobs first (see `Shared::next_job`), else receive from
//! the worker's own clone of the queue's receiver (no lock on the receive path), wake parked
//! producers at the low-water mark, run the job under `catch_unwind`
//! with per-worker counters, run the hooks, and exit when the queue is closed and drained (or at
//! once after `shutdown_now`).

use crate::context;
use crate::job::Envelope;
use crate::queue::{Receiver, Sender};
use crate::shared::Shared;
use crate::sync::Arc;

/// The body of worker thread `index`.
///
/// `alive` is never sent on: its sender is dropped as the very last thing the thread does, so the
/// pool learns that every worker has exited when its receiver reports disconnection (this is how
/// `shutdown_timeout` waits with a deadline and without polling).
pub(crate) fn run(shared: Arc<Shared>, index: usize, rx: Receiver<Envelope>, alive: Sender<()>) {
    context::enter_worker(&shared, index);
    shared.run_hook(true);
    // Two loops, so that the hot one (a capacity above 0) carries no branch for the other.
    if shared.capacity > 0 {
        while !shared.stop_now() {
            let Some(envelope) = shared.next_job(&rx) else {
                break; // closed and drained: shutdown
            };
            // Every user panic (the job's, a result's or a payload's `Drop`) is caught inside.
            shared.run_dequeued(Some(index), envelope);
        }
    } else {
        while !shared.stop_now() {
            let Some(envelope) = shared.next_job_rendezvous(&rx) else {
                break;
            };
            shared.run_dequeued(Some(index), envelope);
        }
    }
    shared.run_hook(false);
    context::leave_worker();
    drop(shared);
    drop(alive);
}
