//! Chains of re-entrant submits (issue 11): each job submits the next into its own full pool.
//! A chain of any length runs each link exactly once at a bounded stack depth (caller-runs up to
//! `MAX_NESTING`, then an overflow the workers run at loop level); a loop of re-entrant submits
//! keeps the queue within capacity; overflowed jobs show in `Stats` and come back from
//! `shutdown_now`.
//!
//! Links reach the pool through a `Weak`, so queued jobs never keep it alive: the test can take
//! the pool back by value (`shutdown_now`), and a link that finds it gone ends its chain ("cut").
//! Every blocking wait runs under [`with_timeout`].

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Weak};
use std::thread;
use std::time::{Duration, Instant};

use boundpool::{Scope, WorkerPool, MAX_NESTING};
use common::{shutdown_now_on_a_worker, with_timeout, within, Gate, Progress, PATIENCE};

/// One chain of `len` links, numbered 1 to `len`, and what its links recorded.
#[derive(Default)]
struct Chain {
    pool: Weak<WorkerPool>,
    len: usize,
    seen: Vec<AtomicBool>,
    ran: AtomicUsize,
    twice: AtomicUsize,
    off_worker: AtomicUsize,
    /// Links handed to the pool (the first included).
    submitted: AtomicUsize,
    /// Links that found the pool gone and could not submit the next.
    cut: AtomicUsize,
    low: AtomicUsize,
    high: AtomicUsize,
    /// Opened by the last link.
    done: Gate,
}

impl Chain {
    fn new(pool: Weak<WorkerPool>, len: usize) -> Arc<Chain> {
        Arc::new(Chain {
            pool,
            len,
            seen: (0..=len).map(|_| AtomicBool::new(false)).collect(),
            low: AtomicUsize::new(usize::MAX),
            ..Chain::default()
        })
    }

    /// Records that link `k` runs, with `marker` a local of its frame; true if it is the last.
    fn record(&self, k: usize, marker: &usize) -> bool {
        let address = std::hint::black_box(marker) as *const usize as usize;
        self.low.fetch_min(address, SeqCst);
        self.high.fetch_max(address, SeqCst);
        if self.seen[k].swap(true, SeqCst) {
            self.twice.fetch_add(1, SeqCst);
        }
        let name = thread::current().name().map(str::to_owned);
        if !name.is_some_and(|n| n.starts_with("boundpool-")) {
            self.off_worker.fetch_add(1, SeqCst);
        }
        self.ran.fetch_add(1, SeqCst);
        k == self.len
    }

    /// Submits link `k` to the pool, if it is still there; false if it is gone.
    fn submit(chain: &Arc<Chain>, k: usize) -> bool {
        let Some(pool) = chain.pool.upgrade() else {
            chain.cut.fetch_add(1, SeqCst);
            return false;
        };
        chain.submitted.fetch_add(1, SeqCst);
        let next = Arc::clone(chain);
        pool.submit(move || link(next, k));
        true
    }

    /// Starts the chain from outside the pool without holding the pool while the queue is full
    /// (so a racing `shutdown_now` can take it back): retries `try_submit`; false if it is gone.
    fn start_politely(chain: &Arc<Chain>) -> bool {
        let next = Arc::clone(chain);
        let mut job = move || link(next, 1);
        loop {
            let Some(pool) = chain.pool.upgrade() else {
                chain.cut.fetch_add(1, SeqCst);
                return false;
            };
            chain.submitted.fetch_add(1, SeqCst);
            match pool.try_submit(job) {
                Ok(()) => return true,
                Err(full) => job = full.into_inner(),
            }
            chain.submitted.fetch_sub(1, SeqCst);
            drop(pool);
            thread::yield_now();
        }
    }

    /// How far apart (bytes) the recorded frames of the links lie on the stack.
    fn spread(&self) -> usize {
        self.high.load(SeqCst) - self.low.load(SeqCst)
    }
}

/// Link `k`: records itself, then submits link `k + 1`.
fn link(chain: Arc<Chain>, k: usize) {
    let marker = k;
    if !chain.record(k, &marker) {
        Chain::submit(&chain, k + 1);
    } else {
        chain.done.open();
    }
}

