#!/usr/bin/env bash
# deadlock_latency.sh: how long after the last goroutine blocks lugo reports
# the deadlock. Each run prints the monotonic time just before main blocks
# forever; the runtime's report is timed by the moment the process ends.
# Prints a RESULT line like the Lua workloads (median of runs, ms).
set -euo pipefail
read -r -a LUGO <<< "${LUGO:-target/dist/lugo}"
RUNS=${RUNS:-$([ "${LUGO_BENCH_QUICK:-}" = 1 ] && echo 5 || echo 20)}
lat=()
for _ in $(seq "$RUNS"); do
  start=$(date +%s%N)
  # The script's own clock is not the shell's: time the whole process and
  # subtract a run that exits at the same point without blocking.
  "${LUGO[@]}" -e 'local c = chan() c:recv()' >/dev/null 2>&1 || true
  mid=$(date +%s%N)
  "${LUGO[@]}" -e 'local c = chan()' >/dev/null 2>&1
  end=$(date +%s%N)
  lat+=($(( (mid - start) - (end - mid) )))
done
IFS=$'\n' sorted=($(sort -n <<<"${lat[*]}")); unset IFS
median=${sorted[$(( ${#sorted[@]} / 2 ))]}
awk -v ns="$median" 'BEGIN { v = ns / 1e6; if (v < 0) v = 0; printf "RESULT name=deadlock metric=latency lugo=%.3f baseline=na unit=ms target=<=20\n", v }'
