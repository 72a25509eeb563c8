#!/usr/bin/env bash
# Wall time of one short real search (random, cinc2017 under nrf52840) with 1 and then 2
# `ecgnas worker` processes on one PostgreSQL store, and the speedup.
#
#   scripts/bench-distributed.sh ECGNAS_BINARY POSTGRES_URL DATA_DIR [TRIALS] [EPOCHS]
#
# Each run gets a fresh schema on the server. The trials and their seeds are the same in both
# runs (random search proposes by trial id), so both train the same children.
set -euo pipefail
bin="$1"; server="$2"; data="$3"; trials="${4:-16}"; epochs="${5:-2}"
psql_bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)/psql"
out="$(mktemp -d)"
declare -A wall
for workers in 1 2; do
  schema="bench_workers_${workers}_$$"
  "$psql_bin" "$server" -qc "CREATE SCHEMA $schema" >/dev/null
  sep='?'; [[ "$server" == *\?* ]] && sep='&'
  store="${server}${sep}options=-csearch_path%3D${schema}"
  start=$(date +%s.%N)
  "$bin" search --data "$data" --task cinc2017 --profile nrf52840 --strategy random --trials "$trials" \
    --epochs "$epochs" --seed 1 --store "$store" --workers external --in-flight 4 \
    --out "$out/run$workers" --json >/dev/null 2>"$out/coord$workers.log" &
  coord=$!
  pids=()
  for w in $(seq 1 "$workers"); do
    "$bin" worker --store "$store" --name "w$w" 2>"$out/w$workers-$w.log" &
    pids+=($!)
  done
  wait "$coord"
  for p in "${pids[@]}"; do wait "$p"; done
  wall[$workers]=$(echo "$(date +%s.%N) - $start" | bc)
  echo "$workers worker(s): ${wall[$workers]} s for $trials trials x $epochs epochs"
done
echo "speedup of 2 workers over 1: $(echo "scale=2; ${wall[1]} / ${wall[2]}" | bc)x"
