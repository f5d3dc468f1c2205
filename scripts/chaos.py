#!/usr/bin/env python3
"""SIGKILL chaos: workers die mid-job at random; no job may be lost or succeed twice.

See docs/reliability.md. Exits 1 when a job is lost or has two successful attempts, 2 when
the setup fails, 0 otherwise.

1. Creates its own database: on PostgreSQL (default) `velu_chaos_<pid>` through psql
   against ADMIN_URL (postgres://postgres@127.0.0.1:5432/test), dropped at the end; on
   SQLite (BACKEND=sqlite) a fresh VELU_HOME. Applies migrations and bootstraps one org
   on the superhero plan.
2. Submits N jobs of the built-in `sleep` kind (payload {"seconds": SLEEP}) in one
   `velu-cli job submit-batch`, each with max_attempts MAX_ATTEMPTS (so a job that happens
   to be under several kills still has attempts left: what is measured is loss, not the
   retry budget).
3. Starts W `velu-cli worker --concurrency C --lease LEASE` processes, then sends K
   SIGKILLs, one every KILL_EVERY seconds to a random live worker, starting each
   replacement at once. With REMOTE=1 the workers are platform workers over a
   `velu-cli serve` of the same database (`worker --server`, a platform key with
   `jobs:work`, a home of their own): their claims share the server's list of ready
   orgs, and the server reclaims a killed worker's leases.
4. Waits (at most DRAIN_SECS) until every job is terminal, stops the workers (SIGTERM),
   and queries `jobs` and `job_attempts`:
   * lost: jobs not `succeeded` (split into never finished, failed, cancelled);
   * double success: jobs with more than one attempt whose outcome is `succeeded`;
   * also: succeeded jobs without a succeeded attempt, ended jobs whose attempt rows do
     not number their attempts (an attempt's row is appended once, when it ends),
     attempts ended `lost` (reclaimed after a kill), jobs run more than once.

Knobs (environment): VELU_BIN (target/release/velu-cli), BACKEND (postgres | sqlite),
ADMIN_URL, N (2000), W (8), C (4), K (100), SLEEP (0.5), LEASE (5s; at least 3),
MAX_ATTEMPTS (25), KILL_EVERY (spread the kills over about 70% of the expected
run), DRAIN_SECS (600), SEED (random), KEEP=1 (keep the database, home and logs),
REMOTE=1 (remote workers, step 3).
"""

import json
import os
import random
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_http import free_port, wait_ready  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def env_int(name, default):
    return int(os.environ.get(name, default))


def env_float(name, default):
    return float(os.environ.get(name, default))


def fail(msg):
    print(f"chaos: {msg}", file=sys.stderr)
    sys.exit(2)


def with_database(url, name):
    base, _, query = url.partition("?")
    prefix = base.rsplit("/", 1)[0]
    return f"{prefix}/{name}" + (f"?{query}" if query else "")


class Db:
    """Read-only queries on the run's database: psql for PostgreSQL, sqlite3 for SQLite."""

    def __init__(self, pg_url=None, sqlite_path=None):
        self.pg_url, self.sqlite_path = pg_url, sqlite_path

    def rows(self, sql):
        if self.pg_url:
            res = subprocess.run(["psql", "-X", "-q", "-At", "-F", "\t", "-v", "ON_ERROR_STOP=1",
                                  "-d", self.pg_url, "-c", sql],
                                 capture_output=True, text=True, timeout=120)
            if res.returncode != 0:
                raise RuntimeError(res.stderr.strip())
            return [line.split("\t") for line in res.stdout.splitlines() if line]
        con = sqlite3.connect(f"file:{self.sqlite_path}?mode=ro", uri=True, timeout=30)
        try:
            return [[str(v) for v in row] for row in con.execute(sql).fetchall()]
        finally:
            con.close()

    def scalar(self, sql):
        return int(self.rows(sql)[0][0])


QUERIES = {
    "jobs": "SELECT COUNT(*) FROM jobs",
    "succeeded": "SELECT COUNT(*) FROM jobs WHERE status = 'succeeded'",
    "unfinished": "SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'running')",
    "failed": "SELECT COUNT(*) FROM jobs WHERE status = 'failed'",
    "cancelled": "SELECT COUNT(*) FROM jobs WHERE status = 'cancelled'",
    "double_success": "SELECT COUNT(*) FROM (SELECT job_id FROM job_attempts "
                      "WHERE outcome = 'succeeded' GROUP BY job_id HAVING COUNT(*) > 1) d",
    "succeeded_without_attempt": "SELECT COUNT(*) FROM jobs j WHERE j.status = 'succeeded' "
                                 "AND NOT EXISTS (SELECT 1 FROM job_attempts a "
                                 "WHERE a.job_id = j.id AND a.outcome = 'succeeded')",
    "open_attempts": "SELECT COUNT(*) FROM job_attempts WHERE outcome IS NULL",
    "attempts_miscounted": "SELECT COUNT(*) FROM jobs j WHERE j.status <> 'running' "
                           "AND j.attempts <> (SELECT COUNT(*) FROM job_attempts a "
                           "WHERE a.job_id = j.id)",
    "attempts": "SELECT COUNT(*) FROM job_attempts",
    "lost_attempts": "SELECT COUNT(*) FROM job_attempts WHERE outcome = 'lost'",
    "jobs_run_more_than_once": "SELECT COUNT(*) FROM (SELECT job_id FROM job_attempts "
                               "GROUP BY job_id HAVING COUNT(*) > 1) m",
    "max_attempts_used": "SELECT COALESCE(MAX(attempts), 0) FROM jobs",
}


