#!/usr/bin/env bash
# What the queue's table shape costs on PostgreSQL, measured in SQL alone (issue 9,
# target 1): one claim of 30 jobs and the finish of those 30, replayed by pgbench on one
# connection (prepared statements), for four shapes of the same work:
#   A  today's: `velu_claim_jobs` updates the wide `jobs` row (5 indexes), the finish
#      updates it again and appends the attempt;
#   B  a narrow `job_queue` (pk, claim and running indexes, fillfactor 70) claimed in
#      place, the finish deleting from it, updating `jobs` and appending the attempt;
#   C  as B, but `jobs` is never updated after the submit: the finish appends a
#      `job_results` row (pk only) and the attempt;
#   D  as B with no history at all (the finish only deletes): the peers' shape.
#   E  `jobs` keeps every status but `running`: the claim inserts a narrow `job_leases`
#      row (primary key and org index) and leaves the job's row as it is (its status
#      stays `queued`; the claim skips jobs that have a lease); the finish deletes the
#      lease, updates `jobs` once and appends the attempt. E0 claims with no job of the
#      org running, E30 with the 30 it claimed before still running (the claim skips
#      them), as a worker claiming ahead does; both lock the picked rows (`FOR UPDATE
#      SKIP LOCKED`); F30 is E30 without the row locks (claims of one org take turns on
#      its advisory lock, so the lease's key alone fences them).
#   H  `jobs` stays the whole document, every status in it, but none of its indexes
#      holds a column the claim or the finish changes (the claim, running and status
#      indexes dropped; fillfactor 70), so both update it in place (HOT, no index
#      entry); the claim moves the job from a narrow `job_queue_h` (queued jobs: the
#      claim index and `(org_id, job_id)`) to `job_leases`, the finish deletes the lease
#      and appends a narrow `job_done` row (the list's status filter, `(org_id, status,
#      job_id)`) and the attempt. Nothing running at the claim, as E0.
#   HT H with its narrow tables kept by triggers on `jobs` (statement triggers with
#      transition tables, as the job counters are kept) instead of by the claim and the
#      finish: `job_status` (every job's `(org_id, status, job_id)`) and `job_queue_t`
#      (the queued ones, in claim order); the claim picks off `job_queue_t` and updates
#      `jobs` as today, the finish updates `jobs` as today.
# Events, usage and the counters are left out of every shape (they cost the same in each).
# SHAPES picks the shapes (default: all). Prints each shape's median cycle time and WAL bytes per job over ROUNDS rounds, and its
# speed relative to A.
#
#   VELU_BIN=target/debug/velu-cli ROUNDS=3 CYCLES=600 scripts/queue-shapes.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DB="${DB:-velu_queue_shapes}"
ROUNDS="${ROUNDS:-3}"
CYCLES="${CYCLES:-600}"
JOBS=$((CYCLES * 30 + 2000))
SHAPES="${SHAPES:-A B C D E0 E30 F30 H HT}"
. scripts/pg-scratch.sh

psql -q "$PGURL/$DB" <<'SQL'
INSERT INTO organizations (id, name, slug, plan, created_at, updated_at)
VALUES ('org-1', 'Shapes', 'shapes', 'superhero', now(), now());
CREATE TABLE job_queue (
  id varchar(36) PRIMARY KEY, org_id varchar(36) NOT NULL, task varchar(64) NOT NULL,
  priority int NOT NULL, run_at timestamptz NOT NULL, attempts int NOT NULL,
  lease_owner varchar(200), lease_token varchar(36), lease_expires_at timestamptz,
  lease_started_at timestamptz
) WITH (fillfactor = 70);
CREATE INDEX ix_q_claim ON job_queue (org_id, priority DESC, run_at, id) WHERE lease_token IS NULL;
CREATE INDEX ix_q_running ON job_queue (org_id) WHERE lease_token IS NOT NULL;
CREATE TABLE job_results (
  id varchar(36) PRIMARY KEY, org_id varchar(36) NOT NULL, status varchar(16) NOT NULL,
  result jsonb, error jsonb, attempts int NOT NULL, started_at timestamptz,
  finished_at timestamptz NOT NULL);
CREATE TABLE job_leases (
  job_id varchar(36) PRIMARY KEY, org_id varchar(36) NOT NULL, attempt int NOT NULL,
  owner varchar(200) NOT NULL, token varchar(36) NOT NULL, expires_at timestamptz NOT NULL,
  started_at timestamptz NOT NULL
) WITH (fillfactor = 70);
CREATE INDEX ix_leases_org ON job_leases (org_id);
CREATE TABLE job_queue_h (
  job_id varchar(36) PRIMARY KEY, org_id varchar(36) NOT NULL, task varchar(64) NOT NULL,
  priority int NOT NULL, run_at timestamptz NOT NULL);
