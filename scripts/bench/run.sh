#!/usr/bin/env bash
# run.sh: run lugo's benchmark suite and print one table.
#
#   scripts/bench/run.sh [--quick] [--procs N] [--no-build] [--peers] [WORKLOAD...]
#
#   --quick       smaller N everywhere (a smoke test in seconds; the targets
#                 are stated for the full sizes)
#   --procs N     passed to lugo as `lugo --procs N script.lua`
#   --no-build    do not run `cargo build --profile dist` first
#   --peers       lugo beside its peers instead (peers/peers.sh): Go with
#                 GOMAXPROCS=1 and 2, and a plain-Lua scheduler under
#                 lua5.4 and luajit (installed with apt-get if missing), on
#                 spawn parked pingpong fanin sleepers_100k sleepers_1k
#                 cancel (Go only: the plain-Lua scheduler has no contexts);
#                 then actors and preempt_latency, lugo alone (no peer runs
#                 them), each figure against its own target; beside an
#                 actor spawn, plain Lua states made and closed in C
#                 (peers/state_floor.c, gcc and liblua5.4-dev installed)
#   WORKLOAD      run only these: spawn parked pingpong fanin sleepers_100k
#                 sleepers_1k cancel ... (default: all)
#
#   LUGO=cmd      the interpreter to run (default: target/dist/lugo, built
#                 with `cargo build --profile dist` unless --no-build); may hold
#                 options, e.g. LUGO="taskset -c 0 target/dist/lugo"
#   BENCH_OUT=dir keep the raw output of each script there (default: a
#                 fresh temporary directory, printed at the end)
#   BENCH_TIMEOUT=s  per-script time limit (default 600, 120 with --quick)
#   BENCH_SETTLE=s   rest before each script (default 3; the kernel reclaims
#                 an exited process's memory meanwhile; --peers: PEERS_SETTLE)
#
# Each script prints lines `RESULT name=.. metric=.. lugo=.. baseline=..
# unit=.. target=<=X|>=X`; this script gathers them and computes
#   ratio = how many times the floor's cost lugo pays: lugo/baseline for
#           "<=" figures (time, memory), baseline/lugo for ">=" figures
#           (rates); 1.00x = as cheap as plain coroutines, 3.00x = 3 times
#           the cost
#   met?  = whether the lugo figure meets the target.
# Exit status: 0 when every script ran and printed its RESULT lines (missed
# targets do not fail the run); 1 when a script failed, timed out or printed
# no RESULT; 2 on a usage error or a failed build.

set -u -o pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=runs.sh
. "$HERE/runs.sh"
ROOT="$(cd "$HERE/../.." && pwd)"
ALL=(spawn parked pingpong fanin sleepers_100k sleepers_1k cancel leaks leak_server preempt_latency sysmon_idle deadlock_latency cpu lua net actors)
PEERS=(pingpong spawn parked fanin sleepers_100k sleepers_1k cancel)
# Rows of issue 13's table that no peer runs: lugo alone, held to its target.
LUGO_ONLY=(actors preempt_latency)

quick=0
procs=""
build=1
peers=0
only=()
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --procs) [ $# -ge 2 ] || { echo "run.sh: --procs needs a number" >&2; exit 2; }
             procs="$2"; shift ;;
    --procs=*) procs="${1#--procs=}" ;;
    --no-build) build=0 ;;
    --peers) peers=1 ;;
    -h|--help) sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    *) only+=("${1%.lua}") ;;
  esac
  shift
done
if [ -n "$procs" ] && ! [[ "$procs" =~ ^[0-9]+$ ]]; then
  echo "run.sh: --procs wants a number, got '$procs'" >&2; exit 2
