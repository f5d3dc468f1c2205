#!/usr/bin/env bash
# What shape C of docs/queue-redesign.md would cost the API's submit and reads on
# PostgreSQL, measured in SQL alone before anyone builds it (issue 9, targets 3 and 4).
# `scripts/queue-shapes.sh` measured what the shape buys the claim and the finish; this
# measures what it costs elsewhere, with pgbench on one connection (prepared statements):
#
#   submit  a group of 10 jobs in one transaction: A today's `jobs` row (six indexes) and
#           its `queued` event; C a `jobs` row written once (primary key, by org, by
#           task, the idempotency key), a narrow `job_queue` row (primary key, the
#           claim's and the running jobs' partial indexes, by org and status) and the
#           event. Ids are time-ordered, as Velu's UUIDv7 ids are.
#   page    the newest 20 (+1) jobs of the org before a random cursor: A off `jobs`;
#           C off `jobs`, each row joined to its `job_queue` and `job_results` rows.
#   page1   the same page, C probing a job's `job_results` row first and its `job_queue`
#           row only when it has none (A is A's page again).
#   pageB   the same page in shape B (docs/queue-redesign.md): today's rows, a finished
#           job's status final, a queued or running one looking in `job_queue` (the
#           "C" column of this line is B).
#   status  the same page filtered to `succeeded`: A off `ix_jobs_org_status_id`;
#           C off `job_results` by org and status, joined to `jobs`.
#   show    one job by id: A one row; C the row and its two probes.
#
# The history is HISTORY jobs of one org (9 in 10 finished, the rest queued). Events,
# audit records, usage and the counters are left out of every shape (the same in each).
# Prints each workload's median µs per job (submit) or per read over ROUNDS rounds, WAL
# bytes per job for the submit, and C against A.
#
#   VELU_BIN=target/release/velu-cli ROUNDS=3 scripts/shape-c-costs.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DB="${DB:-velu_shape_c}"
ROUNDS="${ROUNDS:-3}"
HISTORY="${HISTORY:-50000}"
SUBMITS="${SUBMITS:-1000}"   # transactions of 10 jobs per round and shape
READ_SECS="${READ_SECS:-5}"
. scripts/pg-scratch.sh

# Shape C's tables, as docs/queue-redesign.md lays them out. The triggers of `jobs` (the
# counters) are dropped so that A pays for the same rows as C.
psql -q "$PGURL/$DB" <<'SQL'
DROP TRIGGER job_counts_insert ON jobs; DROP TRIGGER job_counts_update ON jobs;
DROP TRIGGER job_counts_delete ON jobs;
INSERT INTO organizations (id, name, slug, plan, created_at, updated_at)
VALUES ('org-1', 'Shapes', 'shapes', 'superhero', now(), now());
CREATE SEQUENCE job_ids;
CREATE TABLE jobs_c (
  id varchar(36) PRIMARY KEY, org_id varchar(36) NOT NULL REFERENCES organizations (id),
  task varchar(64) NOT NULL, payload jsonb NOT NULL, priority int NOT NULL,
  max_attempts int NOT NULL, actor_type varchar(16) NOT NULL, actor_id varchar(200) NOT NULL,
  idempotency_key varchar(200), created_at timestamptz NOT NULL);
