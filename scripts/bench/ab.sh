#!/usr/bin/env bash
# ab.sh: compare two lugo binaries on the benchmark workloads, in the same
# run, interleaved (A B, then B A, ...) so that a noisy neighbour hurts both.
#
#   scripts/bench/ab.sh A_BIN B_BIN [ROUNDS] [WORKLOAD...]
#
# Each round runs every workload once with each binary (floors skipped:
# LUGO_BENCH_NO_FLOOR=1) and keeps the lugo figure of each RESULT line.
# Prints, per figure, the median of A and of B over the rounds and B's
# cost relative to A: B/A for "<=" figures (time, memory), A/B for ">="
# figures (rates); 1.00x = the same, above 1 = B is worse.
# WORKLOAD: a script name of this folder (pingpong, spawn, ..., or net for
# net.sh). Default: pingpong spawn fanin parked sleepers_1k preempt_latency net.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
[ $# -ge 2 ] || { sed -n 2,13p "$0" >&2; exit 2; }
A=$1 B=$2; shift 2
ROUNDS=${1:-5}; [ $# -ge 1 ] && shift
WORK=("$@")
[ ${#WORK[@]} -gt 0 ] || WORK=(pingpong spawn fanin parked sleepers_1k preempt_latency net)
OUT=$(mktemp -d "${TMPDIR:-/tmp}/lugo-ab.XXXXXX")
export LUGO_BENCH_NO_FLOOR=1 LUGO_BENCH_REPS=${LUGO_BENCH_REPS:-1}

run() { # side bin workload round
  local side=$1 bin=$2 w=$3 r=$4
  local log="$OUT/$w.$side.$r"
  if [ "$w" = net ]; then
    LUGO="$bin" bash "$HERE/net.sh" > "$log" 2>&1 || echo "ab.sh: $w ($side) failed" >&2
  else
    LUGO_BENCH_BIN="$bin" timeout 600 "$bin" "$HERE/$w.lua" > "$log" 2>&1 \
      || echo "ab.sh: $w ($side) failed" >&2
  fi
  grep '^RESULT' "$log" | sed "s/^/$side /" >> "$OUT/results" || true
}

for r in $(seq "$ROUNDS"); do
  for w in "${WORK[@]}"; do
    if [ $((r % 2)) = 1 ]; then run A "$A" "$w" "$r"; run B "$B" "$w" "$r"
    else run B "$B" "$w" "$r"; run A "$A" "$w" "$r"; fi
  done
  echo "ab.sh: round $r of $ROUNDS done" >&2
done

echo "A = $A"
echo "B = $B"
echo "$ROUNDS rounds, medians of the lugo figure; B vs A: above 1.00x = B worse"
awk '
  { side = $1; delete f
    for (i = 3; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
    k = f["name"] " | " f["metric"] " (" f["unit"] ")"
    if (!(k in seen)) { seen[k] = 1; order[++n] = k; dir[k] = substr(f["target"], 1, 1) }
    v[k, side, ++c[k, side]] = f["lugo"] + 0 }
  function median(k, s,   m, i, j, t, a) {
    m = c[k, s]; if (m == 0) return "na"
    for (i = 1; i <= m; i++) a[i] = v[k, s, i]
    for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2 }
  END {
    printf "| figure | A | B | B vs A |\n|---|---|---|---|\n"
    for (i = 1; i <= n; i++) { k = order[i]; a = median(k, "A"); b = median(k, "B")
      r = "na"
      if (a != "na" && b != "na" && a > 0 && b > 0) r = sprintf("%.2fx", dir[k] == ">" ? a / b : b / a)
      printf "| %s | %.4g | %.4g | %s |\n", k, a, b, r } }' "$OUT/results"
echo "(raw output: $OUT)"
