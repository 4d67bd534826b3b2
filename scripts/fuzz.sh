#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo-fuzz, libFuzzer) of crier's input parsers and codecs: the
# crontab parser, the subscriber CSV import, the Alertmanager/Grafana payloads, length fitting
# and SMS splitting, and the delivery codec (targets in fuzz/fuzz_targets/, see fuzz/README.md).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]   # default: 20 s for each of the five targets
#
# Each target starts from its committed corpus (fuzz/corpus/TARGET/, read only here: new inputs
# go to a scratch directory) and runs for SECONDS. Exits non-zero on the first crash or failed
# property; libFuzzer prints the input and saves it under fuzz/artifacts/TARGET/.
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${1:-20}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(cron csv_import hook_payloads fit codec)

export PATH="$HOME/.cargo/bin:$PATH"
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz (cargo install, cached in ~/.cargo/bin)"
  cargo install cargo-fuzz --locked
fi
# cargo-fuzz passes nightly-only flags (-Z..., -C passes=sancov-module); RUSTC_BOOTSTRAP lets the
# stable toolchain accept them. `-s none`: no AddressSanitizer (the code under test is safe
# Rust; ASan would also rebuild the C dependencies), libFuzzer's coverage guidance stays.
export RUSTC_BOOTSTRAP=1
# cargo fuzz builds release with debug assertions and overflow checks by default, and with one
# codegen unit, which made the build of crier and its dependencies take over ten minutes of CI's
# thirty on two cores; sixteen units (cargo-fuzz's own advice for faster builds) cost a little
# fuzzing speed in these short runs.
flags=(-s none --codegen-units 16)

echo "== cargo fuzz build (${targets[*]})"
for t in "${targets[@]}"; do
  cargo fuzz build "${flags[@]}" "$t"
done

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
for t in "${targets[@]}"; do
  mkdir -p "$scratch/$t" "fuzz/corpus/$t"
  echo "== fuzz $t for ${secs}s"
  log="$scratch/$t.log"
  if ! cargo fuzz run "${flags[@]}" "$t" "$scratch/$t" "fuzz/corpus/$t" -- \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=4096 -print_final_stats=1 \
    >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    echo "fuzz target $t failed: the input is under fuzz/artifacts/$t/" >&2
    exit 1
  fi
  grep -E '^stat::(number_of_executed_units|new_units_added)' "$log" || true
done
echo "== fuzzing: no crash in ${#targets[@]} target(s), ${secs}s each"
