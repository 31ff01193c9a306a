//! [`Builder`], the by-value configuration of a pool, and [`BuildError`], why building failed.

use std::any::Any;
use std::error::Error;
use std::fmt;
use std::io;
use std::sync::Arc;

use crate::job::Envelope;
use crate::queue;
use crate::shared::{Hook, Hooks, PanicHandler, Shared};
use crate::sync::thread::{self, JoinHandle};
use crate::worker;
use crate::WorkerPool;

/// Configures and builds a [`WorkerPool`].
///
/// Every option has a default: `num_cpus::get()` workers, a queue of twice as many slots as
/// workers, threads named `boundpool-0`, `boundpool-1`, ..., the platform's stack size, no hooks
/// and no panic handler.
///
/// # Examples
///
/// ```
/// use boundpool::WorkerPool;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
///
/// let started = Arc::new(AtomicUsize::new(0));
/// let counter = Arc::clone(&started);
/// let pool = WorkerPool::builder()
///     .workers(3)
///     .capacity(64)
///     .thread_name("ingest")
///     .on_thread_start(move || {
///         counter.fetch_add(1, Ordering::SeqCst);
///     })
///     .build()?;
/// let (tx, rx) = std::sync::mpsc::channel();
/// pool.submit(move || tx.send(std::thread::current().name().map(str::to_owned)).unwrap());
/// assert!(rx.recv().unwrap().unwrap().starts_with("ingest-"));
/// pool.shutdown();
/// assert_eq!(started.load(Ordering::SeqCst), 3);
/// # Ok::<(), boundpool::BuildError>(())
/// ```
#[must_use = "a builder does nothing until `build` is called"]
#[derive(Default)]
pub struct Builder {
    workers: Option<usize>,
    capacity: Option<usize>,
    thread_name: Option<String>,
    stack_size: Option<usize>,
    on_thread_start: Option<Hook>,
    on_thread_stop: Option<Hook>,
    panic_handler: Option<PanicHandler>,
}

impl Builder {
    /// A builder with every option at its default.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// The number of worker threads (default: `num_cpus::get()`).
    ///
    /// Zero makes [`build`](Builder::build) fail with [`BuildError::ZeroWorkers`]; a number whose
    /// per-worker state cannot be allocated, with [`BuildError::TooManyWorkers`]; one whose
    /// default capacity (twice the workers) overflows, with [`BuildError::CapacityTooLarge`].
    pub fn workers(mut self, workers: usize) -> Builder {
        self.workers = Some(workers);
        self
    }

    /// How many accepted jobs may wait in the queue (default: twice the number of workers).
    ///
    /// A full queue makes [`submit`](WorkerPool::submit) block: that is the pool's
    /// backpressure. `0` is allowed and makes the queue a rendezvous: a submit waits until a worker
    /// takes the job.
    ///
    /// The queue's slots are allocated when the pool is built (32 bytes each on 64-bit targets).
    /// A capacity whose slots the system refuses to allocate, or beyond the channel's index
    /// range, makes [`build`](Builder::build) fail with [`BuildError::CapacityTooLarge`]. The
    /// check (for more than 32 MiB of slots) reserves the memory without touching it: on a
    /// system that overcommits, a capacity whose slots exceed the free memory may still be
    /// granted, and then fails (the out-of-memory killer) when the slots are written, as any
    /// allocation would.
    pub fn capacity(mut self, capacity: usize) -> Builder {
        self.capacity = Some(capacity);
        self
    }

    /// The prefix of the worker threads' names: they are called `"{prefix}-{index}"`, `index` from
    /// 0 to `workers - 1` (default prefix: `"boundpool"`).
    ///
    /// A prefix with a NUL byte makes [`build`](Builder::build) fail with
    /// [`BuildError::InvalidThreadName`].
    pub fn thread_name(mut self, prefix: impl Into<String>) -> Builder {
        self.thread_name = Some(prefix.into());
        self
    }

