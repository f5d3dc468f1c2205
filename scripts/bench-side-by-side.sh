#!/usr/bin/env bash
# Queue throughput of Velu and graphile-worker, side by side in one run on this machine
# and server (docs/benchmarks.md). Usage: scripts/bench-side-by-side.sh [PEERS_DIR]
# PEERS_DIR defaults to ../shared/bench/peers; it is copied to a temporary folder so its
# npm install never touches the original. Knobs: N (20000), RUNS (3), PGHOST, PGUSER.
set -euo pipefail
cd "$(dirname "$0")/.."
peers=${1:-../shared/bench/peers}
export N=${N:-20000} RUNS=${RUNS:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "# $(date -u +%FT%TZ) $(nproc) cores, $(psql -h "${PGHOST:-127.0.0.1}" -U "${PGUSER:-postgres}" -Atc 'show server_version' postgres) ; N=$N RUNS=$RUNS"
cargo bench -p velu-tests --bench queue --no-run >/dev/null 2>&1
bench=$(ls -t target/release/deps/queue-* | grep -v '\.d$' | head -1)

if [ -d "$peers/graphile-worker" ]; then
  cp -r "$peers/graphile-worker" "$work/"
  echo "## graphile-worker, defaults (1 process x 10)"
  PROCS=1 CONCURRENCY=10 TUNED=0 "$work/graphile-worker/run.sh" 2>&1 | tail -1
  echo "## graphile-worker, batched (local queue 500, batch completion)"
  PROCS=1 CONCURRENCY=10 TUNED=1 "$work/graphile-worker/run.sh" 2>&1 | tail -1
else
  echo "## graphile-worker: $peers not found, skipped"
fi
echo "## velu, defaults (1 worker x 10, claims ahead while jobs are short); local and remote (worker --server) workers"
CONCURRENCY=10 BACKENDS=postgres,sqlite MODES=local,remote "$bench" 2>&1 | grep '^velu'
echo "## velu, no claiming ahead (prefetch 0)"
CONCURRENCY=10 PREFETCH=0 BACKENDS=postgres "$bench" 2>&1 | grep '^velu'
