#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo fuzz, libFuzzer) of the parsers at the edges:
# the holiday calendar and configuration with the deadline arithmetic, the
# 问政江西 signature and payload, the Open311 form, and the 台账 CSV row.
# Builds the targets (nightly, AddressSanitizer, debug assertions), replays
# the inputs that once crashed (fuzz/regressions/<target>/), runs each target
# for FUZZ_SECONDS (default 60) in one process, and prints per target the
# executions, exec/s, coverage, corpus size and crashes, then a total line.
#
#   bench/fuzz.sh                      # every target, 60 s each
#   FUZZ_SECONDS=600 bench/fuzz.sh wenzheng csv_import
#   FUZZ_SANITIZER=none bench/fuzz.sh  # faster build and runs, no ASan
#
# Seeds are fuzz/corpus/<target>/seed-*, dictionaries fuzz/dict/<target>.dict
# (field names, enum values, boundary numbers); what libFuzzer finds is kept in
# fuzz/work/corpus/<target>/ (not committed) and reused by the next run. A
# crash stops that target's run; its input is in fuzz/artifacts/<target>/
# and the log in fuzz/work/<target>.log.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_EACH="${FUZZ_SECONDS:-60}"
SANITIZER="${FUZZ_SANITIZER:-address}"
ALL=(calendar_config wenzheng open311_form csv_import)
if [ $# -gt 0 ]; then TARGETS=("$@"); else TARGETS=("${ALL[@]}"); fi
FLAGS=(-a -s "$SANITIZER")

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz
[ -n "${NO_BUILD:-}" ] || cargo +nightly fuzz build "${FLAGS[@]}"
# The binaries are run directly, not through `cargo fuzz run`, so that edits
# to src/ during a long run do not start a rebuild (NO_BUILD=1: as built).
BIN="fuzz/target/$(rustc +nightly -vV | sed -n 's/^host: //p')/release"
# As `cargo fuzz run` sets it: SQLite's amalgamation defines static tables
# twice, which ASan would stop on before the first input.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_odr_violation=0}"

mkdir -p fuzz/work
# First the inputs that once crashed (fuzz/regressions/<target>/): each must
# now run clean.
for t in "${TARGETS[@]}"; do
  set -- fuzz/regressions/"$t"/*
  [ -e "$1" ] || continue
  if "$BIN/$t" "$@" >"fuzz/work/$t.regressions.log" 2>&1; then
    echo "$t: $# regression input(s) pass"
  else
    echo "$t: a regression input crashes again (fuzz/work/$t.regressions.log)"; exit 1
  fi
done
printf '%-16s %12s %9s %8s %7s %7s %8s %8s\n' \
  target executions exec/s seconds cov ft corpus crashes
total_execs=0 total_secs=0 total_crashes=0
for t in "${TARGETS[@]}"; do
  corpus="fuzz/work/corpus/$t"
  log="fuzz/work/$t.log"
  mkdir -p "$corpus" "fuzz/artifacts/$t"
  dict=()
  [ -f "fuzz/dict/$t.dict" ] && dict=(-dict="fuzz/dict/$t.dict")
  before=$(find "fuzz/artifacts/$t" -type f | wc -l)
  start=$(date +%s)
  # One process (no -jobs/-workers: one job, one worker on this 2-core
  # machine); new inputs go to the first directory, the seeds stay as they are.
  "$BIN/$t" "$corpus" "fuzz/corpus/$t" -artifact_prefix="fuzz/artifacts/$t/" \
    -max_total_time="$SECONDS_EACH" -timeout=10 -print_final_stats=1 "${dict[@]}" \
    >"$log" 2>&1 || true
  secs=$(( $(date +%s) - start ))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  size=$(find "$corpus" -type f | wc -l)
  crashes=$(( $(find "fuzz/artifacts/$t" -type f | wc -l) - before ))
  printf '%-16s %12s %9s %8s %7s %7s %8s %8s\n' \
    "$t" "${execs:-?}" "${rate:-?}" "$secs" "${cov:-?}" "${ft:-?}" "$size" "$crashes"
  if [ "$crashes" -gt 0 ]; then
    grep -E 'panicked at|^SUMMARY|Test unit written' "$log" | sed 's/^/    /' | head -5
  fi
  total_execs=$(( total_execs + ${execs:-0} ))
  total_secs=$(( total_secs + secs ))
  total_crashes=$(( total_crashes + crashes ))
done
printf '%-16s %12s %9s %8s %7s %7s %8s %8s\n' total "$total_execs" \
  "$(( total_execs / (total_secs > 0 ? total_secs : 1) ))" "$total_secs" - - - "$total_crashes"
[ "$total_crashes" -eq 0 ]
