#!/usr/bin/env bash
# Memory and race checkers over the concurrency-heavy test binaries, on a stock stable toolchain.
#
#   valgrind memcheck       leaks (definite) and invalid reads/writes; no false positives seen
#   AddressSanitizer + LSan use-after-free, double free, leaks, in code built with
#                           -Zsanitizer=address (RUSTC_BOOTSTRAP=1: no nightly toolchain needed)
#   ThreadSanitizer         skipped: it needs -Zbuild-std, hence the rust-src component, which a
#                           stock toolchain lacks (and without build-std it reports false races)
#   helgrind / drd          not used: hundreds of false reports on futex mutexes and atomics
#
# Exits non-zero on any finding. `.ci/run` calls it.
set -euo pipefail
cd "$(dirname "$0")/.."

# The binaries that exercise the unsafe scope code, the result slots, cancellation, shutdown
# and every drop path. (exactly_once's million jobs would take minutes under valgrind.)
TESTS=(scope map results reentrancy shutdown drop_accounting bad_input)
# The host's own triple (ASan needs an explicit --target so that the build scripts and proc
# macros are not instrumented), and cargo's runner variable for it.
TARGET=$(rustc -vV | sed -n 's/^host: //p')
RUNNER_VAR="CARGO_TARGET_$(echo "$TARGET" | tr 'a-z-' 'A-Z_')_RUNNER"
fail=0
mkdir -p target

echo "--- valgrind memcheck"
if ! command -v valgrind >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    (apt-get update -qq && apt-get install -y -qq valgrind) >/dev/null 2>&1 || true
fi
if command -v valgrind >/dev/null 2>&1; then
    args=()
    for t in "${TESTS[@]}"; do args+=(--test "$t"); done
    export "$RUNNER_VAR=valgrind -q --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99"
    # Two throughput tests (1 MB read 50 times; 60,000 scoped jobs) outrun their 60 s deadlock
    # guard under valgrind's serialised, ~50x slower threads; ASan below still runs them.
    skip=(--skip many_jobs_read_one_borrowed_slice --skip many_scopes_of_many_tiny_jobs_all_finish)
    if cargo test --target "$TARGET" --target-dir target/valgrind "${args[@]}" -- --test-threads=2 \
        "${skip[@]}" > target/valgrind.log 2>&1; then
        echo "valgrind: clean"
    else
        fail=1
        echo "valgrind: FINDINGS"
    fi
    grep -E "test result|ERROR SUMMARY|definitely lost|Invalid|FAILED|panicked" target/valgrind.log || true
    unset "$RUNNER_VAR"
else
    echo "valgrind: not installed and cannot be installed here; skipped"
fi

echo "--- AddressSanitizer / LeakSanitizer"
args=()
for t in "${TESTS[@]}"; do args+=(--test "$t"); done
if RUSTC_BOOTSTRAP=1 RUSTFLAGS="-Zsanitizer=address" ASAN_OPTIONS="detect_leaks=1" \
    cargo test --target "$TARGET" --target-dir target/asan "${args[@]}" > target/asan.log 2>&1; then
    echo "asan: clean"
else
    fail=1
    echo "asan: FINDINGS"
fi
grep -E "test result|ERROR: AddressSanitizer|ERROR: LeakSanitizer|FAILED|panicked" target/asan.log || true

echo "--- ThreadSanitizer: skipped (needs the rust-src component for -Zbuild-std)"
exit "$fail"