CREATE INDEX ix_c_org_id ON jobs_c (org_id, id);
CREATE INDEX ix_c_org_task_id ON jobs_c (org_id, task, id);
CREATE UNIQUE INDEX ux_c_idempotency ON jobs_c (org_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE TABLE job_queue_c (
  id varchar(36) PRIMARY KEY, org_id varchar(36) NOT NULL, task varchar(64) NOT NULL,
  status varchar(16) NOT NULL, priority int NOT NULL, run_at timestamptz NOT NULL,
  attempts int NOT NULL, max_attempts int NOT NULL, lease_owner varchar(200),
  lease_token varchar(36), lease_expires_at timestamptz, lease_started_at timestamptz,
  started_at timestamptz, cancel_requested boolean NOT NULL, error jsonb,
  updated_at timestamptz NOT NULL
) WITH (fillfactor = 70);
CREATE INDEX ix_qc_claim ON job_queue_c (org_id, priority DESC, run_at, id) WHERE status = 'queued';
CREATE INDEX ix_qc_running ON job_queue_c (org_id) WHERE status = 'running';
CREATE INDEX ix_qc_org_status_id ON job_queue_c (org_id, status, id);
CREATE TABLE job_results_c (
  id varchar(36) PRIMARY KEY, org_id varchar(36) NOT NULL, status varchar(16) NOT NULL,
  result jsonb, error jsonb, attempts int NOT NULL, started_at timestamptz,
  finished_at timestamptz NOT NULL);
CREATE INDEX ix_rc_org_status_id ON job_results_c (org_id, status, id);
CREATE INDEX ix_rc_org_finished ON job_results_c (org_id, finished_at);
SQL

# The history: the same jobs in both shapes, ids zero-padded numbers (time order).
{ psql -q "$PGURL/$DB" <<SQL
INSERT INTO jobs (id, org_id, task, status, payload, result, priority, attempts, max_attempts,
  run_at, actor_type, actor_id, created_at, updated_at, started_at, finished_at)
SELECT lpad(g::text, 36, '0'), 'org-1', 'echo',
  CASE WHEN g % 10 = 0 THEN 'queued' ELSE 'succeeded' END, '{"n": 1}'::jsonb,
  CASE WHEN g % 10 = 0 THEN NULL ELSE '{"ok": true}'::jsonb END, 0,
  CASE WHEN g % 10 = 0 THEN 0 ELSE 1 END, 3, now(), 'key', 'kid_shapes', now(), now(),
  CASE WHEN g % 10 = 0 THEN NULL ELSE now() END, CASE WHEN g % 10 = 0 THEN NULL ELSE now() END
FROM generate_series(1, $HISTORY) g;
INSERT INTO jobs_c SELECT id, org_id, task, payload, priority, max_attempts, actor_type,
  actor_id, idempotency_key, created_at FROM jobs;
INSERT INTO job_queue_c SELECT id, org_id, task, status, priority, run_at, attempts,
  max_attempts, NULL, NULL, NULL, NULL, NULL, false, NULL, updated_at FROM jobs WHERE status = 'queued';
INSERT INTO job_results_c SELECT id, org_id, status, result, error, attempts, started_at,
  finished_at FROM jobs WHERE status <> 'queued';
SELECT setval('job_ids', $HISTORY);
VACUUM ANALYZE;
SQL
} >/dev/null

group="SELECT lpad(nextval('job_ids')::text, 36, '0') AS id FROM generate_series(1, 10)"
cat > "$tmp/submit_A.sql" <<SQL
WITH s AS ($group),
j AS (INSERT INTO jobs (id, org_id, task, status, payload, priority, attempts, max_attempts,
  run_at, actor_type, actor_id, cancel_requested, created_at, updated_at)
  SELECT s.id, 'org-1', 'echo', 'queued', '{"n": 1}'::jsonb, 0, 0, 3, now(), 'key', 'kid_shapes', false, now(), now() FROM s)
INSERT INTO job_events (job_id, org_id, kind, at, detail) SELECT s.id, 'org-1', 'queued', now(), 'submit' FROM s;
SQL
cat > "$tmp/submit_C.sql" <<SQL
WITH s AS ($group),
j AS (INSERT INTO jobs_c (id, org_id, task, payload, priority, max_attempts, actor_type, actor_id, created_at)
  SELECT s.id, 'org-1', 'echo', '{"n": 1}'::jsonb, 0, 3, 'key', 'kid_shapes', now() FROM s),
q AS (INSERT INTO job_queue_c (id, org_id, task, status, priority, run_at, attempts, max_attempts, cancel_requested, updated_at)
  SELECT s.id, 'org-1', 'echo', 'queued', 0, now(), 0, 3, false, now() FROM s)
INSERT INTO job_events (job_id, org_id, kind, at, detail) SELECT s.id, 'org-1', 'queued', now(), 'submit' FROM s;
SQL
cursor="\\set c random(1000, $HISTORY)"
cat > "$tmp/page_A.sql" <<SQL
$cursor
SELECT * FROM jobs WHERE org_id = 'org-1' AND id < lpad(:c::text, 36, '0') ORDER BY id DESC LIMIT 21;
SQL
cat > "$tmp/page_C.sql" <<SQL
$cursor
SELECT j.*, COALESCE(r.status, q.status) AS status, r.result, COALESCE(r.error, q.error) AS error,
  COALESCE(r.attempts, q.attempts) AS attempts, COALESCE(r.started_at, q.started_at) AS started_at,
  r.finished_at, q.run_at, q.lease_expires_at, q.cancel_requested
FROM (SELECT * FROM jobs_c WHERE org_id = 'org-1' AND id < lpad(:c::text, 36, '0') ORDER BY id DESC LIMIT 21) j
LEFT JOIN job_queue_c q ON q.id = j.id LEFT JOIN job_results_c r ON r.id = j.id ORDER BY j.id DESC;
SQL
# C with one probe per finished job: its result first, the queue row only when it has none
# (an append that stops at its first row).
cat > "$tmp/page1_C.sql" <<SQL
$cursor
SELECT j.*, x.* FROM (SELECT * FROM jobs_c WHERE org_id = 'org-1' AND id < lpad(:c::text, 36, '0') ORDER BY id DESC LIMIT 21) j
LEFT JOIN LATERAL (
  SELECT r.status, r.result, r.error, r.attempts, r.started_at, r.finished_at, NULL::timestamptz AS run_at
  FROM job_results_c r WHERE r.id = j.id
  UNION ALL
  SELECT q.status, NULL, q.error, q.attempts, q.started_at, NULL, q.run_at
  FROM job_queue_c q WHERE q.id = j.id
  LIMIT 1) x ON true ORDER BY j.id DESC;
SQL
cp "$tmp/page_A.sql" "$tmp/page1_A.sql"
# Shape B's page: today's rows, whose status is final once finished (the finish updates
# `jobs` once); a job still queued or running looks in `job_queue` for its life. The
# probe sits in a CASE so it runs only for those rows: as a lateral join with the status
# in its condition, PostgreSQL probed every row and filtered after (EXPLAIN: 21 loops).
cat > "$tmp/pageB_C.sql" <<SQL
$cursor
SELECT j.*, CASE WHEN j.status = 'queued' THEN (SELECT q FROM job_queue_c q WHERE q.id = j.id) END AS live
FROM (SELECT * FROM jobs WHERE org_id = 'org-1' AND id < lpad(:c::text, 36, '0') ORDER BY id DESC LIMIT 21) j
ORDER BY j.id DESC;
SQL
cp "$tmp/page_A.sql" "$tmp/pageB_A.sql"
cat > "$tmp/status_A.sql" <<SQL
$cursor
SELECT * FROM jobs WHERE org_id = 'org-1' AND status = 'succeeded' AND id < lpad(:c::text, 36, '0') ORDER BY id DESC LIMIT 21;
SQL
cat > "$tmp/status_C.sql" <<SQL
$cursor
SELECT j.*, r.* FROM (SELECT * FROM job_results_c WHERE org_id = 'org-1' AND status = 'succeeded'
  AND id < lpad(:c::text, 36, '0') ORDER BY id DESC LIMIT 21) r JOIN jobs_c j ON j.id = r.id ORDER BY r.id DESC;
SQL
cat > "$tmp/show_A.sql" <<SQL
$cursor
SELECT * FROM jobs WHERE id = lpad(:c::text, 36, '0');
SQL
cat > "$tmp/show_C.sql" <<SQL
$cursor
SELECT j.*, q.*, r.* FROM jobs_c j LEFT JOIN job_queue_c q ON q.id = j.id
  LEFT JOIN job_results_c r ON r.id = j.id WHERE j.id = lpad(:c::text, 36, '0');
SQL

declare -A us wals
for round in $(seq 1 "$ROUNDS"); do
  for shape in A C; do
    lsn0=$(wal_mark)
    ms=$(pgbench_ms -t "$SUBMITS" -f "$tmp/submit_$shape.sql")
    wal=$(wal_per "$lsn0" "$((SUBMITS * 10))")
    us[submit_$shape]="${us[submit_$shape]:-} $(awk -v m="$ms" 'BEGIN {print m * 100}')"
    wals[$shape]="${wals[$shape]:-} $wal"
    echo "round $round submit $shape: $ms ms per 10 jobs, WAL $wal B/job" >&2
    for read in page page1 pageB status show; do
      ms=$(pgbench_ms -T "$READ_SECS" -f "$tmp/${read}_$shape.sql")
      us[${read}_$shape]="${us[${read}_$shape]:-} $(awk -v m="$ms" 'BEGIN {print m * 1000}')"
      echo "round $round $read $shape: $ms ms" >&2
    done
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for w in submit page page1 pageB status show; do
  a=$(echo "${us[${w}_A]}" | median)
  c=$(echo "${us[${w}_C]}" | median)
  extra=""
  [ "$w" = submit ] && extra=" wal_bytes_per_job_A=$(echo "${wals[A]}" | median) wal_bytes_per_job_C=$(echo "${wals[C]}" | median)"
  awk -v w="$w" -v a="$a" -v c="$c" -v x="$extra" 'BEGIN {printf "shape-c %s us_A=%.1f us_C=%.1f c_against_a=%.2fx%s\n", w, a, c, a / c, x}'
done
