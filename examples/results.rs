//! Fan-out / fan-in with `spawn`: checksum 1,000 generated chunks on the pool, collect the
//! results in input order through their handles, and deal with a failing job.
//!
//! `cargo run --release --example results`

use boundpool::{JobError, WorkerPool};

/// FNV-1a over a chunk; chunk 666 is corrupt and makes the job panic.
fn checksum(id: usize, chunk: &[u8]) -> u64 {
    assert!(id != 666, "chunk {id} is corrupt");
    chunk.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn main() {
    std::panic::set_hook(Box::new(|_| {})); // the failure is reported below
    let pool = WorkerPool::new(4, 32);

    // Fan out: one job per chunk. `spawn` blocks while 32 jobs wait, so at most 32 chunks (plus
    // the four being hashed) are in memory that the workers have not consumed.
    let handles: Vec<_> = (0..1_000usize)
        .map(|id| {
            let chunk: Vec<u8> = (0..64 * 1024).map(|i| (i * 31 + id) as u8).collect();
            pool.spawn(move || checksum(id, &chunk))
        })
        .collect();

    // Fan in, in order. A panicking job yields its panic instead of a value; nothing hangs.
    let mut combined = 0u64;
    let mut failed = Vec::new();
    for (id, handle) in handles.into_iter().enumerate() {
        match handle.join() {
            Ok(sum) => combined ^= sum.rotate_left((id % 64) as u32),
            Err(JobError::Panicked(p)) => failed.push((id, p.message().unwrap_or("?").to_owned())),
            Err(other) => failed.push((id, other.to_string())),
        }
    }
    let stats = pool.shutdown();
    println!(
        "combined checksum of {} chunks: {combined:016x}",
        1_000 - failed.len()
    );
    for (id, why) in &failed {
        println!("chunk {id} failed: {why}");
    }
    println!("{stats:?}");
}