CREATE INDEX ix_qh_claim ON job_queue_h (org_id, priority DESC, run_at, job_id);
CREATE INDEX ix_qh_org ON job_queue_h (org_id, job_id);
CREATE TABLE job_done (
  job_id varchar(36) PRIMARY KEY, org_id varchar(36) NOT NULL, status varchar(16) NOT NULL);
CREATE INDEX ix_done_org_status ON job_done (org_id, status, job_id);
SQL

cat > "$tmp/setup.sql" <<SQL
TRUNCATE job_events, job_attempts, jobs, job_queue, job_results, job_leases, job_queue_h, job_done;
INSERT INTO jobs (id, org_id, task, status, payload, priority, attempts, max_attempts, run_at,
  actor_type, actor_id, created_at, updated_at)
SELECT gen_random_uuid()::text, 'org-1', 'noop', 'queued', '{}'::jsonb, 0, 0, 3,
  now() - interval '1 minute' + (g * interval '1 microsecond'), 'key', 'kid_shapes', now(), now()
FROM generate_series(1, $JOBS) g;
SQL
# Shapes B to D take their queue rows from the jobs.
cp "$tmp/setup.sql" "$tmp/setup_q.sql"
echo "INSERT INTO job_queue SELECT id, org_id, task, priority, run_at, 0 FROM jobs;" >> "$tmp/setup_q.sql"

claim_q="WITH picked AS (SELECT id FROM job_queue WHERE org_id = 'org-1' AND lease_token IS NULL
  AND run_at <= now() AND task = ANY(ARRAY['noop']) ORDER BY priority DESC, run_at, id LIMIT 30
  FOR UPDATE SKIP LOCKED),
claimed AS (UPDATE job_queue q SET attempts = q.attempts + 1, lease_owner = 'w',
  lease_token = gen_random_uuid()::text, lease_expires_at = now() + interval '5 min',
  lease_started_at = now() FROM picked WHERE q.id = picked.id RETURNING q.id)
SELECT j.payload FROM jobs j JOIN claimed c ON c.id = j.id;"

cat > "$tmp/A.sql" <<'SQL'
SELECT count(*) FROM velu_claim_jobs('org-1', now(), '["noop"]', 30, 100, 'w', now() + interval '5 min', 4194304);
WITH d AS (UPDATE jobs SET status = 'succeeded', finished_at = now(), lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, updated_at = now() WHERE org_id = 'org-1' AND status = 'running' RETURNING id, attempts, lease_started_at) INSERT INTO job_attempts (job_id, attempt, worker_id, lease_token, started_at, finished_at, outcome) SELECT id, attempts, 'w', 't', lease_started_at, now(), 'succeeded' FROM d;
SQL
{ echo "$claim_q" | tr '\n' ' '; echo; cat <<'SQL'
WITH d AS (DELETE FROM job_queue WHERE org_id = 'org-1' AND lease_token IS NOT NULL RETURNING id, attempts, lease_started_at), u AS (UPDATE jobs SET status = 'succeeded', attempts = d.attempts, started_at = COALESCE(jobs.started_at, d.lease_started_at), finished_at = now(), updated_at = now() FROM d WHERE jobs.id = d.id RETURNING jobs.id) INSERT INTO job_attempts (job_id, attempt, worker_id, lease_token, started_at, finished_at, outcome) SELECT d.id, d.attempts, 'w', 't', d.lease_started_at, now(), 'succeeded' FROM d JOIN u ON u.id = d.id;
SQL
} > "$tmp/B.sql"
{ echo "$claim_q" | tr '\n' ' '; echo; cat <<'SQL'
WITH d AS (DELETE FROM job_queue WHERE org_id = 'org-1' AND lease_token IS NOT NULL RETURNING id, org_id, attempts, lease_started_at), u AS (INSERT INTO job_results SELECT d.id, d.org_id, 'succeeded', '{}'::jsonb, NULL, d.attempts, d.lease_started_at, now() FROM d) INSERT INTO job_attempts (job_id, attempt, worker_id, lease_token, started_at, finished_at, outcome) SELECT d.id, d.attempts, 'w', 't', d.lease_started_at, now(), 'succeeded' FROM d;
SQL
} > "$tmp/C.sql"
{ echo "$claim_q" | tr '\n' ' '; echo; echo "DELETE FROM job_queue WHERE org_id = 'org-1' AND lease_token IS NOT NULL;"; } > "$tmp/D.sql"

