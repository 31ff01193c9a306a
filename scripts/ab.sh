#!/usr/bin/env bash
# Paired A/B benchmark of two versions of boundpool in one process: which of two commits (or a
# commit and the working tree) is faster, on a machine too noisy for separate runs to tell.
#
#   scripts/ab.sh REV_A [REV_B|wt] [ROUNDS] [CASE-PREFIX ...]
#   scripts/ab.sh HEAD wt 15 tiny contended
#
# Both versions are copied into a scratch workspace (target/ab) as packages boundpool_a and
# boundpool_b, and scripts/ab/main.rs runs each case on A and B back to back, alternating the
# order, for ROUNDS rounds (default 15). It prints the median ns per job of each and the median
# of the per-round ratios B/A, with how many rounds B won: read a change as real only when the
# ratio and the win count agree (e.g. 0.85 with 13 of 15), and run it twice. `scripts/ab.sh HEAD
# HEAD` shows the noise of the day: identical code has given ratios of 0.95-1.03 at 7 rounds,
# and anywhere from 0.65 to 1.22 at 3.
set -euo pipefail
cd "$(dirname "$0")/.."
a=${1:?usage: scripts/ab.sh REV_A [REV_B|wt] [ROUNDS] [CASE-PREFIX ...]}
b=${2:-wt}
shift $(( $# < 2 ? $# : 2 ))
work=target/ab
rm -rf "$work/boundpool_a" "$work/boundpool_b" "$work/src"
mkdir -p "$work/src"

snapshot() { # snapshot REV|wt NAME
    local dir="$work/$2"
    mkdir -p "$dir"
    # Extracted with fresh modification times (tar -m): cargo decides what to rebuild by them,
    # and a snapshot older than a previous build's would be silently skipped.
    if [ "$1" = wt ]; then
        tar cf - Cargo.toml src | tar xmf - -C "$dir"
    else
        git archive "$1" Cargo.toml src | tar xmf - -C "$dir"
    fi
    # Rename the package, and drop the dev-dependencies and benches (the library's own
    # dependencies, its shuttle target and its lints stay).
    sed -i "0,/^name = \"boundpool\"/s//name = \"$2\"/" "$dir/Cargo.toml"
    sed -i '/^\[dev-dependencies\]/,/^\[target/{/^\[target/!d}' "$dir/Cargo.toml"
}
snapshot "$a" boundpool_a
snapshot "$b" boundpool_b
cp scripts/ab/main.rs "$work/src/main.rs"
cat > "$work/Cargo.toml" <<TOML
[package]
name = "boundpool-ab"
version = "0.0.0"
edition = "2021"
publish = false

[workspace]

[dependencies]
boundpool_a = { path = "boundpool_a" }
boundpool_b = { path = "boundpool_b" }
TOML
echo "A = $a, B = $b"
cargo run --quiet --release --manifest-path "$work/Cargo.toml" -- "$@"
