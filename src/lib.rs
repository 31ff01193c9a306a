//! A bounded worker pool on a lock-free MPMC channel.
//!
//! `boundpool` runs many jobs concurrently on a **fixed** set of threads through a **bounded**
//! queue, and loses none of them: a full queue makes `submit` wait (backpressure), a panicking job
//! is caught and reported, results come back through handles, and shutdown runs every accepted job
//! and joins every thread.
//!
//! # Quick start
//!
//! ```
//! use boundpool::WorkerPool;
//!
//! // 4 workers; at most 16 jobs wait in the queue: a `submit` that finds it full blocks.
//! let pool = WorkerPool::new(4, 16);
//!
//! // Fire-and-forget.
//! for id in 0..100 {
//!     pool.submit(move || {
//!         let _ = id * 2; // talk to the database, resize an image, ...
//!     });
//! }
//!
//! // With a result.
//! let answer = pool.spawn(|| 6 * 7);
//! assert_eq!(answer.join().unwrap(), 42);
//!
//! // Borrowing from the stack, like `std::thread::scope`.
//! let mut totals = [0u64; 4];
//! pool.scope(|s| {
//!     for (i, total) in totals.iter_mut().enumerate() {
//!         s.submit(move || *total = (i as u64 + 1) * 100);
//!     }
//! });
//! assert_eq!(totals, [100, 200, 300, 400]);
//!
//! // An ordered, bounded parallel map.
//! let squares: Vec<u64> = pool.map(1..=5u64, |n| n * n).collect();
//! assert_eq!(squares, [1, 4, 9, 16, 25]);
//!
//! // Graceful: runs everything accepted, joins the threads.
//! let stats = pool.shutdown();
//! assert_eq!(stats.completed, 100 + 1 + 4 + 5);
//! ```
//!
//! # Why
//!
//! One thread per job (`for item in items { thread::spawn(..) }`) exhausts threads, memory and
//! whatever the jobs connect to when the batch holds 50,000 items instead of 100. The textbook
//! pool (`Arc<Mutex<mpsc::Receiver>>`) fixes the thread count, but every receive contends on one
//! lock, the queue grows without limit, a panicking job kills its worker, there is no way to get
//! results back, and shutdown is an afterthought. `boundpool` keeps that pool's simplicity and
//! removes those faults: each worker owns a clone of a `crossbeam_channel` receiver (no lock on
//! the receive path), and the queue has a fixed capacity.
//!
//! # Choosing a call
//!
//! | you want | call |
//! |---|---|
//! | run a job, nothing back | [`WorkerPool::submit`] (blocks while the queue is full) |
//! | never block the producer | [`WorkerPool::try_submit`], [`WorkerPool::submit_timeout`]: the job comes back |
//! | a result, or the job's panic | [`WorkerPool::spawn`] → [`JobHandle::join`] |
//! | jobs that borrow local data | [`WorkerPool::scope`] |
//! | a result per item, in order, bounded memory | [`WorkerPool::map`] |
//! | wait for everything submitted so far | [`WorkerPool::wait_idle`] |
//! | stop | [`WorkerPool::shutdown`], [`WorkerPool::shutdown_timeout`], [`WorkerPool::shutdown_now`] |
//!
//! # Guarantees
//!
//! - Every accepted job runs exactly once, or is handed back to the caller
//!   ([`TrySubmitError`], [`SubmitTimeoutError`], [`WorkerPool::shutdown_now`]).
//! - At most `workers` of the pool's jobs run at once, and only on boundpool's threads. A thread
//!   outside every pool's jobs (`main`, a request handler) never runs a job: its
//!   [`JobHandle::join`], the end of its [`scope`](WorkerPool::scope) and its [`Map`] wait for a
//!   worker. At most `capacity` jobs wait in the queue, except the documented
//!   [overflow](Stats::overflow).
//! - A panicking job never kills a worker nor poisons the pool, and is counted in
//!   [`Stats::panicked`]. A panic in a hook or in the panic handler is caught and discarded (it
//!   is not a job, and is not counted).
//! - Waiting never needs a free worker: a job that waits on a job still queued
//!   ([`JobHandle::join`], the end of a [`scope`](WorkerPool::scope), [`Map`]) runs it itself,
//!   so nested waits finish even on a one-worker pool. A job that submits to its own full pool
//!   runs the new job inline (caller-runs) instead of deadlocking. Neither nests more than
//!   [`MAX_NESTING`] jobs on a thread's stack, however long the chain.
//! - A producer blocked on a full queue never sleeps on beside a free slot while the workers
//!   stall.
//! - Shutdown always terminates once the running jobs end, also when the pool is dropped inside
//!   one of its own jobs.

#![deny(missing_docs)]
#![deny(unsafe_code)]
#![warn(
    missing_debug_implementations,
    rust_2018_idioms,
    unreachable_pub,
    clippy::undocumented_unsafe_blocks
)]
#![doc(test(attr(deny(warnings))))]

mod builder;
mod context;
mod error;
mod job;
mod map;
mod pool;
mod queue;
#[allow(unsafe_code)]
mod scope;
mod shared;
mod stats;
mod sync;
mod worker;

pub use builder::{BuildError, Builder};
pub use error::{SubmitTimeoutError, TrySubmitError};
pub use job::{Job, JobError, JobHandle, PanicPayload};
pub use map::Map;
pub use pool::WorkerPool;
pub use scope::{Scope, ScopedJobHandle};
pub use shared::{MAX_HELPERS, MAX_NESTING};
pub use stats::Stats;
