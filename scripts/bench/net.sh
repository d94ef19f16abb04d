#!/usr/bin/env bash
# net.sh: lugo's echo server (scripts/examples/echo_server.lua, one actor;
# and echo_server_cores.lua, an actor per P on one port with reuseport)
# against a Go echo server (go_echo/main.go, every core) and the Lua
# event-loop peers (peers/echo_cqueues.lua on LuaJIT and Lua 5.4,
# peers/echo_copas.lua on LuaJIT; Debian's packages, installed if missing)
# in the same run, driven by the Rust load
# client (examples/echo_load.rs): C=100 connections x R=2000 round trips of
# 64-byte lines, client and server sharing the machine's cores; the
# server's system calls per round trip (with perf, when it can count
# them); then the server's memory per idle connection: its RSS holding
# IDLE (10,000) idle connections less its RSS before they came, over IDLE.
# Installs Debian's golang-go if `go` is missing (a benchmark peer only).
# Prints RESULT lines; baseline = the Go server.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=runs.sh
. "$HERE/runs.sh"
ROOT="$(cd "$HERE/../.." && pwd)"
read -r -a LUGO <<< "${LUGO:-$ROOT/target/dist/lugo}"
ROUNDS=$([ "${LUGO_BENCH_QUICK:-}" = 1 ] && echo 200 || echo 2000)
IDLE=$([ "${LUGO_BENCH_QUICK:-}" = 1 ] && echo 1000 || echo 10000)
# Both ends of IDLE connections in this shell's processes.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" -gt $((IDLE + 100)) ] || IDLE=$(( $(ulimit -n) - 100 ))
TMP=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$TMP"' EXIT

command -v go >/dev/null 2>&1 || install_peer golang-go || exit 1
command -v perf >/dev/null 2>&1 || install_peer linux-perf || true
# The Lua event-loop peers: cqueues (on LuaJIT and Lua 5.4) and copas.
if ! luajit -e 'require "cqueues" require "copas"' >/dev/null 2>&1 \
  || ! lua5.4 -e 'require "cqueues"' >/dev/null 2>&1; then
  install_peer luajit lua5.4 lua-cqueues lua-copas || echo "net.sh: the Lua peers are left out" >&2
fi
(cd "$HERE/go_echo" && GOCACHE="$TMP/gocache" GO111MODULE=off go build -o "$TMP/go_echo" main.go)
(cd "$ROOT" && cargo build --release --quiet --example echo_load)
LOAD="$ROOT/target/release/examples/echo_load"

# start_server NAME CMD...: starts it, sets PID and ADDR
start_server() {
  local name=$1; shift
  "$@" > "$TMP/$name.out" 2> "$TMP/$name.err" &
  PID=$!
  for _ in $(seq 100); do
    ADDR=$(grep -o '127\.0\.0\.1:[0-9]*' "$TMP/$name.out" 2>/dev/null | head -1 || true)
    [ -n "$ADDR" ] && return 0
    sleep 0.05
  done
  echo "net.sh: $name server did not start" >&2; cat "$TMP/$name.err" >&2; exit 1
}

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# Whether perf can count this machine's system calls (root, tracepoints).
PERF=0
perf stat -e raw_syscalls:sys_enter -o /dev/null true >/dev/null 2>&1 && PERF=1

measure() { # idle|load NAME CMD... -> rps p50 p99 [sys_per_rt] [idle_bytes: with idle]
  local mode=$1 name=$2; shift 2
  start_server "$name" "$@"
  local line perf_pid=
  if [ "$PERF" = 1 ]; then
    perf stat -x, -e raw_syscalls:sys_enter -p "$PID" -o "$TMP/perf.out" 2>/dev/null &
    perf_pid=$!
    sleep 0.2
  fi
  line=$("$LOAD" "$ADDR" 100 "$ROUNDS")
  if [ -n "$perf_pid" ]; then
    kill -INT "$perf_pid"; wait "$perf_pid" 2>/dev/null || true
    line="$line sys_per_rt=$(awk -F, -v n=$((100 * ROUNDS)) '/sys_enter/ { printf "%.2f", $1 / n }' "$TMP/perf.out")"
  fi
  if [ "$mode" = idle ]; then
    sleep 0.3
    local before idle
    before=$(rss_kb "$PID")
    "$LOAD" "$ADDR" --idle "$IDLE" 5 > "$TMP/idle.out" &
    idle=$!
    for _ in $(seq 200); do grep -q idle= "$TMP/idle.out" 2>/dev/null && break; sleep 0.05; done
    sleep 0.5
    line="$line idle_bytes=$(( ($(rss_kb "$PID") - before) * 1024 / IDLE ))"
    kill "$idle" 2>/dev/null || true; wait "$idle" 2>/dev/null || true
  fi
  kill "$PID"; wait "$PID" 2>/dev/null || true
  echo "$line"
}