/// Fills `pool`'s queue with no-ops (counted in `ran`) through `try_submit` until it is full;
/// returns how many it took.
fn fill_queue(pool: &WorkerPool, ran: &Arc<AtomicUsize>) -> usize {
    for fills in 0..=pool.capacity() {
        let ran = Arc::clone(ran);
        if let Err(e) = pool.try_submit(move || {
            ran.fetch_add(1, SeqCst);
        }) {
            assert!(e.is_full(), "try_submit refused, not Full");
            return fills;
        }
    }
    panic!("try_submit accepted more than the capacity with every worker busy");
}

/// Runs a `len`-link chain into a full 1-worker pool of capacity 4: a starter job holds the only
/// worker while the test fills the queue, then submits link 1. Returns the chain, the number of
/// no-ops that filled the queue, and the pool's `completed` count at the end.
fn run_chain(len: usize) -> (Arc<Chain>, usize, u64) {
    with_timeout(&format!("a {len}-link chain"), move || {
        let pool = Arc::new(WorkerPool::new(1, 4));
        let chain = Chain::new(Arc::downgrade(&pool), len);
        let gate = Gate::new();
        let (g, c) = (gate.clone(), Arc::clone(&chain));
        pool.submit(move || {
            g.wait();
            Chain::submit(&c, 1);
        });
        gate.wait_for_waiters(1);
        let fills = fill_queue(&pool, &Arc::new(AtomicUsize::new(0)));
        gate.open();
        chain.done.wait();
        pool.wait_idle();
        let completed = pool.stats().completed;
        (chain, fills, completed)
    })
}

/// Asserts that each of the chain's `len` links ran exactly once, on a worker.
fn assert_each_link_once(chain: &Chain, what: &str) {
    let (len, ran) = (chain.len, chain.ran.load(SeqCst));
    assert_eq!(ran, len, "{what}: {ran} of {len} links ran");
    assert_eq!(chain.twice.load(SeqCst), 0, "{what}: a link ran twice");
    assert!(
        chain.seen[1..].iter().all(|s| s.load(SeqCst)),
        "{what}: a link never ran"
    );
    let off = chain.off_worker.load(SeqCst);
    assert_eq!(off, 0, "{what}: {off} links ran off the pool's worker");
}

#[test]
fn million_link_chain() {
    let n = 1_000_000;
    let (chain, fills, completed) = run_chain(n);
    assert_eq!(fills, 4, "the no-ops filled the queue");
    assert_each_link_once(&chain, "million-link chain");
    assert_eq!(chain.submitted.load(SeqCst), n, "links submitted");
    let all = (n + 1 + fills) as u64; // + the starter
    assert_eq!(
        completed, all,
        "stats count the starter, the no-ops and every link"
    );
}

/// Asserts that the stack spread of a long chain stays within the nesting bound, judged by the
/// per-level frame size of a 5-link chain (whose links nest 4 levels apart).
fn assert_spread_bounded(short: usize, long: usize, what: &str) {
    println!("{what}: stack spread {short} bytes for 5 links, {long} bytes for 100,000 links");
    let bound = short / 4 * (MAX_NESTING + 4) + 64 * 1024;
    assert!(
        long <= bound,
        "{what}: stack spread {long} bytes for 100,000 links, over the bound {bound} \
         (5 links: {short} bytes, MAX_NESTING {MAX_NESTING})"
    );
}

#[test]
fn stack_depth_of_chains_is_bounded() {
    let (short, _, _) = run_chain(5);
    let (long, _, _) = run_chain(100_000);
    assert_each_link_once(&short, "5-link chain");
    assert_each_link_once(&long, "100,000-link chain");
    assert_spread_bounded(short.spread(), long.spread(), "chain");
}

/// Scoped link `k`: records itself, then submits link `k + 1` through the scope.
fn scoped_link<'scope, 'env>(s: &'scope Scope<'scope, 'env>, chain: &'env Chain, k: usize) {
    let marker = k;
    if !chain.record(k, &marker) {
        s.submit(move || scoped_link(s, chain, k + 1));
    }
}

