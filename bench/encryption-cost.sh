#!/bin/sh
# Encryption's cost on backup and restore: times (wall/cpu s/peak RSS MB) of the CLI on the same database into a
# plain and an encrypted repository, interleaved, RUNS times; prints each run and the medians.
# Usage: sh bench/encryption-cost.sh DB [RUNS]   (e.g. the 1.16M-row demo database of `npm run bench`)
set -e
DB=$1; RUNS=${2:-5}
CLI="node $(dirname "$0")/../dist/cli/main.js"
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
export SCRIPTORIUM_PASSWORD=bench-passphrase
# wall seconds, CPU seconds (user + system, all threads) and peak RSS (MB) of one command, as "wall/cpu/rss"
t() { /usr/bin/time -f '%e %U %S %M' -o "$W/time" "$@" >/dev/null 2>&1; awk '{printf "%s/%.2f/%d", $1, $2 + $3, $4 / 1024}' "$W/time"; }
for i in $(seq "$RUNS"); do
  for mode in plain encrypted; do
    rm -rf "$W/r" "$W/out.db"
    if [ $mode = plain ]; then env -u SCRIPTORIUM_PASSWORD $CLI init "$W/r" -q; else $CLI init --encrypt "$W/r" -q; fi
    if [ $mode = plain ]; then b=$(t env -u SCRIPTORIUM_PASSWORD $CLI backup --repo "$W/r" "$DB" -q); r=$(t env -u SCRIPTORIUM_PASSWORD $CLI restore latest --repo "$W/r" --into "$W/out.db" -q)
    else b=$(t $CLI backup --repo "$W/r" "$DB" -q); r=$(t $CLI restore latest --repo "$W/r" --into "$W/out.db" -q); fi
    echo "$mode backup $b restore $r size $(du -sb "$W/r" | cut -f1)"
  done
done | tee "$W/log"
for mode in plain encrypted; do
  for op in backup restore; do
    col=$([ $op = backup ] && echo 3 || echo 5)
    wall=$(grep "^$mode " "$W/log" | cut -d' ' -f$col | cut -d/ -f1 | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    cpu=$(grep "^$mode " "$W/log" | cut -d' ' -f$col | cut -d/ -f2 | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    rss=$(grep "^$mode " "$W/log" | cut -d' ' -f$col | cut -d/ -f3 | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    echo "median $mode $op: wall $wall s, cpu $cpu s, peak RSS $rss MB"
  done
done