    /// The stack size of each worker thread, in bytes (default: the platform's, as for
    /// [`std::thread::spawn`]); helper threads (see [`MAX_NESTING`](crate::MAX_NESTING)) get the
    /// same.
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = Some(bytes);
        self
    }

    /// Runs `hook` on each worker thread when it starts, before it takes a job (set up
    /// thread-locals, CPU affinity, logging context). A panic in the hook is caught and ignored.
    ///
    /// It also runs on a helper thread before the job it was started for: a job waited on
    /// [`MAX_NESTING`](crate::MAX_NESTING) jobs deep runs on one (see
    /// [`JobHandle::join`](crate::JobHandle::join)), so that every job finds its thread set up.
    pub fn on_thread_start<H>(mut self, hook: H) -> Builder
    where
        H: Fn() + Send + Sync + 'static,
    {
        self.on_thread_start = Some(Arc::new(hook));
        self
    }

    /// Runs `hook` on each worker thread as it exits, after its last job (and on a helper thread
    /// after its job, see [`on_thread_start`](Builder::on_thread_start)). A panic in the hook is
    /// caught and ignored.
    pub fn on_thread_stop<H>(mut self, hook: H) -> Builder
    where
        H: Fn() + Send + Sync + 'static,
    {
        self.on_thread_stop = Some(Arc::new(hook));
        self
    }

    /// Receives the payload of every panicking fire-and-forget job (`submit`, `try_submit`,
    /// `submit_timeout`), on the thread that ran it.
    ///
    /// Jobs with a handle (`spawn`, scoped jobs, `map`) deliver their panic to the handle
    /// instead. Without a handler the payload is dropped (the panic hook has already printed the
    /// message). A panic in the handler is caught and ignored: it never kills a worker.
    ///
    /// # Examples
    ///
    /// ```
    /// use boundpool::WorkerPool;
    /// use std::sync::mpsc;
    ///
    /// let (tx, rx) = mpsc::channel();
    /// let tx = std::sync::Mutex::new(tx);
    /// let pool = WorkerPool::builder()
    ///     .workers(1)
    ///     .panic_handler(move |payload| {
    ///         let msg = payload.downcast_ref::<&str>().copied().unwrap_or("?");
    ///         tx.lock().unwrap().send(msg.to_owned()).unwrap();
    ///     })
    ///     .build()?;
    /// pool.submit(|| panic!("lost connection"));
    /// assert_eq!(rx.recv().unwrap(), "lost connection");
    /// assert_eq!(pool.shutdown().panicked, 1);
    /// # Ok::<(), boundpool::BuildError>(())
    /// ```
    pub fn panic_handler<H>(mut self, handler: H) -> Builder
    where
        H: Fn(Box<dyn Any + Send>) + Send + Sync + 'static,
    {
        self.panic_handler = Some(Arc::new(handler));
        self
    }

    /// Spawns the workers and returns the pool.
    ///
    /// # Errors
    ///
    /// [`BuildError::ZeroWorkers`] for `workers(0)`, [`BuildError::InvalidThreadName`] for a
    /// prefix with a NUL byte, [`BuildError::TooManyWorkers`] and
    /// [`BuildError::CapacityTooLarge`] for a pool whose state cannot be allocated (checked
    /// before anything is allocated, so that no allocation aborts the process),
    /// [`BuildError::Spawn`] if the operating system refused a thread.
    /// If the k-th thread cannot be spawned, the k threads already started are shut down and
    /// joined before the error is returned.
    pub fn build(self) -> Result<WorkerPool, BuildError> {
        self.build_with(|builder, body| builder.spawn(body))
    }

    /// [`build`](Builder::build), with the thread spawner as a parameter (tests make it fail).
    fn build_with<S>(self, mut spawn: S) -> Result<WorkerPool, BuildError>
    where
        S: FnMut(thread::Builder, Box<dyn FnOnce() + Send>) -> io::Result<JoinHandle<()>>,
    {
        let workers = self.workers.unwrap_or_else(num_cpus::get);
        if workers == 0 {
            return Err(BuildError::ZeroWorkers);
        }
        let capacity = match self.capacity {
            Some(capacity) => capacity,
            None => workers.checked_mul(2).ok_or(BuildError::CapacityTooLarge)?,
        };
        let prefix = self.thread_name.unwrap_or_else(|| "boundpool".to_owned());
        if prefix.contains('\0') {
            return Err(BuildError::InvalidThreadName);
        }
        // Everything that grows with `workers` or `capacity` is tried before it is made: an
        // allocation that fails outright aborts the process, and crossbeam panics on a capacity
        // beyond its index range.
        let mut threads = Vec::new();
        threads
            .try_reserve_exact(workers)
            .map_err(|_| BuildError::TooManyWorkers)?;
        check_capacity(capacity)?;
        let (tx, rx) = queue::bounded(capacity);
        let (alive_tx, alive_rx) = queue::bounded::<()>(0);
        let hooks = Hooks {
            stack_size: self.stack_size,
            on_thread_start: self.on_thread_start,
            on_thread_stop: self.on_thread_stop,
            panic_handler: self.panic_handler,
        };
        let shared =
            Shared::new(workers, capacity, rx.clone(), hooks).ok_or(BuildError::TooManyWorkers)?;
        let shared = Arc::new(shared);
        for index in 0..workers {
            let mut builder = thread::Builder::new().name(format!("{prefix}-{index}"));
            if let Some(bytes) = self.stack_size {
                builder = builder.stack_size(bytes);
            }
            let (shared, rx, alive) = (Arc::clone(&shared), rx.clone(), alive_tx.clone());
            match spawn(
                builder,
                Box::new(move || worker::run(shared, index, rx, alive)),
            ) {
                Ok(handle) => threads.push(handle),
                Err(error) => {
                    drop(tx); // closes the queue: the started workers exit
                    for handle in threads {
                        let _ = handle.join();
                    }
                    return Err(BuildError::Spawn(error));
                }
            }
        }
        Ok(WorkerPool::from_parts(shared, tx, threads, alive_rx))
    }
}