/// A `len`-link chain of scoped jobs on a 1-worker pool of capacity 4, the queue full of scoped
/// no-ops when link 1 starts. Returns the chain and the pool's completed count.
fn run_scoped_chain(len: usize) -> (Arc<Chain>, u64) {
    with_timeout(&format!("a {len}-link scoped chain"), move || {
        let pool = WorkerPool::new(1, 4);
        let chain = Chain::new(Weak::new(), len);
        let gate = Gate::new();
        pool.scope(|s| {
            let (g, chain) = (gate.clone(), &*chain);
            s.submit(move || {
                g.wait();
                scoped_link(s, chain, 1);
            });
            gate.wait_for_waiters(1);
            for _ in 0..pool.capacity() {
                s.submit(|| ());
            }
            assert_eq!(pool.stats().queued, 4, "the scoped no-ops fill the queue");
            gate.open();
        });
        let completed = pool.stats().completed;
        (chain, completed)
    })
}

#[test]
fn scoped_chain() {
    let (short, _) = run_scoped_chain(5);
    let (long, completed) = run_scoped_chain(100_000);
    assert_each_link_once(&short, "5-link scoped chain");
    assert_each_link_once(&long, "100,000-link scoped chain");
    assert_eq!(completed, 100_004, "stats count the links and 4 no-ops");
    assert_spread_bounded(short.spread(), long.spread(), "scoped chain");
}

#[test]
fn loop_into_own_full_pool_keeps_memory_flat() {
    let ((max_queued, max_overflow), tiny, completed) =
        with_timeout("1,000,000 submits in a loop", || {
            let pool = Arc::new(WorkerPool::new(1, 4));
            let tiny = Arc::new(AtomicUsize::new(0));
            let (p, t) = (Arc::clone(&pool), Arc::clone(&tiny));
            let looper = pool.spawn(move || {
                let (mut max_queued, mut max_overflow) = (0, 0);
                for i in 0..1_000_000 {
                    let t = Arc::clone(&t);
                    p.submit(move || {
                        t.fetch_add(1, SeqCst);
                    });
                    if i % 10_000 == 0 {
                        let stats = p.stats();
                        max_queued = max_queued.max(stats.queued);
                        max_overflow = max_overflow.max(stats.overflow);
                    }
                }
                (max_queued, max_overflow)
            });
            let maxima = looper.join().expect("the looping job");
            pool.wait_idle();
            (maxima, tiny.load(SeqCst), pool.stats().completed)
        });
    assert_eq!(max_overflow, 0, "a loop of re-entrant submits overflowed");
    assert!(max_queued <= 4, "{max_queued} queued in a capacity-4 pool");
    assert_eq!(tiny, 1_000_000, "every tiny job ran");
    assert_eq!(completed, 1_000_001, "stats count the loop and tiny jobs");
}

/// Opens its gates when dropped, also while a failed assertion unwinds.
struct OpenOnDrop(Vec<Gate>);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.iter().for_each(Gate::open);
    }
}

