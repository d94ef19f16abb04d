#!/usr/bin/env bash
# cpu.sh: plain CPU-bound Lua (scripts/bench/cpu/*.lua, no lugo API) under
# lugo and under the stock Lua 5.4 interpreter, best of 3 each; lugo's
# running cost is sysmon watching it and the scheduler around it, with no
# count hook armed until a preemption is due. Installs Debian's lua5.4 if
# it is missing (benchmark peers only; never a test dependency).
# Prints RESULT lines: lugo time, baseline = lua5.4 time, target <= 1.03x.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
read -r -a LUGO <<< "${LUGO:-target/dist/lugo}"
if ! command -v lua5.4 >/dev/null 2>&1; then
  echo "cpu.sh: installing lua5.4" >&2
  (apt-get install -y -qq lua5.4 >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq lua5.4 >/dev/null 2>&1; }) \
    || { echo "cpu.sh: cannot install lua5.4" >&2; exit 1; }
fi
best() { # best wall seconds of 3 runs of the command
  local b=""
  for _ in 1 2 3; do
    local t0 t1
    t0=$(date +%s%N); "$@" >/dev/null; t1=$(date +%s%N)
    local d=$(( t1 - t0 ))
    if [ -z "$b" ] || [ "$d" -lt "$b" ]; then b=$d; fi
  done
  echo "$b"
}
for f in "$HERE"/cpu/*.lua; do
  name=$(basename "$f" .lua)
  l=$(best "${LUGO[@]}" "$f")
  p=$(best lua5.4 "$f")
  awk -v n="$name" -v l="$l" -v p="$p" 'BEGIN { printf "RESULT name=cpu_%s metric=time lugo=%.4f baseline=%.4f unit=s target=<=1.03x\n", n, l / 1e9, p / 1e9 }'
done
