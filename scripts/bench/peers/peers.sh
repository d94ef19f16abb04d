#!/usr/bin/env bash
# peers.sh: lugo beside its peers on the scheduler workloads; the body of
# `run.sh --peers` (run.sh parses the options, builds lugo and calls this
# with the environment below). For each workload it runs lugo's own script
# (with its floor: the same work in a plain Lua state, `lugo --plain`), then
#   Go P=1, Go P=2   peers/go (one binary, one workload per run) with
#                    GOMAXPROCS=1 and GOMAXPROCS=2
#   lua5.4, LuaJIT   peers/lua_peers.lua on peers/sched.lua, a plain-Lua
#                    round-robin scheduler, under Debian's lua5.4 and luajit
# and prints one table: each figure of each side, lugo/peer against the
# peer that the target names, and whether it is met.
# Installs golang-go, lua5.4 and luajit with apt-get if missing (benchmark
# peers only, never a test dependency).
#
# Environment (set by run.sh): LUGO_BENCH_BIN (the lugo command, shell-
# quoted words), PEERS_OUT (output directory), PEERS_LIMIT (per-run time
# limit, s), PEERS_QUICK (1 or 0), PEERS_WORKLOADS (script names);
# PEERS_SETTLE (seconds of rest before each run, default 3).
set -u -o pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BENCH="$(cd "$HERE/.." && pwd)"
# shellcheck source=../runs.sh
. "$BENCH/runs.sh"
eval "lugo_cmd=(${LUGO_BENCH_BIN:?peers.sh: LUGO_BENCH_BIN is not set})"
out="${PEERS_OUT:?}"
limit="${PEERS_LIMIT:-600}"
read -r -a only <<< "${PEERS_WORKLOADS:?}"
if [ "${PEERS_QUICK:-0}" = 1 ]; then export LUGO_BENCH_QUICK=1; else unset LUGO_BENCH_QUICK; fi

# need CMD PACKAGE: installs PACKAGE unless CMD is on PATH.
need() {
  command -v "$1" >/dev/null 2>&1 || install_peer "$2"
}
need go golang-go && need lua5.4 lua5.4 && need luajit luajit || exit 2
# The floor of an actor's spawn: plain Lua states made and closed in C.
# needh HEADER PACKAGE: installs PACKAGE unless HEADER exists.
needh() {
  [ -f "$1" ] || install_peer "$2"
}
statefloor=""
if [[ " ${only[*]} " == *" actors "* ]]; then
  needh /usr/include/lua5.4/lua.h liblua5.4-dev && need cc gcc || exit 2
  statefloor="$out/state_floor"
  if ! cc -O2 -I/usr/include/lua5.4 "$HERE/state_floor.c" -o "$statefloor" -llua5.4 -lpthread 2> "$out/statefloor.err"; then
    echo "run.sh: building state_floor.c failed:" >&2; cat "$out/statefloor.err" >&2; exit 2
  fi
fi

# Workloads whose only peer is Go.
GO_ONLY="cancel"

gobin="$out/gopeers"
if ! (cd "$HERE/go" && GOCACHE="$out/gocache" GO111MODULE=off go build -o "$gobin" .) 2> "$out/gobuild.err"; then
  echo "run.sh: building the Go peers failed:" >&2; cat "$out/gobuild.err" >&2; exit 2
fi
rm -rf "$out/gocache"

echo "peers: $(go version | awk '{ print $3 }') | $(lua5.4 -v 2>&1 | awk '{ print $1, $2 }') | $(luajit -v 2>&1 | awk '{ print $1, $2 }')"

: > "$out/results.txt"
failed=()
# run SIDE WORKLOAD CMD...: one run; its figures go to results.txt as
# `PEER side=SIDE name=.. metric=.. value=.. unit=..`.
run() {
  local side=$1 w=$2; shift 2
  local log="$out/$w.$side"
  settle "${PEERS_SETTLE:-3}"
  printf '  %-14s %-7s ' "$w" "$side" >&2
  local t0 t1 rc n
  t0=$(date +%s.%N)
  timeout --kill-after=5 "$limit" "$@" > "$log.out" 2> "$log.err"
  rc=$?
  t1=$(date +%s.%N)
  if [ "$side" = lugo ]; then
    # RESULT name=.. metric=.. lugo=V baseline=.. unit=.. target=..
    # (its own target and baseline kept: a row without a peer is held to it)
    sed -n 's/^RESULT name=\([^ ]*\) metric=\([^ ]*\) lugo=\([^ ]*\) baseline=\([^ ]*\) unit=\([^ ]*\) target=\([^ ]*\).*/PEER name=\1 metric=\2 value=\3 unit=\5 base=\4 target=\6/p' "$log.out" > "$log.peer"
  else
    grep '^PEER ' "$log.out" > "$log.peer"
  fi
  n=$(wc -l < "$log.peer")
  if ! outcome "$t0" "$t1" "$rc" "$n" "$log.err" "no result line"; then
    failed+=("$w/$side")
    echo "FAILED side=$side name=${w//_/} why=${WHY// /_}" >> "$out/results.txt"
  fi
  sed "s/^PEER /PEER side=$side /" "$log.peer" >> "$out/results.txt"
}

