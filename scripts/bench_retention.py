#!/usr/bin/env python3
"""What a retention run costs everyone else (issue 9, target 5): HTTP submits and lists
before, during and after `velu-cli retention run` removes HISTORY finished jobs.

Per backend: a fresh world of ORGS orgs and `velu-cli serve` (scripts/bench_http.py's
World); HISTORY finished jobs, each with its attempt row, planted directly in the first
org, finished 400 days ago (past every plan's retention), then `ANALYZE`; then wrk on
ROUTE (submit) for SECS seconds three times: before, while `retention run --max-jobs
HISTORY` removes them (slices of 1,000 jobs, one short transaction each), and after. The
retention run's own time and rate are printed too. Figures: req/s, p50, p99 per window.

    BACKENDS=postgres,sqlite HISTORY=1000000 SECS=20 python3 scripts/bench_retention.py

Knobs: VELU_BIN (target/release/velu-cli), BACKENDS, ORGS (200), HISTORY (1000000), SECS
(20), CONNS (32), ROUTE (submit or list), PGURL. Needs wrk, psql and sqlite3.
"""

import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_http as bh  # noqa: E402

PLANT_PG = """
INSERT INTO jobs (id, org_id, task, status, payload, result, priority, attempts, max_attempts,
  run_at, actor_type, actor_id, cancel_requested, created_at, updated_at, started_at, finished_at)
SELECT '00000000-0000-7000-8000-' || lpad(to_hex(i), 12, '0'), '{org}', 'echo', 'succeeded',
  '{{"i": 1}}', '{{"i": 1}}', 0, 1, 3, t, 'cli', 'bench', false, t, t, t, t
FROM generate_series(1, {n}) AS i, (SELECT now() - interval '400 days' AS t) AS at;
INSERT INTO job_attempts (job_id, attempt, worker_id, lease_token, started_at, finished_at, outcome)
SELECT '00000000-0000-7000-8000-' || lpad(to_hex(i), 12, '0'), 1, 'bench', 'history', t, t, 'succeeded'
FROM generate_series(1, {n}) AS i, (SELECT now() - interval '400 days' AS t) AS at;
ANALYZE;
"""

PLANT_SQLITE = """
PRAGMA busy_timeout = 60000;
BEGIN IMMEDIATE;
WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n})
INSERT INTO jobs (id, org_id, task, status, payload, result, priority, attempts, max_attempts,
  run_at, actor_type, actor_id, cancel_requested, created_at, updated_at, started_at, finished_at)
SELECT printf('00000000-0000-7000-8000-%012x', i), '{org}', 'echo', 'succeeded',
  '{{"i": 1}}', '{{"i": 1}}', 0, 1, 3, '{at}', 'cli', 'bench', 0, '{at}', '{at}', '{at}', '{at}'
FROM s;
WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n})
INSERT INTO job_attempts (job_id, attempt, worker_id, lease_token, started_at, finished_at, outcome)
SELECT printf('00000000-0000-7000-8000-%012x', i), 1, 'bench', 'history', '{at}', '{at}', 'succeeded'
FROM s;
COMMIT;
ANALYZE;
PRAGMA wal_checkpoint(TRUNCATE);
"""


def plant(world, pgurl, n):
    org = world.creds[0][1]
    t = time.monotonic()
    if world.backend == "postgres":
        bh.psql(pgurl, PLANT_PG.format(org=org, n=n), world.db)
    else:
        at = time.strftime("%Y-%m-%dT%H:%M:%S.000000+00:00", time.gmtime(time.time() - 400 * 86400))
        path = os.path.join(world.home, "velu.db")
        res = subprocess.run(["sqlite3", path], input=PLANT_SQLITE.format(org=org, n=n, at=at),
                             capture_output=True, text=True, timeout=1800)
        if res.returncode != 0:
            sys.exit(f"bench_retention: planting failed: {res.stderr[-2000:]}")
    return time.monotonic() - t


def window(world, route, conns, secs):
    r = bh.wrk(world.port, world.lua(route), conns, secs)
    return f"req_per_s={r['rps']:.0f} p50_ms={r['p50']:.2f} p99_ms={r['p99']:.2f} errors={r['bad']}"


def main():
    binary = bh.env("VELU_BIN", os.path.join(bh.ROOT, "target/release/velu-cli"))
    backends = bh.env("BACKENDS", "postgres,sqlite").split(",")
    orgs, history = int(bh.env("ORGS", 200)), int(bh.env("HISTORY", 1_000_000))
    secs, conns, route = int(bh.env("SECS", 20)), int(bh.env("CONNS", 32)), bh.env("ROUTE", "submit")
    pgurl = bh.env("PGURL", "postgres://postgres@127.0.0.1:5432")
    print(f"# {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {os.cpu_count()} cores; "
          f"ORGS={orgs} HISTORY={history} SECS={secs} CONNS={conns} ROUTE={route}", flush=True)
    for n, backend in enumerate(backends, start=1):
        world = bh.World("velu", binary, backend, orgs, pgurl, 90 + n)
        try:
            took = plant(world, pgurl, history)
            print(f"retention-{backend} planted={history} secs={took:.1f}", flush=True)
            bh.wrk(world.port, world.lua(route), conns, 3)  # warm-up
            print(f"retention-{backend} {route} before {window(world, route, conns, secs)}",
                  flush=True)
            t = time.monotonic()
            proc = subprocess.Popen([binary, "retention", "run", "--max-jobs", str(history),
                                     "-o", "json"], env=world.env, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
            during = window(world, route, conns, secs)
            overlap = proc.poll() is None
            out, err = proc.communicate(timeout=3600)
            took = time.monotonic() - t
            if proc.returncode != 0:
                sys.exit(f"bench_retention: retention run failed: {err[-2000:]}")
            removed = json.loads(out)["removed"]
            print(f"retention-{backend} {route} during {during} "
                  f"(retention still running at the window's end: {'yes' if overlap else 'no'})",
                  flush=True)
            print(f"retention-{backend} run removed={removed} secs={took:.1f} "
                  f"jobs_per_s={removed / took:.0f}", flush=True)
            print(f"retention-{backend} {route} after {window(world, route, conns, secs)}",
                  flush=True)
        finally:
            world.close(pgurl, False)


if __name__ == "__main__":
    main()
