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
