#!/usr/bin/env bash
# Velu and its peers side by side in one run on this machine and server: every figure of
# docs/benchmarks.md comes from one run of this script.
#
#   scripts/bench-side-by-side.sh [PEERS_DIR] | tee bench.log
#
# 1. Queue burn-down (the shared/bench/peers workload: N no-op jobs, 10 handlers):
#    graphile-worker defaults and batched, pg-boss batch 100, then Velu's defaults on
#    PostgreSQL and SQLite (medians of RUNS, fresh database per run).
# 2. HTTP (scripts/bench_http.py): pgbench's ceiling for a submit's durable writes, then
#    submit, list, show and whoami with wrk over ORGS orgs' keys, per backend.
#    With HTTP_BEFORE=<another velu-cli binary>: the routes HTTP_BEFORE_ROUTES (submit)
#    of both builds, side by side.
# 3. Sustained (scripts/bench_sustained.py, when SUSTAINED=1): fixed-rate HTTP submits
#    while a worker drains; the highest rate held with submit-to-start p99 < 100 ms.
#    With SUSTAINED_BEFORE=<another velu-cli binary>: that build at the first rate too.
#    With SUSTAINED_REMOTE=1: the same rates again with a remote platform worker
#    (`worker --server`, bench_sustained.py's REMOTE=1), lines `velu-remote ...`.
#    SKIP_HTTP=1 leaves out part 2.
# 4. Flat with history (tests/benches/history.rs, when FLAT=1): stats, list, show, submit
#    and a burn-down on an empty database and on one holding HISTORY (1,000,000) finished
#    jobs, side by side, per backend (FLAT_CALLS calls per operation, default 100).
#
# Everything docs/benchmarks.md reports comes from one run of:
#
#   SECS=10 SUSTAINED=1 SUSTAINED_REMOTE=1 RATES=250,500,750,1000,1250,1500,2000 FLAT=1 \
#     scripts/bench-side-by-side.sh
#
# PEERS_DIR defaults to ../shared/bench/peers; it is copied to a temporary folder so its
# npm install never touches the original. Knobs: N (20000), RUNS (3), PGHOST, PGUSER, and
# those of bench_http.py (ORGS, CONNS, SECS, ROUNDS, BACKENDS).
set -euo pipefail
cd "$(dirname "$0")/.."
peers=${1:-../shared/bench/peers}
export N=${N:-20000} RUNS=${RUNS:-3}
work=$(mktemp -d)
# The databases the peers' scripts and the benches leave behind (each recreates its own
# at its start) are dropped at the end, whatever happened.
cleanup() {
  rm -rf "$work"
  for db in bench_gw bench_pgboss velu_bench velu_bench_empty velu_bench_history; do
    psql -h "${PGHOST:-127.0.0.1}" -U "${PGUSER:-postgres}" -qAtc "DROP DATABASE IF EXISTS $db WITH (FORCE)" postgres >/dev/null 2>&1 || true
  done
}
trap cleanup EXIT

echo "# $(date -u +%FT%TZ) $(nproc) cores, PostgreSQL $(psql -h "${PGHOST:-127.0.0.1}" -U "${PGUSER:-postgres}" -Atc 'show server_version' postgres); N=$N RUNS=$RUNS; commit $(git rev-parse --short HEAD)"
cargo build --release -p velu-cli >/dev/null 2>&1
cargo bench -p velu-tests --bench queue --bench history --no-run >/dev/null 2>&1
bench=$(ls -t target/release/deps/queue-* | grep -v '\.d$' | head -1)
history=$(ls -t target/release/deps/history-* | grep -v '\.d$' | head -1)

echo "## burn-down"
if [ -d "$peers/graphile-worker" ]; then
  cp -r "$peers/graphile-worker" "$peers/pg-boss" "$work/"
  printf 'graphile-worker defaults (1 process x 10): '
  PROCS=1 CONCURRENCY=10 TUNED=0 "$work/graphile-worker/run.sh" 2>/dev/null | tail -1
  printf 'graphile-worker batched (local queue 500, batch completion): '
  PROCS=1 CONCURRENCY=10 TUNED=1 "$work/graphile-worker/run.sh" 2>/dev/null | tail -1
  printf 'pg-boss batch 100: '
  CONCURRENCY=10 BATCH=100 BURST=1 "$work/pg-boss/run.sh" 2>/dev/null | tail -1
else
  echo "peers: $peers not found, skipped"
fi
CONCURRENCY=10 BACKENDS=postgres,sqlite MODES=local "$bench" 2>&1 | grep -E '^velu|panicked' || true
echo "## claim with 10,000 other orgs that have history and a backlog but nothing runnable"
CONCURRENCY=10 BACKENDS=postgres IDLE_ORGS=0,10000 "$bench" 2>&1 | grep -E '^velu|panicked' || true

if [ "${SKIP_HTTP:-0}" = 1 ]; then
  echo "## HTTP: skipped (SKIP_HTTP=1)"
else
  echo "## HTTP"
  if ! command -v wrk >/dev/null 2>&1; then
    echo "wrk not found: installing Debian's package" >&2
    apt-get install -y -qq wrk >/dev/null 2>&1 || sudo apt-get install -y -qq wrk >/dev/null
  fi
  VELU_BIN=target/release/velu-cli python3 scripts/bench_http.py
  if [ -n "${HTTP_BEFORE:-}" ]; then
    echo "## HTTP ${HTTP_BEFORE_ROUTES:-submit}, this build against $HTTP_BEFORE, side by side"
    VELU_BIN=target/release/velu-cli VELU_BIN_BEFORE="$HTTP_BEFORE" ROUTES=${HTTP_BEFORE_ROUTES:-submit} \
      python3 scripts/bench_http.py | grep -v '^pgbench'
  fi
fi

if [ "${SUSTAINED:-0}" = 1 ]; then
  echo "## sustained"
  VELU_BIN=target/release/velu-cli RATES=${RATES:-250,500,1000,2000} python3 scripts/bench_sustained.py
  if [ -n "${SUSTAINED_BEFORE:-}" ]; then
    echo "## sustained, $SUSTAINED_BEFORE (before) at the first rate, side by side"
    VELU_BIN="$SUSTAINED_BEFORE" RATES=${RATES%%,*} python3 scripts/bench_sustained.py | sed 's/^velu /before /'
  fi
  if [ "${SUSTAINED_REMOTE:-0}" = 1 ]; then
    echo "## sustained, remote worker"
    VELU_BIN=target/release/velu-cli RATES=${RATES:-250,500,1000,2000} REMOTE=1 python3 scripts/bench_sustained.py | sed 's/^velu /velu-remote /'
  fi
fi

if [ "${FLAT:-0}" = 1 ]; then
  echo "## flat with history: ${HISTORY:-1000000} finished jobs against an empty database"
  HISTORY=${HISTORY:-1000000} CALLS=${FLAT_CALLS:-100} N=$N RUNS=$RUNS BACKENDS=postgres,sqlite \
    "$history" --bench 2>&1 | grep -E '^history|panicked' || true
fi
