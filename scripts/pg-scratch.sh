# Sourced by the SQL-alone measurements (queue-shapes.sh, shape-c-costs.sh): a scratch
# PostgreSQL database `$DB` on `$PGURL`'s server, migrated by Velu (`VELU_BIN`, else
# `cargo run`), dropped again when the script exits whatever happened; `$tmp`, a
# temporary folder removed with it; and `$PGBENCH`, the server's own pgbench when
# installed beside it.
PGURL="${PGURL:-postgres://postgres@127.0.0.1:5432}"
VELU_BIN="${VELU_BIN:-}"
PGBENCH="${PGBENCH:-$(ls /usr/lib/postgresql/*/bin/pgbench 2>/dev/null | tail -1)}"
[ -x "$PGBENCH" ] || PGBENCH=pgbench
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; psql -q "$PGURL/postgres" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true' EXIT

psql -q "$PGURL/postgres" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" 2>/dev/null
if [ -n "$VELU_BIN" ]; then
  VELU_DATABASE_URL="$PGURL/$DB" VELU_HOME="$tmp" "$VELU_BIN" migrate up >/dev/null
else
  VELU_DATABASE_URL="$PGURL/$DB" VELU_HOME="$tmp" cargo run -q -p velu-cli -- migrate up >/dev/null
fi

# `pgbench_ms <pgbench options...>`: runs pgbench on `$DB` (one connection, prepared
# statements) and prints its average latency in ms; stops the script if pgbench failed.
pgbench_ms() {
  local ms
  ms=$("$PGBENCH" -M prepared -n -c 1 "$@" "$PGURL/$DB" | awk '/latency average/ {print $4}') || true
  [ -n "$ms" ] || { echo "pgbench failed on $PGURL/$DB: $*" >&2; exit 1; }
  echo "$ms"
}

# `wal_mark`: checkpoints `$DB`'s server and prints its WAL position; `wal_per <mark> <n>`:
# the WAL bytes written since `<mark>`, per one of `<n>` jobs.
wal_mark() {
  psql -q "$PGURL/$DB" -c CHECKPOINT >/dev/null
  psql -qAt "$PGURL/$DB" -c "SELECT pg_current_wal_lsn()"
}
wal_per() {
  psql -qAt "$PGURL/$DB" -c "SELECT ((pg_current_wal_lsn() - '$1'::pg_lsn) / $2)::bigint"
}