#[test]
fn overflow_is_visible_and_handed_back_by_shutdown_now() {
    with_timeout("an overflowed chain handed back by shutdown_now", || {
        // Worker A will run shutdown_now; worker B runs the chain's starter.
        let pool = Arc::new(WorkerPool::new(2, 4));
        let (pool_tx, jobs_rx) = shutdown_now_on_a_worker(&pool);
        let chain = Chain::new(Arc::downgrade(&pool), 2 * MAX_NESTING + 8);
        let (start, hold) = (Gate::new(), Gate::new());
        // A failed assertion must not leave the workers held: the pool's drop would wait for them.
        let _release = OpenOnDrop(vec![start.clone(), hold.clone()]);
        let (ready_tx, ready) = mpsc::channel();
        let (finished_tx, finished) = mpsc::channel();
        {
            let (start, hold, c) = (start.clone(), hold.clone(), Arc::clone(&chain));
            pool.submit(move || {
                start.wait();
                // Nests link after link until the nesting bound, which sends one to overflow.
                Chain::submit(&c, 1);
                ready_tx.send(()).unwrap();
                hold.wait(); // keeps worker B from running the overflow
                finished_tx.send(()).unwrap();
            });
        }
        start.wait_for_waiters(1);
        let fill_ran = Arc::new(AtomicUsize::new(0));
        let fills = fill_queue(&pool, &fill_ran);
        start.open();
        ready.recv_timeout(PATIENCE).expect("the chain unwound");
        let stats = pool.stats();
        assert!(stats.overflow >= 1, "no overflow shown: {stats:?}");
        assert!(
            stats.queued > stats.capacity,
            "queued does not include the overflow: {stats:?}"
        );
        let submitted = 2 + fills + chain.submitted.load(SeqCst); // + the starter and shutdown job
        let pool = Arc::try_unwrap(pool).expect("queued links hold the pool only weakly");
        pool_tx.send(pool).expect("hand the pool over");
        let jobs = jobs_rx.recv_timeout(PATIENCE).expect("shutdown_now");
        hold.open();
        finished
            .recv_timeout(PATIENCE)
            .expect("the starter finished");
        let ran = 2 + fill_ran.load(SeqCst) + chain.ran.load(SeqCst);
        assert_eq!(
            jobs.len(),
            fills + stats.overflow,
            "shutdown_now hands back the queued no-ops and the overflowed link"
        );
        assert_eq!(ran + jobs.len(), submitted, "a job was lost or ran twice");
        for job in jobs {
            job.run();
        }
        assert_eq!(fill_ran.load(SeqCst), fills, "every handed-back no-op ran");
        let (ran, sent) = (chain.ran.load(SeqCst), chain.submitted.load(SeqCst));
        assert_eq!(ran, sent, "every submitted link ran");
        assert_eq!(chain.twice.load(SeqCst), 0, "no link ran twice");
        assert_eq!(chain.cut.load(SeqCst), 1, "the handed-back link: pool gone");
    });
}

/// One round: 4 producers start 64-link chains into a 1- or 2-worker, capacity-4 pool while this
/// thread takes the pool back (once no submit holds it) and calls `shutdown_now` mid-flight.
fn chains_race_shutdown_round(round: usize) {
    const PRODUCERS: usize = 4;
    const CHAINS_EACH: usize = 50;
    let pool = Arc::new(WorkerPool::new(1 + round % 2, 4));
    let started = Progress::new();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|_| {
            let (weak, started) = (Arc::downgrade(&pool), started.clone());
            thread::spawn(move || {
                let mut chains = Vec::new();
                for _ in 0..CHAINS_EACH {
                    let chain = Chain::new(weak.clone(), 64);
                    let accepted = Chain::start_politely(&chain);
                    chains.push(chain);
                    if !accepted {
                        break;
                    }
                    started.bump();
                }
                chains
            })
        })
        .collect();
    started.wait_past((round % 50) as u64, "producers start chains");
    let (deadline, mut shared) = (Instant::now() + PATIENCE, pool);
    let pool = loop {
        match Arc::try_unwrap(shared) {
            Ok(pool) => break pool,
            Err(still_shared) => shared = still_shared,
        }
        assert!(Instant::now() < deadline, "the pool was never released");
        thread::yield_now();
    };
    let jobs = pool.shutdown_now();
    let chains: Vec<Arc<Chain>> = producers
        .into_iter()
        .flat_map(|p| p.join().expect("a producer"))
        .collect();
    let count = |f: fn(&Chain) -> usize| chains.iter().map(|c| f(c)).sum::<usize>();
    let ran = count(|c| c.ran.load(SeqCst));
    let submitted = count(|c| c.submitted.load(SeqCst));
    assert_eq!(
        ran + jobs.len(),
        submitted,
        "round {round}: links ran + handed back != submitted"
    );
    for job in jobs {
        job.run();
    }
    for (i, c) in chains.iter().enumerate() {
        let (ran, cut) = (c.ran.load(SeqCst), c.cut.load(SeqCst));
        let what = format!("round {round}, chain {i}");
        assert_eq!(c.twice.load(SeqCst), 0, "{what}: a link ran twice");
        assert_eq!(ran, c.submitted.load(SeqCst), "{what}: lost links");
        assert!(
            (ran == c.len && cut == 0) || (ran < c.len && cut == 1),
            "{what}: {ran} of {} links ran, cut {cut} times",
            c.len
        );
    }
}

#[test]
fn stress_chains_race_shutdown_now() {
    let rounds = || (0..200).for_each(chains_race_shutdown_round);
    within(
        Duration::from_secs(120),
        "chains racing shutdown_now",
        rounds,
    );
}