# Shapes E and F: the claim picks off `jobs` (its claim index) the queued jobs without a
# lease and inserts their leases; the finish takes the 30 oldest leases.
lease_claim() { # $1: "FOR UPDATE OF j SKIP LOCKED" or nothing
  echo "WITH picked AS (SELECT j.id, j.org_id, j.attempts FROM jobs j WHERE j.org_id = 'org-1'
  AND j.status = 'queued' AND j.run_at <= now() AND j.task = ANY(ARRAY['noop'])
  AND NOT EXISTS (SELECT 1 FROM job_leases l WHERE l.job_id = j.id)
  ORDER BY j.priority DESC, j.run_at, j.id LIMIT 30 $1),
claimed AS (INSERT INTO job_leases (job_id, org_id, attempt, owner, token, expires_at, started_at)
  SELECT id, org_id, attempts + 1, 'w', gen_random_uuid()::text, now() + interval '5 min', clock_timestamp()
  FROM picked ON CONFLICT DO NOTHING RETURNING job_id)
SELECT j.payload FROM jobs j JOIN claimed c ON c.job_id = j.id;" | tr '\n' ' '; echo
}
lease_finish="WITH d AS (DELETE FROM job_leases WHERE job_id IN (SELECT job_id FROM job_leases
  WHERE org_id = 'org-1' ORDER BY started_at, job_id LIMIT 30) RETURNING job_id, attempt, started_at),
u AS (UPDATE jobs SET status = 'succeeded', attempts = d.attempt,
  started_at = COALESCE(jobs.started_at, d.started_at), finished_at = now(), updated_at = now()
  FROM d WHERE jobs.id = d.job_id RETURNING jobs.id)
INSERT INTO job_attempts (job_id, attempt, worker_id, lease_token, started_at, finished_at, outcome)
SELECT d.job_id, d.attempt, 'w', 't', d.started_at, now(), 'succeeded' FROM d JOIN u ON u.id = d.job_id;"
{ lease_claim "FOR UPDATE OF j SKIP LOCKED"; echo "$lease_finish" | tr '\n' ' '; echo; } > "$tmp/E0.sql"
cp "$tmp/E0.sql" "$tmp/E30.sql"
{ lease_claim ""; echo "$lease_finish" | tr '\n' ' '; echo; } > "$tmp/F30.sql"
# E30 and F30 start with 30 jobs running, which each cycle's finish leaves claimed.
cp "$tmp/setup.sql" "$tmp/setup_ahead.sql"
lease_claim "" >> "$tmp/setup_ahead.sql"

# Shape H: `jobs` without the indexes of changing columns, its rows with room to update
# in place; the indexes and the fill are put back after each H round.
cat > "$tmp/in_place.sql" <<SQL
DROP INDEX ix_jobs_claim, ix_jobs_running_org, ix_jobs_org_status_id;
ALTER TABLE jobs SET (fillfactor = ${H_FILL:-70});
SQL
{ cat "$tmp/in_place.sql" "$tmp/setup.sql"
  echo "INSERT INTO job_queue_h SELECT id, org_id, task, priority, run_at FROM jobs;"; } > "$tmp/setup_H.sql"
cat > "$tmp/teardown_H.sql" <<'SQL'
ALTER TABLE jobs RESET (fillfactor);
CREATE INDEX ix_jobs_claim ON jobs (org_id, priority DESC, run_at, id) WHERE status = 'queued';
CREATE INDEX ix_jobs_running_org ON jobs (org_id) WHERE status = 'running';
CREATE INDEX ix_jobs_org_status_id ON jobs (org_id, status, id);
SQL
h_claim="WITH picked AS (SELECT q.job_id FROM job_queue_h q WHERE q.org_id = 'org-1'
  AND q.run_at <= now() AND q.task = ANY(ARRAY['noop'])
  ORDER BY q.priority DESC, q.run_at, q.job_id LIMIT 30 FOR UPDATE SKIP LOCKED),
gone AS (DELETE FROM job_queue_h q USING picked p WHERE q.job_id = p.job_id RETURNING q.job_id, q.org_id),
leased AS (INSERT INTO job_leases (job_id, org_id, attempt, owner, token, expires_at, started_at)
  SELECT job_id, org_id, 1, 'w', gen_random_uuid()::text, now() + interval '5 min', clock_timestamp()
  FROM gone RETURNING job_id, token),