fi
if [ "$peers" = 1 ]; then
  [ ${#only[@]} -gt 0 ] || only=("${PEERS[@]}" "${LUGO_ONLY[@]}")
  for w in "${only[@]}"; do
    [[ " ${PEERS[*]} ${LUGO_ONLY[*]} " == *" $w "* ]] || { echo "run.sh: no peers for '$w' (have: ${PEERS[*]} ${LUGO_ONLY[*]})" >&2; exit 2; }
  done
fi
[ ${#only[@]} -gt 0 ] || only=("${ALL[@]}")
for w in "${only[@]}"; do
  [ -f "$HERE/$w.lua" ] || [ -f "$HERE/$w.sh" ] || { echo "run.sh: no workload '$w' (have: ${ALL[*]})" >&2; exit 2; }
done

# The interpreter command, as words.
if [ -n "${LUGO:-}" ]; then
  read -r -a lugo_cmd <<< "$LUGO"
else
  bin="${CARGO_TARGET_DIR:-$ROOT/target}/dist/lugo"
  if [ "$build" = 1 ]; then
    echo "run.sh: cargo build --profile dist" >&2
    if ! (cd "$ROOT" && cargo build --profile dist --quiet); then
      echo "run.sh: build failed" >&2; exit 2
    fi
  fi
  [ -x "$bin" ] || { echo "run.sh: no binary at $bin" >&2; exit 2; }
  lugo_cmd=("$bin")
fi
[ -n "$procs" ] && lugo_cmd+=(--procs "$procs")

# parked.lua re-runs itself in fresh processes: hand it the same command,
# shell-quoted.
LUGO_BENCH_BIN="$(printf '%q ' "${lugo_cmd[@]}")"
export LUGO_BENCH_BIN
if [ "$quick" = 1 ]; then export LUGO_BENCH_QUICK=1; else unset LUGO_BENCH_QUICK; fi
unset LUGO_BENCH_PART

limit="${BENCH_TIMEOUT:-$([ "$quick" = 1 ] && echo 120 || echo 600)}"
out="${BENCH_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/lugo-bench.XXXXXX")}"
mkdir -p "$out"
: > "$out/results.txt"

if [ "$peers" = 1 ]; then
  echo "lugo bench --peers: $(printf '%s ' "${lugo_cmd[@]}")| $(nproc) CPUs | $([ "$quick" = 1 ] && echo quick || echo full) sizes | $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo 'no commit')"
  LUGO_ONLY="${LUGO_ONLY[*]}" PEERS_OUT="$out" PEERS_LIMIT="$limit" PEERS_QUICK="$quick" PEERS_WORKLOADS="${only[*]}" \
    exec bash "$HERE/peers/peers.sh"
fi

echo "lugo bench: $(printf '%s ' "${lugo_cmd[@]}")| $(nproc) CPUs | $([ "$quick" = 1 ] && echo quick || echo full) sizes | $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo 'no commit')"

failed=()
for w in "${only[@]}"; do
  settle "${BENCH_SETTLE:-3}"
  printf '  %-14s ' "$w" >&2
  t0=$(date +%s.%N)
  if [ -f "$HERE/$w.sh" ]; then
    # A workload that must time whole lugo processes (deadlock latency).
    LUGO="${lugo_cmd[*]}" timeout --kill-after=5 "$limit" bash "$HERE/$w.sh" \
      > "$out/$w.out" 2> "$out/$w.err"
  else
    timeout --kill-after=5 "$limit" "${lugo_cmd[@]}" "$HERE/$w.lua" \
      > "$out/$w.out" 2> "$out/$w.err"
  fi
  rc=$?
  t1=$(date +%s.%N)
  nres=$(grep -c '^RESULT ' "$out/$w.out")
  if ! outcome "$t0" "$t1" "$rc" "$nres" "$out/$w.err" "no RESULT line"; then
    failed+=("$w")
    echo "FAILED name=$w why=${WHY// /_}" >> "$out/results.txt"
  fi
  grep '^RESULT ' "$out/$w.out" >> "$out/results.txt"
done

echo
awk '
function fmt(v,   a) {
  if (v == "na" || v == "") return "na"
  v += 0; a = v < 0 ? -v : v
  if (a >= 1e9) return sprintf("%.2fG", v / 1e9)
  if (a >= 1e6) return sprintf("%.2fM", v / 1e6)
  if (a >= 1e4) return sprintf("%.1fk", v / 1e3)
  if (a >= 100) return sprintf("%.0f", v)
  return sprintf("%.3g", v)
}
$1 == "FAILED" {
  n++
  name = $2; sub(/^name=/, "", name); why = $3; sub(/^why=/, "", why); gsub(/_/, " ", why)
  row[n, 1] = name; row[n, 2] = "(" why ")"
  for (c = 3; c <= 6; c++) row[n, c] = "-"
  row[n, 3] = "FAILED"; row[n, 7] = "-"
  next
}
$1 == "RESULT" {
  delete f
  for (i = 2; i <= NF; i++) {
    k = $i; sub(/=.*/, "", k)
    v = $i; sub(/^[^=]*=/, "", v)
    f[k] = v
  }
  op = substr(f["target"], 1, 2); tv = substr(f["target"], 3) + 0
  l = f["lugo"]; b = f["baseline"]
  ratio = "-"
  if (l != "na" && b != "na" && l + 0 != 0 && b + 0 != 0)
    ratio = sprintf("%.2fx", op == ">=" ? b / l : l / b)
  met = "?"
  # A target ending in "x" bounds the ratio lugo/baseline (cpu.sh).
  isratio = (f["target"] ~ /x$/)
  if (isratio && l != "na" && b != "na" && b + 0 != 0) {
    r = (l + 0) / (b + 0)
    met = (op == "<=" ? r <= tv : r >= tv) ? "yes" : "NO"
  } else if (!isratio && l != "na") {
    if (op == ">=") met = (l + 0 >= tv) ? "yes" : "NO"
    else if (op == "<=") met = (l + 0 <= tv) ? "yes" : "NO"
  }
  n++
  row[n, 1] = f["name"]; row[n, 2] = f["metric"] " (" f["unit"] ")"
  row[n, 3] = fmt(l); row[n, 4] = fmt(b); row[n, 5] = ratio
  row[n, 6] = op " " fmt(tv) (isratio ? "x" : ""); row[n, 7] = met
  if (met == "yes") nmet++
  nfig++
}
END {
  split("workload|metric|lugo|baseline|ratio|target|met?", head, "|")
  for (c = 1; c <= 7; c++) w[c] = length(head[c])
  for (r = 1; r <= n; r++) for (c = 1; c <= 7; c++)
    if (length(row[r, c]) > w[c]) w[c] = length(row[r, c])
  line = ""
  for (c = 1; c <= 7; c++) {
    fm[c] = (c >= 3 && c <= 5) ? "%" w[c] "s" : "%-" w[c] "s"
    line = line sprintf(fm[c], head[c]) (c < 7 ? " | " : "")
  }
  sub(/ +$/, "", line)
  print line
  sep = ""
  for (c = 1; c <= 7; c++) { s = sprintf("%" w[c] "s", ""); gsub(/ /, "-", s); sep = sep s (c < 7 ? "-|-" : "\n") }
  printf "%s", sep
  for (r = 1; r <= n; r++) {
    line = ""
    for (c = 1; c <= 7; c++) line = line sprintf(fm[c], row[r, c]) (c < 7 ? " | " : "")
    sub(/ +$/, "", line)
    print line
  }
  printf "\n%d of %d targets met\n", nmet, nfig
}' "$out/results.txt"

echo "raw output: $out"
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]}" >&2
  exit 1
fi
exit 0