# The servers, each run NET_ROUNDS times (3), interleaved: this machine is
# shared and one run can be off by 15%; a figure is the median of its
# rounds, and each ratio's range over the rounds is printed beside it.
NET_ROUNDS=${NET_ROUNDS:-$([ "${LUGO_BENCH_QUICK:-}" = 1 ] && echo 1 || echo 3)}
names=(lugo cores go)
declare -A cmd=(
  [lugo]="${LUGO[*]} $ROOT/scripts/examples/echo_server.lua 0"
  [cores]="${LUGO[*]} $ROOT/scripts/examples/echo_server_cores.lua 0"
  [go]="$TMP/go_echo 0"
)
# The Lua peers that run here.
for peer in "luajit cqueues" "lua5.4 cqueues" "luajit copas"; do
  read -r vm lib <<< "$peer"
  command -v "$vm" >/dev/null 2>&1 && "$vm" -e "require '$lib'" >/dev/null 2>&1 || continue
  names+=("$lib-$vm")
  cmd[$lib-$vm]="$vm $HERE/peers/echo_$lib.lua 0"
done
for r in $(seq "$NET_ROUNDS"); do
  for n in "${names[@]}"; do
    mode=load
    # Idle memory once, in the last round, for lugo's servers and Go's.
    [ "$r" = "$NET_ROUNDS" ] && [[ $n = lugo || $n = cores || $n = go ]] && mode=idle
    read -r -a c <<< "${cmd[$n]}"
    res=$(measure "$mode" "$n" "${c[@]}")
    echo "# round $r, $n: $res" >&2
    echo "$res" >> "$TMP/res.$n"
  done
done

get() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" <<<"$2"; }
# median NAME KEY: the median of KEY over NAME's rounds.
median() { sed -n "s/.*$2=\([0-9.]*\).*/\1/p" "$TMP/res.$1" | sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }
# range A B KEY: min-max of A's KEY over B's, round by round.
range() {
  paste -d' ' <(sed -n "s/.*$3=\([0-9.]*\).*/\1/p" "$TMP/res.$1") <(sed -n "s/.*$3=\([0-9.]*\).*/\1/p" "$TMP/res.$2") |
    awk '{ r = $1 / $2; lo = (NR == 1 || r < lo) ? r : lo; hi = (NR == 1 || r > hi) ? r : hi } END { printf "%.2f-%.2f", lo, hi }'
}
best_name=none best_rps=0
for n in "${names[@]}"; do
  case $n in lugo | cores | go) continue ;; esac
  m=$(median "$n" rps)
  if [ "${m%.*}" -gt "${best_rps%.*}" ]; then best_name=$n best_rps=$m; fi
done
for n in "${names[@]}"; do
  echo "# $n: median rps=$(median "$n" rps) p50_us=$(median "$n" p50_us) p99_us=$(median "$n" p99_us) sys_per_rt=$(median "$n" sys_per_rt)" >&2
done
result() { # NAME METRIC A B KEY TARGET UNIT
  printf 'RESULT name=%s metric=%s lugo=%s baseline=%s unit=%s target=%s rounds=%s range=%s\n' \
    "$1" "$2" "$(median "$3" "$5")" "$(median "$4" "$5")" "$7" "$6" "$NET_ROUNDS" "$(range "$3" "$4" "$5")"
}
result echo rps lugo go rps - rt/s
result echo p99 lugo go p99_us '<=1.5x' us
result echo p50 lugo go p50_us - us
if [ "$best_name" != none ]; then
  echo "# best Lua peer (median rps): $best_name" >&2
  result echo rps_vs_lua lugo "$best_name" rps '>=1.0x' rt/s
fi
result echo_cores rps cores go rps '>=1.0x' rt/s
result echo_cores p99 cores go p99_us '<=1.5x' us
lugo_res=$(tail -1 "$TMP/res.lugo") cores_res=$(tail -1 "$TMP/res.cores") go_res=$(tail -1 "$TMP/res.go")
printf 'RESULT name=echo metric=bytes_per_idle_conn lugo=%s baseline=%s unit=B target=<=1.0x idle=%s\n' "$(get idle_bytes "$lugo_res")" "$(get idle_bytes "$go_res")" "$IDLE"
printf 'RESULT name=echo_cores metric=bytes_per_idle_conn lugo=%s baseline=%s unit=B target=<=1.0x idle=%s\n' "$(get idle_bytes "$cores_res")" "$(get idle_bytes "$go_res")" "$IDLE"
if [ "$PERF" = 1 ]; then
  result echo syscalls_per_rt lugo go sys_per_rt - calls
  result echo_cores syscalls_per_rt cores go sys_per_rt - calls
  [ "$best_name" != none ] && result echo syscalls_per_rt_vs_lua lugo "$best_name" sys_per_rt - calls
fi