u AS (UPDATE jobs j SET status = 'running', attempts = j.attempts + 1, lease_owner = 'w',
  lease_token = l.token, lease_expires_at = now() + interval '5 min',
  started_at = COALESCE(j.started_at, now()), updated_at = now(), lease_started_at = now()
  FROM leased l WHERE j.id = l.job_id RETURNING j.payload)
SELECT payload FROM u;"
h_finish="WITH d AS (DELETE FROM job_leases WHERE job_id IN (SELECT job_id FROM job_leases
  WHERE org_id = 'org-1' ORDER BY started_at, job_id LIMIT 30) RETURNING job_id, attempt, started_at),
u AS (UPDATE jobs SET status = 'succeeded', finished_at = now(), lease_owner = NULL,
  lease_token = NULL, lease_expires_at = NULL, updated_at = now()
  FROM d WHERE jobs.id = d.job_id RETURNING jobs.id, jobs.org_id),
r AS (INSERT INTO job_done (job_id, org_id, status) SELECT id, org_id, 'succeeded' FROM u)
INSERT INTO job_attempts (job_id, attempt, worker_id, lease_token, started_at, finished_at, outcome)
SELECT d.job_id, d.attempt, 'w', 't', d.started_at, now(), 'succeeded' FROM d;"
{ echo "$h_claim" | tr '\n' ' '; echo; echo "$h_finish" | tr '\n' ' '; echo; } > "$tmp/H.sql"

# Shape HT: the same `jobs`, its narrow tables kept by triggers.
cat > "$tmp/mirror.sql" <<'SQL'
CREATE TABLE job_status (org_id varchar(36) NOT NULL, status varchar(16) NOT NULL,
  job_id varchar(36) NOT NULL, PRIMARY KEY (org_id, status, job_id));
CREATE TABLE job_queue_t (org_id varchar(36) NOT NULL, job_id varchar(36) NOT NULL,
  task varchar(64) NOT NULL, priority int NOT NULL, run_at timestamptz NOT NULL,
  PRIMARY KEY (org_id, job_id));
CREATE INDEX ix_qt_claim ON job_queue_t (org_id, priority DESC, run_at, job_id);
CREATE FUNCTION velu_mirror_insert() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN
  INSERT INTO job_status SELECT org_id, status, id FROM new_rows;
  INSERT INTO job_queue_t SELECT org_id, id, task, priority, run_at FROM new_rows
    WHERE status = 'queued';
  RETURN NULL; END $f$;
CREATE FUNCTION velu_mirror_update() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN
  UPDATE job_status s SET status = n.status FROM old_rows o JOIN new_rows n ON n.id = o.id
    WHERE o.status <> n.status AND s.org_id = o.org_id AND s.status = o.status AND s.job_id = o.id;
  DELETE FROM job_queue_t q USING old_rows o JOIN new_rows n ON n.id = o.id
    WHERE o.status = 'queued' AND (n.status <> 'queued'
      OR (n.run_at, n.priority) IS DISTINCT FROM (o.run_at, o.priority))
      AND q.org_id = o.org_id AND q.job_id = o.id;
  INSERT INTO job_queue_t SELECT n.org_id, n.id, n.task, n.priority, n.run_at
    FROM old_rows o JOIN new_rows n ON n.id = o.id
    WHERE n.status = 'queued' AND (o.status <> 'queued'
      OR (n.run_at, n.priority) IS DISTINCT FROM (o.run_at, o.priority));
  RETURN NULL; END $f$;
CREATE TRIGGER mirror_insert AFTER INSERT ON jobs REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION velu_mirror_insert();
CREATE TRIGGER mirror_update AFTER UPDATE ON jobs REFERENCING OLD TABLE AS old_rows
  NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION velu_mirror_update();
SQL
cat "$tmp/in_place.sql" "$tmp/mirror.sql" "$tmp/setup.sql" > "$tmp/setup_HT.sql"
cat "$tmp/teardown_H.sql" > "$tmp/teardown_HT.sql"
cat >> "$tmp/teardown_HT.sql" <<'SQL'
DROP TRIGGER mirror_insert ON jobs; DROP TRIGGER mirror_update ON jobs;
DROP FUNCTION velu_mirror_insert(); DROP FUNCTION velu_mirror_update();
DROP TABLE job_status, job_queue_t;
SQL
ht_claim="WITH picked AS (SELECT q.job_id FROM job_queue_t q WHERE q.org_id = 'org-1'
  AND q.run_at <= now() AND q.task = ANY(ARRAY['noop'])
  ORDER BY q.priority DESC, q.run_at, q.job_id LIMIT 30 FOR UPDATE SKIP LOCKED)