for w in "${only[@]}"; do
  pw=${w//_/}                       # sleepers_100k.lua -> sleepers100k
  run lugo "$w" "${lugo_cmd[@]}" "$BENCH/$w.lua"
  # Workloads no peer can run (actors, preemption): lugo and its target;
  # beside an actor's spawn, plain Lua states made and closed in C on as
  # many threads as CPUs (state_floor.c, Debian's lua5.4 library).
  if [ "$w" = actors ] && [ -n "$statefloor" ]; then
    run lua54 actors "$statefloor" "$(nproc)" 20000
  fi
  [[ " ${LUGO_ONLY:-} " == *" $w "* ]] && continue
  run go1 "$w" env GOMAXPROCS=1 "$gobin" "$pw"
  run go2 "$w" env GOMAXPROCS=2 "$gobin" "$pw"
  # Workloads the plain-Lua scheduler cannot run (it has no contexts).
  [[ " $GO_ONLY " == *" $w "* ]] && continue
  run lua54 "$w" lua5.4 "$HERE/lua_peers.lua" "$pw"
  run luajit "$w" luajit "$HERE/lua_peers.lua" "$pw"
done

echo
awk '
function fmt(v,   a) {
  if (v == "" ) return "-"
  if (v == "na" || v == "FAILED") return v
  v += 0; a = v < 0 ? -v : v
  if (a >= 1e9) return sprintf("%.2fG", v / 1e9)
  if (a >= 1e6) return sprintf("%.2fM", v / 1e6)
  if (a >= 1e4) return sprintf("%.1fk", v / 1e3)
  if (a >= 100) return sprintf("%.0f", v)
  return sprintf("%.3g", v)
}
BEGIN {
  nside = split("lugo go1 go2 lua54 luajit", sides, " ")
  split("Go P=1|Go P=2|lua5.4 sched|LuaJIT sched", pname, "|")
  for (i = 2; i <= nside; i++) label[sides[i]] = pname[i - 1]
  # The target of a row (issue 13): the peer lugo is held to and how.
  vs["pingpong round_trip"] = "go1";   op["pingpong round_trip"] = "<="
  vs["spawn rate"] = "go1";            op["spawn rate"] = ">="
  vs["parked rss_per_g"] = "lua54";    op["parked rss_per_g"] = "<="
  vs["parked heap_per_g"] = "lua54";   op["parked heap_per_g"] = "<="
  vs["fanin rate"] = "go2";            op["fanin rate"] = ">="
  vs["sleepers100k wall"] = "go2";     op["sleepers100k wall"] = "<="
  vs["cancel per_g"] = "go1";          op["cancel per_g"] = "<="
}
{
  delete f
  for (i = 2; i <= NF; i++) { k = $i; sub(/=.*/, "", k); v = $i; sub(/^[^=]*=/, "", v); f[k] = v }
}
$1 == "FAILED" { bad[f["name"], f["side"]] = 1; names[f["name"]] = 1; next }
$1 == "PEER" {
  key = f["name"] " " f["metric"]
  if (!(key in seen)) { seen[key] = 1; order[++n] = key; unit[key] = f["unit"]; wl[key] = f["name"] }
  val[key, f["side"]] = f["value"]
  if (f["side"] == "lugo") { own[key] = f["target"]; base[key] = f["base"] }
}
END {
  split("workload|metric|lugo|Go P=1|Go P=2|lua5.4 sched|LuaJIT sched|lugo/peer|peer|target|met?|vs floor", head, "|")
  nc = 12
  r = 0
  for (i = 1; i <= n; i++) {
    key = order[i]; r++
    split(key, kk, " ")
    row[r, 1] = kk[1]; row[r, 2] = kk[2] " (" unit[key] ")"
    for (s = 1; s <= nside; s++) {
      v = val[key, sides[s]]
      if (v == "" && bad[kk[1], sides[s]]) v = "FAILED"
      row[r, 2 + s] = fmt(v)
    }
    p = (key in vs) ? vs[key] : "go1"
    l = val[key, "lugo"]; b = val[key, p]
    ratio = "-"
    if (l != "" && b != "" && l != "na" && b != "na" && b + 0 != 0)
      ratio = sprintf("%.2fx", (l + 0) / (b + 0))
    row[r, 8] = ratio; row[r, 9] = label[p]
    met = "-"; tgt = "-"
    if (key in vs) {
      tgt = op[key] " 1.00x"
      if (ratio != "-") met = ((op[key] == "<=") ? (l + 0 <= b + 0) : (l + 0 >= b + 0)) ? "yes" : "NO"
      else met = "?"
      nfig++; if (met == "yes") nmet++
    } else if (own[key] != "" && l != "" && l != "na") {
      # No peer target: the figure against the target in its RESULT line, an
      # absolute bound or (ending in x) a bound on lugo/baseline.
      t = own[key]; o = substr(t, 1, 2); tv = substr(t, 3)
      x = l + 0; tgt = o " " tv
      if (tv ~ /x$/) {
        if (base[key] == "" || base[key] == "na") x = ""
        else { x = (l + 0) / (base[key] + 0); ratio = sprintf("%.2fx", x); row[r, 9] = "its serial run" }
      } else if (b == "" && val[key, "lua54"] != "") {
        # A floor measured beside it (state_floor.c): the ratio to it.
        ratio = sprintf("%.2fx", (l + 0) / (val[key, "lua54"] + 0)); row[r, 9] = "plain C states"
      } else if (b == "") row[r, 9] = "-"
      row[r, 8] = ratio
      if (x == "") met = "?"
      else met = ((o == "<=") ? (x <= tv + 0) : (x >= tv + 0)) ? "yes" : "NO"
      nfig++; if (met == "yes") nmet++
    }
    row[r, 10] = tgt; row[r, 11] = met
    # How many times the cost of the plain-Lua floor lugo pays (the ratio
    # run.sh shows): floor/lugo for rates, lugo/floor for times and sizes.
    fl = base[key]; row[r, 12] = "-"
    if (l != "" && l != "na" && fl != "" && fl != "na" && l + 0 != 0 && fl + 0 != 0)
      row[r, 12] = sprintf("%.2fx", (unit[key] ~ /\/s$/) ? (fl + 0) / (l + 0) : (l + 0) / (fl + 0))
  }
  for (c = 1; c <= nc; c++) w[c] = length(head[c])
  for (i = 1; i <= r; i++) for (c = 1; c <= nc; c++) if (length(row[i, c]) > w[c]) w[c] = length(row[i, c])
  for (c = 1; c <= nc; c++) fm[c] = (c >= 3 && c <= 8 || c == 12) ? "%" w[c] "s" : "%-" w[c] "s"
  line = ""
  for (c = 1; c <= nc; c++) line = line sprintf(fm[c], head[c]) (c < nc ? " | " : "")
  sub(/ +$/, "", line); print line
  sep = ""
  for (c = 1; c <= nc; c++) { s = sprintf("%" w[c] "s", ""); gsub(/ /, "-", s); sep = sep s (c < nc ? "-|-" : "") }
  print sep
  for (i = 1; i <= r; i++) {
    line = ""
    for (c = 1; c <= nc; c++) line = line sprintf(fm[c], row[i, c]) (c < nc ? " | " : "")
    sub(/ +$/, "", line); print line
  }
  printf "\nlugo/peer = lugo figure / the peer named in column \"peer\" (Go P=1 where no target names one);\n"
  printf "for rates (/s) above 1 is better, for times and sizes below 1. Rows no peer runs are held\n"
  printf "to their script'"'"'s own target (issue 13'"'"'s). %d of %d targets met\n", nmet, nfig
  printf "vs floor = how many times the cost of the same work in a plain Lua state (lugo --plain,\n"
  printf "the script'"'"'s baseline) lugo pays: 1.00x = as cheap; - = no floor (timers, actors)\n"
}' "$out/results.txt"

echo "raw output: $out"
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]}" >&2
  exit 1
fi
exit 0
