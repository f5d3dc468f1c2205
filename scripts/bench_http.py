#!/usr/bin/env python3
"""HTTP figures of Velu with wrk: submit, list, show and whoami over many orgs' keys.

Measures, never asserts (exit 0 unless the setup itself fails). See docs/benchmarks.md.

For each binary given (VELU_BIN, and VELU_BIN_BEFORE when set, so two builds are compared
side by side in one run) and each backend (BACKENDS: postgres,sqlite):
1. A fresh database (PostgreSQL: `bench_http_<n>` on PGURL's server, `migrate up`;
   SQLite: a fresh VELU_HOME), ORGS orgs bootstrapped on the superhero plan, one job
   submitted per org (the ids `show` reads), then `velu-cli serve`.
2. wrk -t2 -cCONNS -dSECS per route, keys and orgs drawn at random per request by a Lua
   script; a 3 s warm-up of the route first. ROUNDS rounds, binaries alternating inside a
   round, so drift hits both alike, and taking the first slot of a round in turn (it
   gained up to about 10% by itself); medians of the rounds are printed. Use an even
   ROUNDS with two binaries, so each is first equally often.
3. PostgreSQL only, once: pgbench with the durable writes of one submit (a `jobs` row and
   its `job_events` row in one transaction, tables copied from the schema without
   triggers or policies), PGBENCH_CLIENTS clients, SECS seconds: the write ceiling.
   With PGBENCH_FULL=1, a second pgbench with everything Velu's submit writes, on Velu's
   own tables as its app role under row-level security: the `jobs` row (its counters
   trigger fires), the `queued` event, the audit record, the usage counter and the
   wake-up, as the one statement of jobs/grouped_pg.rs, one submit per transaction (Velu
   groups concurrent submits into one). The gap between the two is the cost of what
   Velu keeps; the gap between this one and Velu's submit, the cost of the API around it.

Prints one line per (binary, backend, route): req/s, p50, p99 (medians over rounds).
Knobs: VELU_BIN (target/release/velu-cli), VELU_BIN_BEFORE, BACKENDS, ORGS (200), CONNS
(32), SECS (15), ROUNDS (3), ROUTES (submit,list,show,whoami), PGURL
(postgres://postgres@127.0.0.1:5432), PGBENCH_CLIENTS (16), KEEP=1.
Needs wrk and pgbench on PATH. Targets 127.0.0.1 only.
"""

import json
import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def env(name, default):
    return os.environ.get(name, default)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd, environ=None, **kw):
    res = subprocess.run(cmd, env=environ, capture_output=True, text=True, timeout=600, **kw)
    if res.returncode != 0:
        sys.exit(f"bench_http: `{' '.join(cmd)}` failed ({res.returncode}): {res.stderr.strip()[-2000:]}")
    return res.stdout


def psql(pgurl, sql, db="postgres"):
    return run(["psql", f"{pgurl}/{db}", "-v", "ON_ERROR_STOP=1", "-Atc", sql])


