# runs.sh: what run.sh, peers/peers.sh and net.sh share (sourced, not run):
# the rest before a run, the report of how a run went, and installing a
# benchmark peer.

# settle SECONDS: rest before a run. After a big process exits the kernel
# reclaims its memory for seconds, and a run that starts meanwhile is late
# on its timers (measured: the p99 of sleepers1k 0.13 ms alone, 4.7 ms
# right after sleepers100k's 150 MB process).
settle() {
  sleep "$1"
}

# outcome T0 T1 RC NFIGURES ERRFILE NONE: prints "ok (Ns)", or "FAILED (why,
# Ns)" and the end of ERRFILE, on stderr. A run fails when it exits non-zero
# (124/137: it ran past $limit seconds) or prints no figure (why: NONE).
# Returns 1 on a failure, with the reason in WHY.
outcome() {
  local secs
  secs=$(awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }')
  if [ "$3" -ne 0 ] || [ "$4" -eq 0 ]; then
    WHY="exit $3"
    { [ "$3" -eq 124 ] || [ "$3" -eq 137 ]; } && WHY="timed out after ${limit}s"
    [ "$3" -eq 0 ] && WHY="$6"
    echo "FAILED ($WHY, ${secs}s)" >&2
    sed 's/^/      | /' "$5" | tail -n 15 >&2
    return 1
  fi
  echo "ok (${secs}s)" >&2
}

# install_peer PACKAGE...: apt-get installs them (benchmark peers only, never a
# test dependency), updating the package lists once if the first try fails.
install_peer() {
  echo "bench: installing $*" >&2
  apt-get install -y -qq "$@" >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq "$@" >/dev/null 2>&1; } \
    || { echo "bench: cannot install $*" >&2; return 1; }
}
