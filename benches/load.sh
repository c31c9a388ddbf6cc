#!/usr/bin/env bash
# Loopback load against the quickstart (release build, in-memory store), bounded in time:
# wrk sends a fixed mix of valid, invalid and malformed keys (benches/load.lua) and the
# script reports requests, the status mix, socket errors and the server's RSS before the
# load, after a warm-up, every 10 s, and at the end. It fails on any 5xx or socket error.
#
#   benches/load.sh [seconds (60)] [connections (64)] [threads (2)]
#
# With KEYGATE_LOAD_SQLITE=1 the quickstart keeps keys and its audit trail in a SQLite file
# (a temporary directory), and the run ends with the trail's written and dropped counts.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}; connections=${2:-64}; threads=${3:-2}
port=${KEYGATE_LOAD_PORT:-3901}
base=http://127.0.0.1:$port
command -v wrk >/dev/null || { echo "installing wrk (Debian package)"; apt-get update -qq && apt-get install -y -qq wrk; }
database=
if [ "${KEYGATE_LOAD_SQLITE:-0}" = 1 ]; then
  cargo build --release --example quickstart --features sqlite -q
  dir=$(mktemp -d)
  database="sqlite://$dir/keys.db"
else
  cargo build --release --example quickstart -q
fi

log=$(mktemp)
DATABASE_URL=$database KEYGATE_ADDR=127.0.0.1:$port RUST_LOG=${RUST_LOG:-keygate=debug} \
  target/release/examples/quickstart > "$log" 2>/dev/null &
server=$!
trap 'kill $server 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 100); do grep -q '^export API_KEY=' "$log" && break; sleep 0.1; done
admin=$(sed -n 's/^export API_KEY=//p' "$log")
[ -n "$admin" ] || { echo "the quickstart did not start" >&2; exit 1; }

create() { # JSON body -> the new key's plaintext and id, space-separated
  curl -sf "$base/keys" -H "X-API-Key: $admin" -H 'content-type: application/json' -d "$1" |
    python3 -c 'import json,sys; k=json.load(sys.stdin); print(k["key"], k["record"]["id"])'
}
read -r valid _ <<<"$(create '{"name":"load"}')"
read -r space _ <<<"$(create '{"name":"load space","space":"one"}')"
read -r revoked revoked_id <<<"$(create '{"name":"load revoked"}')"
curl -sf -X DELETE "$base/keys/$revoked_id" -H "X-API-Key: $admin"
read -r replaced replaced_id <<<"$(create '{"name":"load replaced"}')"
curl -sf -X POST "$base/keys/$replaced_id/regenerate" -H "X-API-Key: $admin" >/dev/null
for key in "$valid" "$space" "$revoked" "$replaced"; do
  [ -n "$key" ] || { echo "could not create the keys of the mix" >&2; exit 1; }
done

rss() { awk '/^VmRSS/ {print $2 " kB"}' "/proc/$server/status"; }
echo "RSS before load: $(rss)"
export LOAD_VALID=$valid LOAD_SPACE=$space LOAD_REVOKED=$revoked LOAD_REPLACED=$replaced
warm=$(wrk -t"$threads" -c"$connections" -d5s -s benches/load.lua "$base")
warm_rss=$(rss)
echo "RSS after a 5 s warm-up: $warm_rss"

( while sleep 10; do echo "RSS during load: $(rss)"; done ) &
sampler=$!
out=$(wrk -t"$threads" -c"$connections" -d"${seconds}s" --latency -s benches/load.lua "$base")
kill $sampler 2>/dev/null || true
end_rss=$(rss)
echo "RSS at the end: $end_rss"
echo "$out"

kill -0 $server || { echo "the server died" >&2; exit 1; }
fivexx=$(awk '/^status 5/ {n += $3} END {print n + 0}' <<<"$out")
errors=$(awk -F'[ ,]+' '/^socket errors/ {print $4 + $6 + $8 + $10}' <<<"$out")
echo "5xx: $fivexx, socket errors: $errors"
[ "$fivexx" -eq 0 ] && [ "$errors" -eq 0 ] || exit 1
# Flat memory: the end may not exceed twice the warmed-up size.
[ "${end_rss% kB}" -le $((2 * ${warm_rss% kB})) ] || { echo "RSS grew" >&2; exit 1; }
if [ -n "$database" ]; then
  sleep 2 # the trail's writer drains its queue
  requests=$(awk '/requests in/ {n += $1} END {print n + 0}' <<<"$warm$out")
  written=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT COUNT(*) FROM keygate_audit").fetchone()[0])' "${database#sqlite://}")
  echo "audit trail: $written events written of $requests requests under load ($((requests - written)) dropped and counted)"
fi
