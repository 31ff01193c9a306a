//! Word frequencies over a large text that never sits in memory: a bounded, ordered `map`.
//!
//! A deterministic generator streams `MB` megabytes of text (default 200) in chunks of 1,000
//! lines; the pool counts the words of each chunk; the consumer merges the counts in input
//! order. `map` keeps at most `workers + capacity` chunks in flight, so peak memory stays flat
//! whatever the size of the input: compare `VmHWM` for 20 and 200 MB.
//!
//! `cargo run --release --example wordfreq -- 200`

use boundpool::WorkerPool;
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::HashMap;
use std::time::Instant;

const VOCABULARY: &[&str] = &[
    "the",
    "of",
    "and",
    "to",
    "in",
    "a",
    "is",
    "that",
    "for",
    "it",
    "as",
    "was",
    "with",
    "be",
    "by",
    "on",
    "not",
    "he",
    "this",
    "are",
    "or",
    "his",
    "from",
    "at",
    "which",
    "but",
    "have",
    "an",
    "had",
    "they",
    "you",
    "were",
    "their",
    "one",
    "all",
    "we",
    "can",
    "her",
    "has",
    "there",
    "been",
    "if",
    "more",
    "when",
    "will",
    "would",
    "who",
    "so",
    "no",
    "queue",
    "worker",
    "pool",
    "bounded",
    "channel",
    "thread",
    "backpressure",
    "shutdown",
    "scope",
];
const LINES_PER_CHUNK: usize = 1_000;

/// An endless, deterministic stream of lines (xorshift over the vocabulary, Zipf-ish skew).
struct Lines {
    state: u64,
}

impl Iterator for Lines {
    type Item = String;
    fn next(&mut self) -> Option<String> {
        let mut line = String::with_capacity(80);
        let words = 6 + (self.state % 10) as usize;
        for i in 0..words {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            let r = (self.state % 1_000) as usize;
            let index = (r * r / 1_000) * VOCABULARY.len() / 1_000; // skewed towards the front
            if i > 0 {
                line.push(' ');
            }
            line.push_str(VOCABULARY[index]);
        }
        Some(line)
    }
}

/// Chunks of lines until `limit` bytes have been produced.
fn chunks(limit: u64) -> impl Iterator<Item = Vec<String>> {
    let mut lines = Lines {
        state: 0x2545_F491_4F6C_DD1D,
    };
    let mut produced = 0u64;
    std::iter::from_fn(move || {
        if produced >= limit {
            return None;
        }
        let chunk: Vec<String> = lines.by_ref().take(LINES_PER_CHUNK).collect();
        produced += chunk.iter().map(|l| l.len() as u64 + 1).sum::<u64>();
        Some(chunk)
    })
}

fn count(chunk: Vec<String>) -> (u64, HashMap<&'static str, u64>) {
    let mut counts = HashMap::new();
    let mut bytes = 0;
    for line in &chunk {
        bytes += line.len() as u64 + 1;
        for word in line.split_ascii_whitespace() {
            // Count against the vocabulary's own `&'static str`s: no allocation per word.
            if let Some(w) = VOCABULARY.iter().find(|v| **v == word) {
                *counts.entry(*w).or_insert(0) += 1;
            }
        }
    }
    (bytes, counts)
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    let megabytes: u64 = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("usage: wordfreq [MEGABYTES]"))
        .unwrap_or(200);
    let limit = megabytes * 1_000_000;
    let pool = WorkerPool::default();
    let bar = ProgressBar::new(limit);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes}  {bytes_per_sec}")
            .expect("a valid template"),
    );

    let start = Instant::now();
    let mut totals: HashMap<&'static str, u64> = HashMap::new();
    let mut bytes = 0u64;
    for (chunk_bytes, counts) in pool.map(chunks(limit), count) {
        bytes += chunk_bytes;
        for (word, n) in counts {
            *totals.entry(word).or_insert(0) += n;
        }
        bar.set_position(bytes.min(limit));
    }
    bar.finish();
    let elapsed = start.elapsed();

    let mut top: Vec<_> = totals.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    println!(
        "{:.1} MB in {:.2?} ({:.0} MB/s) on {} workers",
        bytes as f64 / 1e6,
        elapsed,
        bytes as f64 / 1e6 / elapsed.as_secs_f64(),
        pool.workers()
    );
    for (word, n) in top.iter().take(10) {
        println!("{n:>12}  {word}");
    }
    match peak_rss_kib() {
        Some(kib) => println!("peak RSS: {:.1} MiB", kib as f64 / 1024.0),
        None => println!("peak RSS: unavailable (no /proc)"),
    }
}