UPDATE jobs j SET status = 'running', attempts = j.attempts + 1, lease_owner = 'w',
  lease_token = gen_random_uuid()::text, lease_expires_at = now() + interval '5 min',
  started_at = COALESCE(j.started_at, now()), updated_at = now(), lease_started_at = now()
  FROM picked p WHERE j.id = p.job_id RETURNING j.payload;"
ht_finish="WITH d AS (UPDATE jobs SET status = 'succeeded', finished_at = now(), lease_owner = NULL,
  lease_token = NULL, lease_expires_at = NULL, updated_at = now()
  WHERE id IN (SELECT job_id FROM job_status WHERE org_id = 'org-1' AND status = 'running')
  RETURNING id, attempts, lease_started_at)
INSERT INTO job_attempts (job_id, attempt, worker_id, lease_token, started_at, finished_at, outcome)
SELECT id, attempts, 'w', 't', lease_started_at, now(), 'succeeded' FROM d;"
{ echo "$ht_claim" | tr '\n' ' '; echo; echo "$ht_finish" | tr '\n' ' '; echo; } > "$tmp/HT.sql"

declare -A times wals
for round in $(seq 1 "$ROUNDS"); do
  for shape in $SHAPES; do
    case "$shape" in
      A|E0) setup="$tmp/setup.sql" ;;
      E30|F30) setup="$tmp/setup_ahead.sql" ;;
      H) setup="$tmp/setup_H.sql" ;;
      HT) setup="$tmp/setup_HT.sql" ;;
      *) setup="$tmp/setup_q.sql" ;;
    esac
    psql -q "$PGURL/$DB" -f "$setup" >/dev/null
    # Statistics of the fresh rows, as autovacuum would keep them (it is off on the
    # development server): without them the planner sorted a whole queue for a claim.
    psql -q "$PGURL/$DB" -c ANALYZE >/dev/null
    case "$shape" in H*) sleep 1 ;; esac
    read -r hot0 upd0 < <(psql -qAt -F ' ' "$PGURL/$DB" -c "SELECT n_tup_hot_upd, n_tup_upd
      FROM pg_stat_user_tables WHERE relname = 'jobs'")
    lsn0=$(wal_mark)
    # Velu's claim functions plan with `enable_seqscan = off` (m20261204_000020): so do
    # the lease shapes, whose narrow table the planner would otherwise read whole (it
    # starts empty, and holds the dead rows of every finished lease until a vacuum).
    opts=""; case "$shape" in E*|F*|H*) opts="-c enable_seqscan=off" ;; esac
    ms=$(PGOPTIONS="$opts" pgbench_ms -t "$CYCLES" -f "$tmp/$shape.sql")
    wal=$(wal_per "$lsn0" "$((CYCLES * 30))")
    times[$shape]="${times[$shape]:-} $ms"
    wals[$shape]="${wals[$shape]:-} $wal"
    echo "round $round shape $shape: $ms ms per cycle of 30 jobs, WAL $wal B/job" >&2
    if [ "${shape:0:1}" = H ]; then
      # How many of the round's updates of `jobs` were HOT (the statistics of its
      # backend arrive within a second).
      sleep 1
      hot=$(psql -qAt "$PGURL/$DB" -c "SELECT n_tup_hot_upd - $hot0 || ' of ' || n_tup_upd - $upd0
        FROM pg_stat_user_tables WHERE relname = 'jobs'")
      echo "round $round shape $shape: updates of jobs in place (HOT): $hot" >&2
      psql -q "$PGURL/$DB" -f "$tmp/teardown_$shape.sql" >/dev/null
    fi
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
base=$(echo "${times[A]:-}" | median)
for shape in $SHAPES; do
  m=$(echo "${times[$shape]}" | median)
  w=$(echo "${wals[$shape]}" | median)
  awk -v s="$shape" -v m="$m" -v b="$base" -v w="$w" 'BEGIN {printf "queue-shape %s ms_per_cycle=%.3f us_per_job=%.1f wal_bytes_per_job=%.0f speedup_vs_A=%.2f\n", s, m, m * 1000 / 30, w, b / m}'
done