def wait_ready(port, proc, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def http(port, method, path, key, body=None):
    import http.client

    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"X-API-Key": key, "Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body)
        headers["Content-Type"] = "application/json"
    c.request(method, path, body=data, headers=headers)
    r = c.getresponse()
    text = r.read()
    c.close()
    if r.status >= 300:
        sys.exit(f"bench_http: {method} {path} -> {r.status}: {text[:300]!r}")
    return json.loads(text)


LUA = r"""
local creds = {%(creds)s}
local route = "%(route)s"
local body = '{"task":"echo","payload":{"n":1}}'
math.randomseed(os.time())
request = function()
  local c = creds[math.random(#creds)]
  local h = { ["X-API-Key"] = c[1], ["Accept"] = "application/json" }
  if route == "submit" then
    h["Content-Type"] = "application/json"
    return wrk.format("POST", "/v1/orgs/" .. c[2] .. "/jobs", h, body)
  elseif route == "list" then
    return wrk.format("GET", "/v1/orgs/" .. c[2] .. "/jobs?limit=20", h)
  elseif route == "show" then
    return wrk.format("GET", "/v1/orgs/" .. c[2] .. "/jobs/" .. c[3], h)
  else
    return wrk.format("GET", "/v1/whoami", h)
  end
end
"""


def to_ms(text):
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    v, unit = float(m.group(1)), m.group(2)
    return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v


def wrk(port, lua, conns, secs):
    out = run(["wrk", "-t2", f"-c{conns}", f"-d{secs}s", "--latency", "-s", lua,
               f"http://127.0.0.1:{port}"])
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = to_ms(re.search(r"\s50%\s+(\S+)", out).group(1))
    p99 = to_ms(re.search(r"\s99%\s+(\S+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    bad = (int(non2xx.group(1)) if non2xx else 0) + (sum(map(int, sock.groups())) if sock else 0)
    return {"rps": rps, "p50": p50, "p99": p99, "bad": bad}


class World:
    """One binary on one backend: its database, its orgs and its running server."""

    def __init__(self, name, binary, backend, orgs, pgurl, n):
        self.name, self.binary, self.backend = name, binary, backend
        self.home = tempfile.mkdtemp(prefix="velu-bench-http-")
        self.env = dict(os.environ, VELU_HOME=self.home, VELU_LOG="warn")
        self.env.pop("VELU_DATABASE_URL", None)
        self.db = None
        if backend == "postgres":
            self.db = f"bench_http_{n}"
            psql(pgurl, f"DROP DATABASE IF EXISTS {self.db}")
            psql(pgurl, f"CREATE DATABASE {self.db}")
            self.env["VELU_DATABASE_URL"] = f"{pgurl}/{self.db}"
            self.env["VELU_API_KEY_PEPPER"] = secrets.token_urlsafe(32)
            run([binary, "migrate", "up"], self.env)
        self.creds = []
        for i in range(orgs):
            boot = json.loads(run([binary, "org", "bootstrap", "--name", f"Bench {i}", "--slug",
                                   f"bench-{i}", "--plan", "superhero", "-o", "json"], self.env))
            org = boot["org"]["id"]
            self.creds.append([boot["keys"]["builder"]["token"], org])
        self.port = free_port()
        self.log = open(os.path.join(self.home, "serve.log"), "w")
        self.server = subprocess.Popen([binary, "serve", "--addr", f"127.0.0.1:{self.port}"],
                                       env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        if not wait_ready(self.port, self.server):
            self.log.flush()
            sys.exit(f"bench_http: server did not start:\n{open(self.log.name).read()[-2000:]}")
        for c in self.creds:
            job = http(self.port, "POST", f"/v1/orgs/{c[1]}/jobs", c[0],
                       {"task": "echo", "payload": {"n": 0}})
            c.append(job["id"])

    def lua(self, route):
        path = os.path.join(self.home, f"{route}.lua")
        creds = ",".join("{%s}" % ",".join(json.dumps(x) for x in c) for c in self.creds)
        with open(path, "w") as f:
            f.write(LUA % {"creds": creds, "route": route})
        return path

    def close(self, pgurl, keep):
        self.server.terminate()
        try:
            self.server.wait(10)
        except subprocess.TimeoutExpired:
            self.server.kill()
        if self.db and not keep:
            psql(pgurl, f"DROP DATABASE IF EXISTS {self.db} WITH (FORCE)")
        if not keep:
            shutil.rmtree(self.home, ignore_errors=True)


PGBENCH = """\\set n random(1, 1000000000)
BEGIN;
INSERT INTO pgb_jobs (id, org_id, task, status, payload, priority, attempts, max_attempts, run_at,
  actor_type, actor_id, cancel_requested, created_at, updated_at)
  VALUES (gen_random_uuid()::text, 'org-' || (:n % 200), 'echo', 'queued', '{"n": 1}', 0, 0, 3, now(),
  'api_key', 'k' || (:n % 200), false, now(), now());
INSERT INTO pgb_events (job_id, org_id, kind, at, detail)
  VALUES (gen_random_uuid()::text, 'org-' || (:n % 200), 'queued', now(), 'submit');
END;
"""


def pgbench_on(pgurl, db, clients, secs, prepare, script_text):
    """Runs pgbench with `script_text` on a fresh database `db`, made by `velu-cli migrate
    up` and then `prepare(env, binary)`; dropped after. Returns (tps, average latency)."""
    psql(pgurl, f"DROP DATABASE IF EXISTS {db}")
    psql(pgurl, f"CREATE DATABASE {db}")
    tmp = tempfile.mkdtemp(prefix="velu-bench-pg-")
    try:
        env = dict(os.environ, VELU_HOME=tmp, VELU_DATABASE_URL=f"{pgurl}/{db}",
                   VELU_API_KEY_PEPPER="x" * 32)
        binary = os.environ.get("VELU_BIN", os.path.join(ROOT, "target/release/velu-cli"))
        run([binary, "migrate", "up"], env)
        prepare(env, binary)
        script = os.path.join(tmp, "bench.sql")
        with open(script, "w") as f:
            f.write(script_text)
        out = run(["pgbench", "-n", "-M", "prepared", "-c", str(clients), "-j", "2", "-T",
                   str(secs), "-f", script, f"{pgurl}/{db}"])
        tps = float(re.search(r"tps = ([\d.]+)", out).group(1))
        lat = float(re.search(r"latency average = ([\d.]+) ms", out).group(1))
        return tps, lat
    finally:
        psql(pgurl, f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        shutil.rmtree(tmp, ignore_errors=True)


def pgbench(pgurl, clients, secs):
    """pgbench with a submit's two durable inserts, on bare copies of the tables."""
    db = "bench_http_pgbench"

    def prepare(_env, _binary):
        psql(pgurl, "CREATE TABLE pgb_jobs (LIKE jobs INCLUDING ALL); "
                    "CREATE TABLE pgb_events (LIKE job_events INCLUDING ALL)", db)

    return pgbench_on(pgurl, db, clients, secs, prepare, PGBENCH)


PGBENCH_FULL = """\\set o random(1, %(orgs)d)
BEGIN;
SELECT set_config('velu.org_id', (SELECT id FROM pgb_orgs WHERE n = :o), true);
SET LOCAL ROLE velu_app;
WITH s AS (SELECT gen_random_uuid()::text AS id, current_setting('velu.org_id') AS org_id,
    'echo'::text AS task, '{"n": 1}'::json AS payload, gen_random_uuid()::text AS audit_id),
  j AS (INSERT INTO jobs (id, org_id, task, status, payload, priority, attempts, max_attempts,
      run_at, actor_type, actor_id, cancel_requested, created_at, updated_at)
    SELECT s.id, s.org_id, s.task, 'queued', s.payload, 0, 0, 3, now(), 'api_key', 'k', false,
      now(), now() FROM s),
  e AS (INSERT INTO job_events (job_id, org_id, kind, at, detail)
    SELECT s.id, s.org_id, 'queued', now(), 'submit' FROM s),
  a AS (INSERT INTO audit_events (id, org_id, actor_type, actor_id, action, target_type,
      target_id, details, created_at)
    SELECT s.audit_id, s.org_id, 'api_key', 'k', 'job.submit', 'job', s.id,
      jsonb_build_object('task', s.task)::json, now() FROM s),
  u AS (INSERT INTO usage_daily (org_id, day, task, shard, jobs_submitted, jobs_succeeded,
      jobs_failed, run_ms, api_requests)
    SELECT s.org_id, to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD'), s.task,
      pg_backend_pid() %% 16, 1, 0, 0, 0, 0 FROM s
    ON CONFLICT (org_id, day, task, shard)
      DO UPDATE SET jobs_submitted = usage_daily.jobs_submitted + excluded.jobs_submitted)
SELECT pg_notify('velu_jobs', org_id) FROM s;
END;
"""


def pgbench_full(pgurl, clients, secs, orgs):
    """pgbench with everything one submit writes, on Velu's tables (PGBENCH_FULL)."""
    db = "bench_http_pgbench_full"

    def prepare(env, binary):
        for i in range(orgs):
            run([binary, "org", "create", "--name", f"Bench {i}", "--slug", f"bench-{i}",
                 "--plan", "superhero"], env)
        psql(pgurl, "CREATE TABLE pgb_orgs AS SELECT row_number() OVER (ORDER BY id) AS n, id "
                    "FROM organizations; CREATE UNIQUE INDEX ON pgb_orgs (n)", db)

    return pgbench_on(pgurl, db, clients, secs, prepare, PGBENCH_FULL % {"orgs": orgs})


def main():
    if not shutil.which("wrk"):
        sys.exit("bench_http: wrk not found (apt install wrk)")
    binaries = [("velu", env("VELU_BIN", os.path.join(ROOT, "target/release/velu-cli")))]
    if os.environ.get("VELU_BIN_BEFORE"):
        binaries.append(("before", os.environ["VELU_BIN_BEFORE"]))
    backends = env("BACKENDS", "postgres,sqlite").split(",")
    routes = env("ROUTES", "submit,list,show,whoami").split(",")
    orgs, conns, secs, rounds = int(env("ORGS", 200)), int(env("CONNS", 32)), int(env("SECS", 15)), int(env("ROUNDS", 3))
    pgurl = env("PGURL", "postgres://postgres@127.0.0.1:5432")
    keep = env("KEEP", "") == "1"
    print(f"# {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {os.cpu_count()} cores; "
          f"ORGS={orgs} CONNS={conns} SECS={secs} ROUNDS={rounds}", flush=True)
    if "postgres" in backends:
        tps, lat = pgbench(pgurl, int(env("PGBENCH_CLIENTS", 16)), secs)
        print(f"pgbench submit-writes clients={env('PGBENCH_CLIENTS', 16)} tps={tps:.0f} "
              f"latency_avg_ms={lat:.2f}", flush=True)
        if env("PGBENCH_FULL", "") == "1":
            tps, lat = pgbench_full(pgurl, int(env("PGBENCH_CLIENTS", 16)), secs, orgs)
            print(f"pgbench submit-full-writes clients={env('PGBENCH_CLIENTS', 16)} tps={tps:.0f} "
                  f"latency_avg_ms={lat:.2f}", flush=True)
    n = 0
    for backend in backends:
        worlds = []
        for name, binary in binaries:
            n += 1
            worlds.append(World(name, binary, backend, orgs, pgurl, n))
        try:
            for route in routes:
                got = {w.name: [] for w in worlds}
                for w in worlds:
                    wrk(w.port, w.lua(route), conns, 3)  # warm-up
                for r in range(rounds):
                    # Each build takes the first slot of a round in turn: the first slot
                    # alone gained up to about 10% here (docs/benchmarks-log.md).
                    for w in worlds[r % len(worlds):] + worlds[:r % len(worlds)]:
                        got[w.name].append(wrk(w.port, w.lua(route), conns, secs))
                for w in worlds:
                    rs = got[w.name]
                    med = lambda k: statistics.median(r[k] for r in rs)
                    print(f"{w.name} {backend} {route} req_per_s={med('rps'):.0f} "
                          f"p50_ms={med('p50'):.2f} p99_ms={med('p99'):.2f} "
                          f"errors={sum(r['bad'] for r in rs)}", flush=True)
        finally:
            for w in worlds:
                w.close(pgurl, keep)


if __name__ == "__main__":
    main()