/// Whether a queue of `capacity` slots can be made: within crossbeam's index range (its marks
/// and laps need the next power of two above `capacity`, doubled, to fit a `usize`), and its
/// slots allocatable. Above 32 MiB the slots are tried with a reservation of the same size,
/// which the system grants or refuses without touching the memory (so without committing it).
fn check_capacity(capacity: usize) -> Result<(), BuildError> {
    if capacity == 0 {
        return Ok(()); // a rendezvous channel allocates no slots
    }
    capacity
        .checked_add(1)
        .and_then(usize::checked_next_power_of_two)
        .and_then(|mark| mark.checked_mul(2))
        .ok_or(BuildError::CapacityTooLarge)?;
    let bytes = capacity
        .checked_mul(std::mem::size_of::<QueueSlot>())
        .filter(|&b| b <= isize::MAX as usize)
        .ok_or(BuildError::CapacityTooLarge)?;
    // Below 32 MiB the trial is skipped: a refusal there is implausible, and freeing a trial
    // block that size would raise glibc's mmap threshold for the rest of the process.
    if bytes > 32 << 20 {
        let mut slots: Vec<QueueSlot> = Vec::new();
        slots
            .try_reserve_exact(capacity)
            .map_err(|_| BuildError::CapacityTooLarge)?;
    }
    Ok(())
}

/// The size and alignment of one slot of the queue: crossbeam's stamp and a job's envelope.
#[allow(dead_code)] // only its layout is used
struct QueueSlot(usize, Envelope);

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Destructured so that a new field cannot be forgotten here.
        let Builder {
            workers,
            capacity,
            thread_name,
            stack_size,
            on_thread_start,
            on_thread_stop,
            panic_handler,
        } = self;
        f.debug_struct("Builder")
            .field("workers", workers)
            .field("capacity", capacity)
            .field("thread_name", thread_name)
            .field("stack_size", stack_size)
            .field("on_thread_start", &on_thread_start.is_some())
            .field("on_thread_stop", &on_thread_stop.is_some())
            .field("panic_handler", &panic_handler.is_some())
            .finish()
    }
}

/// Why [`Builder::build`] failed.
///
/// # Examples
///
/// ```
/// use boundpool::{BuildError, WorkerPool};
///
/// let err = WorkerPool::builder().workers(0).build().unwrap_err();
/// assert!(matches!(err, BuildError::ZeroWorkers));
/// assert_eq!(err.to_string(), "a worker pool needs at least one worker");
/// ```
#[non_exhaustive]
#[derive(Debug)]
pub enum BuildError {
    /// `workers(0)`: a pool without workers would accept jobs and never run them.
    ZeroWorkers,
    /// The thread name prefix contains a NUL byte, which thread names cannot hold.
    InvalidThreadName,
    /// The operating system refused to create a worker thread (out of memory, a thread limit).
    Spawn(io::Error),
    /// The queue cannot be made: its slots cannot be allocated, or the capacity is beyond the
    /// channel's range, or (without [`Builder::capacity`]) twice the number of workers
    /// overflows.
    CapacityTooLarge,
    /// The per-worker state of that many workers cannot be allocated.
    TooManyWorkers,
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::ZeroWorkers => f.write_str("a worker pool needs at least one worker"),
            BuildError::InvalidThreadName => {
                f.write_str("the thread name prefix contains a NUL byte")
            }
            BuildError::Spawn(_) => f.write_str("failed to spawn a worker thread"),
            BuildError::CapacityTooLarge => {
                f.write_str("the queue's capacity is too large to allocate")
            }
            BuildError::TooManyWorkers => {
                f.write_str("too many workers: their state cannot be allocated")
            }
        }
    }
}

impl Error for BuildError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            BuildError::Spawn(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn failed_spawn_joins_the_threads_already_started() {
        let stopped = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&stopped);
        let mut spawned = 0;
        let err = Builder::new()
            .workers(4)
            .on_thread_stop(move || {
                counter.fetch_add(1, Ordering::SeqCst);
            })
            .build_with(|builder, body| {
                spawned += 1;
                if spawned == 3 {
                    Err(io::Error::new(io::ErrorKind::WouldBlock, "injected"))
                } else {
                    builder.spawn(body)
                }
            })
            .unwrap_err();
        assert!(matches!(err, BuildError::Spawn(_)), "got {err:?}");
        assert_eq!(
            err.source().map(ToString::to_string).as_deref(),
            Some("injected")
        );
        // The two threads started before the failure have exited (joined), not leaked.
        assert_eq!(stopped.load(Ordering::SeqCst), 2);
    }
}