def main():
    binary = os.environ.get("VELU_BIN", os.path.join(ROOT, "target/release/velu-cli"))
    if not os.access(binary, os.X_OK):
        fail(f"{binary} not found; build it (cargo build --release -p velu-cli) or set VELU_BIN")
    backend = os.environ.get("BACKEND", "postgres")
    if backend not in ("postgres", "sqlite"):
        fail("BACKEND is postgres or sqlite")
    admin_url = os.environ.get("ADMIN_URL", "postgres://postgres@127.0.0.1:5432/test")
    n, w, c, k = env_int("N", 2000), env_int("W", 8), env_int("C", 4), env_int("K", 100)
    sleep_s, lease = env_float("SLEEP", 0.5), max(3, env_int("LEASE", 5))
    max_attempts, drain_secs = env_int("MAX_ATTEMPTS", 25), env_float("DRAIN_SECS", 600)
    seed = env_int("SEED", random.randrange(1 << 31))
    rng = random.Random(seed)
    # The expected run without kills; kills are spread over about 70% of it.
    expected = n * sleep_s / max(1, w * c)
    kill_every = env_float("KILL_EVERY", max(0.05, 0.7 * expected / max(1, k)))

    home = tempfile.mkdtemp(prefix="velu-chaos-")
    logs = os.path.join(home, "logs")
    os.makedirs(logs)
    env = dict(os.environ, VELU_HOME=os.path.join(home, "home"))
    env.setdefault("VELU_LOG", "warn")
    env.pop("VELU_DATABASE_URL", None)
    dbname = f"velu_chaos_{os.getpid()}"
    keep = os.environ.get("KEEP") == "1"
    if backend == "postgres":
        if not shutil.which("psql"):
            fail("psql not found (apt-get install -y postgresql-client)")
        url = with_database(admin_url, dbname)
        env["VELU_DATABASE_URL"] = url
        env.setdefault("VELU_API_KEY_PEPPER", secrets.token_urlsafe(32))
        db = Db(pg_url=url)
    else:
        db = Db(sqlite_path=os.path.join(env["VELU_HOME"], "velu.db"))

    def psql_admin(sql):
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", admin_url, "-c", sql],
                       check=True, capture_output=True, text=True, timeout=120)

    def cli(*args, stdin=None):
        res = subprocess.run([binary, *args], env=env, capture_output=True, text=True,
                             input=stdin, timeout=600)
        if res.returncode != 0:
            raise RuntimeError(f"velu-cli {' '.join(args[:3])} failed ({res.returncode}): "
                               f"{res.stderr.strip()[-2000:]}")
        return res.stdout

    workers = {}  # pid -> Popen
    started = [0]
    remote = os.environ.get("REMOTE") == "1"
    server = None
    # Remote workers: the server's URL and their environment (set once the server runs).
    worker_env, server_args = env, []

    def start_worker():
        i = started[0]
        started[0] += 1
        out = open(os.path.join(logs, f"worker-{i}.log"), "w")
        p = subprocess.Popen([binary, "worker", *server_args, "--concurrency", str(c),
                              "--lease", f"{lease}s", "--id", f"chaos-{i}"],
                             env=worker_env, stdout=out, stderr=subprocess.STDOUT,
                             start_new_session=True)
        out.close()
        workers[p.pid] = p

    created_db = False
    code = 2
    try:
        if backend == "postgres":
            psql_admin(f'CREATE DATABASE "{dbname}"')
            created_db = True
            cli("migrate", "up")
        cli("org", "bootstrap", "--name", "Chaos", "--slug", "chaos", "--plan", "superhero",
            "-o", "json")
        batch = "\n".join(json.dumps({"task": "sleep", "payload": {"seconds": sleep_s},
                                      "max_attempts": max_attempts}) for _ in range(n))
        t_submit = time.monotonic()
        submitted = json.loads(cli("job", "submit-batch", "--org", "chaos", "--file", "-",
                                   "-o", "json", stdin=batch))
        if submitted["count"] != n:
            raise RuntimeError(f"submitted {submitted['count']} of {n}")
        submit_s = time.monotonic() - t_submit
        if remote:
            port = free_port()
            serve_log = open(os.path.join(logs, "serve.log"), "w")
            server = subprocess.Popen([binary, "serve", "--addr", f"127.0.0.1:{port}"], env=env,
                                      stdout=serve_log, stderr=subprocess.STDOUT,
                                      start_new_session=True)
            serve_log.close()
            if not wait_ready(port, server):
                raise RuntimeError(f"the server did not start; see {logs}/serve.log")
            key = json.loads(cli("key", "create", "--platform", "--name", "chaos", "--scopes",
                                 "jobs:work", "-o", "json"))
            worker_env = dict(env, VELU_HOME=os.path.join(home, "remote"),
                              VELU_API_KEY=key["token"])
            worker_env.pop("VELU_DATABASE_URL", None)
            server_args = ["--server", f"http://127.0.0.1:{port}"]

        t0 = time.monotonic()
        for _ in range(w):
            start_worker()
        kills, exited_early = 0, 0
        next_kill = t0 + kill_every
        deadline = t0 + drain_secs
        unfinished = n
        last_poll = 0.0
        while time.monotonic() < deadline:
            now = time.monotonic()
            # Workers that exited on their own (they should not): count, replace.
            for pid, p in list(workers.items()):
                if p.poll() is not None:
                    exited_early += 1
                    del workers[pid]
                    if exited_early > 3 * w:
                        raise RuntimeError(f"workers keep exiting on their own; see {logs}")
                    start_worker()
            if kills < k and now >= next_kill:
                victim = rng.choice(list(workers))
                os.kill(victim, signal.SIGKILL)
                workers.pop(victim).wait()
                kills += 1
                start_worker()  # at once
                next_kill += kill_every
            if now - last_poll >= 1.0:
                last_poll = now
                unfinished = db.scalar(QUERIES["unfinished"])
                if unfinished == 0 and kills >= k:
                    break
                if unfinished == 0:
                    # Drained before every kill landed: stop killing (the rest would land
                    # on idle workers) and report how many did land.
                    break
            time.sleep(min(0.05, max(0.0, next_kill - time.monotonic())) if kills < k else 0.2)
        wall = time.monotonic() - t0
        drained = unfinished == 0

        for p in workers.values():
            p.send_signal(signal.SIGTERM)
        for p in workers.values():
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        workers.clear()

        r = {name: db.scalar(sql) for name, sql in QUERIES.items()}
        lost = r["jobs"] - r["succeeded"]
        double = r["double_success"]
        print(f"# chaos {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}, {os.cpu_count()} cores, "
              f"{backend}{', remote workers' if remote else ''}, {os.path.relpath(binary, ROOT)}, "
              f"seed {seed}")
        print(f"# N={n} W={w} C={c} K={k} SLEEP={sleep_s} LEASE={lease}s "
              f"MAX_ATTEMPTS={max_attempts} KILL_EVERY={kill_every:.3f}s")
        print(f"jobs            {r['jobs']} (submitted in {submit_s:.1f} s)")
        print(f"workers         {w} at a time, {started[0]} started, "
              f"{exited_early} exited on their own")
        print(f"kills           {kills} SIGKILL")
        print(f"lost            {lost} (never finished {r['unfinished']}, failed {r['failed']}, "
              f"cancelled {r['cancelled']})")
        print(f"double-success  {double}")
        print(f"wall time       {wall:.1f} s ({'drained' if drained else 'NOT drained'}; "
              f"without kills about {expected:.1f} s)")
        print(f"attempts        {r['attempts']} ({r['lost_attempts']} ended lost after a kill, "
              f"{r['open_attempts']} still open); {r['jobs_run_more_than_once']} jobs ran more "
              f"than once, at most {r['max_attempts_used']} attempts")
        print(f"consistency     succeeded without a succeeded attempt: "
              f"{r['succeeded_without_attempt']}; ended jobs with attempts miscounted: "
              f"{r['attempts_miscounted']}")
        print("# json: " + json.dumps(dict(r, backend=backend, n=n, w=w, c=c, k=k, kills=kills,
                                           lost=lost, double=double, wall_s=round(wall, 2),
                                           seed=seed, drained=drained)))
        bad = (lost > 0 or double > 0 or r["succeeded_without_attempt"] > 0
               or r["attempts_miscounted"] > 0 or r["open_attempts"] > 0)
        code = 1 if bad else 0
    except (RuntimeError, subprocess.SubprocessError, OSError, KeyError, ValueError) as e:
        print(f"chaos: {e}", file=sys.stderr)
        code = 2
    finally:
        for p in workers.values():
            if p.poll() is None:
                p.kill()
                p.wait()
        if server is not None:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        if keep:
            print(f"# kept {home}" + (f" and database {dbname}" if created_db else ""))
        else:
            if created_db:
                try:
                    psql_admin(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
                except subprocess.SubprocessError as e:
                    print(f"chaos: could not drop {dbname}: {e}", file=sys.stderr)
            shutil.rmtree(home, ignore_errors=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
