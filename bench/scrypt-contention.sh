#!/bin/sh
# Does scrypt at age's 2^18 (256 MiB of memory traffic, as `export --encrypt` runs it) slow an export's own
# threads? Interleaved, RUNS times: `export --format sql` alone, then the same export while another process
# runs scrypt 2^18 in a loop. Prints wall and CPU (user + system, all threads) of the export each time and
# the medians: if scrypt's memory traffic slowed the export's threads, its CPU time would grow.
# Usage: sh bench/scrypt-contention.sh DB [RUNS]   (e.g. the 1M-row demo database of `npm run bench`)
set -e
DB=$1; RUNS=${2:-5}
CLI="node --max-semi-space-size=2 $(dirname "$0")/../dist/cli/main.js"
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
t() { /usr/bin/time -f '%e %U %S' -o "$W/time" "$@" >/dev/null 2>&1; awk '{printf "%s %.2f", $1, $2 + $3}' "$W/time"; }
for i in $(seq "$RUNS"); do
  rm -f "$W/out.sql"; sync; cat "$DB" >/dev/null
  echo "alone $(t env -u SCRIPTORIUM_PASSWORD $CLI export "$DB" --format sql -o "$W/out.sql" -q)"
  rm -f "$W/out.sql"; sync
  node -e "const c = require('node:crypto'); for (;;) c.scryptSync('p', 's', 32, { N: 2 ** 18, r: 8, p: 1, maxmem: 2 ** 29 })" & S=$!
  sleep 0.3
  echo "with-scrypt $(t env -u SCRIPTORIUM_PASSWORD $CLI export "$DB" --format sql -o "$W/out.sql" -q)"
  kill $S; wait $S 2>/dev/null || true
done | tee "$W/log"
for mode in alone with-scrypt; do
  for col in 2 3; do
    v=$(grep "^$mode " "$W/log" | cut -d' ' -f$col | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    [ $col = 2 ] && wall=$v || cpu=$v
  done
  echo "median $mode: wall $wall s, export CPU $cpu s"
done
