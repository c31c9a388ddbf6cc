#!/usr/bin/env bash
# End-to-end load: wrk against the load target with and without keygate, alternating,
# on 127.0.0.1 only, bounded in time. Prints req/s and p99 of each run and the ratio of
# medians. Usage: benches/e2e.sh [seconds per run (10)] [rounds (3)] [connections (32)]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}; rounds=${2:-3}; connections=${3:-32}
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
cargo build --release --example load_target -q
target=target/release/examples/load_target
port=3900

run() { # mode -> "req/s p99_ms"
  local mode=$1 out key
  KEYGATE_ADDR=127.0.0.1:$port "$target" "$mode" > /tmp/keygate-load-$mode.out &
  local pid=$!
  for _ in $(seq 50); do grep -q serving /tmp/keygate-load-$mode.out 2>/dev/null && break; sleep 0.1; done
  key=$(sed -n 's/^export API_KEY=//p' /tmp/keygate-load-$mode.out)
  out=$(wrk -t1 -c"$connections" -d"${seconds}s" --latency \
        -H "Authorization: Bearer ${key:-none}" "http://127.0.0.1:$port/items")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  local rps p99 non2xx
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $5}' <<<"$out")
  echo "$rps $p99 ${non2xx:-0}"
}

declare -a bare auth
# One short run of each first, not counted: page cache, CPU frequency, socket tables.
seconds_saved=$seconds; seconds=2; run bare >/dev/null; run auth >/dev/null; seconds=$seconds_saved
for round in $(seq "$rounds"); do
  read -r rps p99 bad <<<"$(run bare)"; bare+=("$rps"); echo "round $round bare: $rps req/s, p99 $p99, non-2xx $bad"
  read -r rps p99 bad <<<"$(run auth)"; auth+=("$rps"); echo "round $round auth: $rps req/s, p99 $p99, non-2xx $bad"
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mb=$(median "${bare[@]}"); ma=$(median "${auth[@]}")
echo "median req/s: bare $mb, keygate $ma, ratio $(awk -v a="$ma" -v b="$mb" 'BEGIN {printf "%.3f", a/b}') (target >= 0.95)"
