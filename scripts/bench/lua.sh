#!/usr/bin/env bash
# lua.sh: the same Lua source (scripts/bench/lua/*.lua, plain Lua, no lugo
# API) run in a plain Lua state of lugo's own build (`lugo --plain`: none of
# lugo's code) and under lugo (the main goroutine, with sysmon and the
# scheduler around it), alternately, in the same binary and the same run.
# Each figure is the best wall time of REPS runs (default 5) minus the
# best time of the empty script in the same way (start-up and exit).
# Prints RESULT lines: lugo time, baseline = plain time, target a ratio.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
read -r -a LUGO <<< "${LUGO:-target/dist/lugo}"
REPS="${LUGO_BENCH_REPS:-5}"
[ "${LUGO_BENCH_QUICK:-}" = 1 ] && REPS=2
best() { # best wall ns of REPS runs of the command
  local b=""
  for _ in $(seq "$REPS"); do
    local t0 t1
    t0=$(date +%s%N); "$@" >/dev/null; t1=$(date +%s%N)
    local d=$(( t1 - t0 ))
    if [ -z "$b" ] || [ "$d" -lt "$b" ]; then b=$d; fi
  done
  echo "$b"
}
e_plain=$(best "${LUGO[@]}" --plain "$HERE/lua/empty.lua")
e_lugo=$(best "${LUGO[@]}" "$HERE/lua/empty.lua")
for w in co_wrap co_generator fib tablefill concat; do
  case "$w" in co_*) target="<=1.10x" ;; *) target="<=1.03x" ;; esac
  p=0; l=0
  # Alternate the two ways, so that a noisy moment hurts both.
  for _ in 1 2; do
    p2=$(best "${LUGO[@]}" --plain "$HERE/lua/$w.lua")
    l2=$(best "${LUGO[@]}" "$HERE/lua/$w.lua")
    if [ "$p" -eq 0 ] || [ "$p2" -lt "$p" ]; then p=$p2; fi
    if [ "$l" -eq 0 ] || [ "$l2" -lt "$l" ]; then l=$l2; fi
  done
  awk -v n="$w" -v l="$l" -v p="$p" -v el="$e_lugo" -v ep="$e_plain" -v t="$target" \
    'BEGIN { printf "RESULT name=lua_%s metric=time lugo=%.4f baseline=%.4f unit=s target=%s\n", n, (l - el) / 1e9, (p - ep) / 1e9, t }'
done
