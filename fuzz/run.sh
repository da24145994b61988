#!/usr/bin/env bash
# `make fuzz`: runs every cargo-fuzz target of fuzz/ for FUZZ_SECONDS each (default 180), up to
# FUZZ_JOBS targets at a time (default: the number of CPUs, at most 2), and prints per target the
# execs, exec/s, coverage (libFuzzer's final `cov:` and `ft:`), corpus growth and crashes.
#
#   make fuzz                              every target, 180 s each
#   make fuzz FUZZ_SECONDS=30 FUZZ_TARGETS="filter patch"
#   FUZZ_CMIN=1 make fuzz                  afterwards, merge the new finds into fuzz/corpus/ (minimised)
#
# Installs what it needs: the nightly toolchain (rustup) and cargo-fuzz (pinned, into .tools/).
# A tool that cannot be installed is a failure, never a skip (in CI as anywhere). New corpus
# entries go to fuzz/work/<target>/ (not committed); the committed seeds in fuzz/corpus/<target>/
# are read only. Crashes land in fuzz/artifacts/<target>/: minimise one with
# `cargo +nightly fuzz tmin <target> <file>`, then put it in fuzz/regressions/<target>/ so
# `make test` (tests/fuzz_regressions.rs) keeps running it.
set -euo pipefail

cd "$(dirname "$0")/.."
CARGO_FUZZ_VERSION=0.13.2
TOOLS=$PWD/.tools
export PATH="$TOOLS/bin:$PATH"
SECONDS_EACH=${FUZZ_SECONDS:-180}
TARGETS=${FUZZ_TARGETS:-resource patch filter query token search config}
JOBS=${FUZZ_JOBS:-$(( $(nproc) < 2 ? 1 : 2 ))}
# Exec time per input above which libFuzzer reports a timeout (a hang or superlinear input).
TIMEOUT=${FUZZ_TIMEOUT:-10}
LOGS=fuzz/work/logs

fail() { echo "make fuzz: $*" >&2; exit 1; }

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "installing the nightly Rust toolchain (cargo fuzz needs it)"
  rustup toolchain install nightly --profile minimal || fail "cannot install the nightly toolchain"
fi
if [ "$(cargo-fuzz --version 2>/dev/null | awk '{print $2}')" != "$CARGO_FUZZ_VERSION" ]; then
  echo "installing cargo-fuzz $CARGO_FUZZ_VERSION into .tools/ (about 2 minutes, once)"
  cargo install --quiet --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION" --root "$TOOLS" \
    || fail "cannot install cargo-fuzz $CARGO_FUZZ_VERSION"
fi

echo "building the fuzz targets (cargo +nightly fuzz build, sanitizer: address)"
mkdir -p "$LOGS"
cargo +nightly fuzz build >/dev/null 2>"$LOGS/build.log" || { cat "$LOGS/build.log" >&2; fail "build failed"; }

run_target() {
  local target=$1
  mkdir -p "fuzz/work/$target" "fuzz/artifacts/$target"
  # Config::from_json leaks the schema it compiles for the omni profile (Box::leak in
  # ResourceSchema::omni_users: meant to live as long as the VM), so leak detection is off for
  # the config target only: it would report every configuration parsed.
  local leaks=1
  [ "$target" != config ] || leaks=0
  rm -f "$LOGS/$target.rc"
  ASAN_OPTIONS="detect_leaks=$leaks" cargo +nightly fuzz run "$target" "fuzz/work/$target" "fuzz/corpus/$target" -- \
    -max_total_time="$SECONDS_EACH" -timeout="$TIMEOUT" -rss_limit_mb=2048 -detect_leaks="$leaks" \
    -print_final_stats=1 >"$LOGS/$target.log" 2>&1
  echo $? >"$LOGS/$target.rc"
}

echo "fuzzing: $TARGETS (${SECONDS_EACH}s each, $JOBS at a time; logs in $LOGS/)"
started=$(date +%s)
touch "$LOGS/.started"
for target in $TARGETS; do
  [ -f "fuzz/fuzz_targets/$target.rs" ] || fail "no fuzz target '$target'"
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
  ( set +e; run_target "$target" ) &
done
wait

printf '\n%-9s %12s %9s %7s %8s %11s %8s  %s\n' target execs exec/s cov ft corpus crashes result
failed=0
for target in $TARGETS; do
  log="$LOGS/$target.log"
  execs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$log" | tail -1)
  rate=$(sed -nE 's/^stat::average_exec_per_sec: *([0-9]+).*/\1/p' "$log" | tail -1)
  # The last status line: `#N DONE cov: X ft: Y corp: Z/Zb ...` (or the last one before a crash).
  last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1 || true)
  cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
  ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
  corp=$(sed -nE 's/.* corp: ([0-9]+\/[0-9]+[a-zA-Z]*).*/\1/p' <<<"$last")
  crashes=$(find "fuzz/artifacts/$target" -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) -newer "$LOGS/.started" 2>/dev/null | wc -l)
  result=ok
  if [ "$(cat "$LOGS/$target.rc" 2>/dev/null)" != 0 ] || [ "$crashes" != 0 ]; then
    result="FAILED (see $log)"
    failed=1
  fi
  printf '%-9s %12s %9s %7s %8s %11s %8s  %s\n' "$target" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$crashes" "$result"
done
echo "total: $(( $(date +%s) - started ))s"

if [ "${FUZZ_CMIN:-0}" = 1 ]; then
  # Merges what fuzzing found into the committed corpus, keeping what is there (the seeds): only
  # inputs that cover new edges are added, as few as cover them (set cover, edges only: hit
  # counters and comparison features would keep thousands of files).
  for target in $TARGETS; do
    echo "merging fuzz/work/$target into fuzz/corpus/$target"
    ASAN_OPTIONS=detect_leaks=0 cargo +nightly fuzz run "$target" "fuzz/corpus/$target" "fuzz/work/$target" -- \
      -merge=1 -set_cover_merge=1 -use_counters=0 -use_cmp=0 -detect_leaks=0 >"$LOGS/$target.merge.log" 2>&1 \
      || fail "merging $target failed (see $LOGS/$target.merge.log)"
  done
  du -sh --apparent-size fuzz/corpus
fi

[ "$failed" = 0 ] || fail "a target crashed or violated a property: minimise the input into fuzz/regressions/<target>/"
