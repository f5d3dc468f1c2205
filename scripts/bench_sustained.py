#!/usr/bin/env python3
"""Sustained load: HTTP submits at a fixed rate while a worker drains (issue "Performance",
target 2). Measures, never asserts (exit 0 unless the setup itself fails).

Per backend (BACKENDS: postgres,sqlite): a fresh database with ORGS orgs (superhero plan),
`velu-cli serve` and one `velu-cli worker --concurrency 10` on the default task catalog.
Then for each rate in RATES (submits per second, ascending): CONNS keep-alive connections
send `echo` jobs of random orgs on a fixed schedule (request i due at start + i/rate; a
connection that falls behind sends at once, so a slow server shows as a lower achieved
rate) for SUSTAINED_SECS seconds; then up to DRAIN seconds for the backlog to start. From the
database: the jobs submitted in the window, how many started, and the submit-to-start
delay (started_at - created_at) p50/p99.

A rate is held when the achieved rate is within 2% of the asked one, every job started,
and submit-to-start p99 < 100 ms. Prints one line per rate and the highest rate held; stops
at the first rate not held. Knobs: VELU_BIN, BACKENDS, ORGS (200), RATES
(250,500,750,1000,1500,2000), SUSTAINED_SECS (60), DRAIN (30), CONNS (32), PGURL, KEEP=1,
WORKER_ARGS (more worker flags), REMOTE=1 (the worker is a platform worker over the server's worker protocol, `worker
--server`, instead of a local one on the database), SECOND_WORKER (flags of a second worker of
the same kind beside the first, e.g. `--tasks echo`: with REMOTE=1, two fleets with different
kinds filters, so the server keeps two lists of ready orgs).
"""

import asyncio
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_http import ROOT, World, env, psql, run  # noqa: E402


async def post(reader_writer, port, key, org):
    reader, writer = reader_writer
    body = json.dumps({"task": "echo", "payload": {"n": 1}})
    writer.write((f"POST /v1/orgs/{org}/jobs HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                  f"X-API-Key: {key}\r\nContent-Type: application/json\r\n"
                  f"Content-Length: {len(body)}\r\n\r\n{body}").encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await reader.readexactly(length)
    return status


async def produce(port, creds, rate, secs, conns):
    total = int(rate * secs)
    start = time.monotonic() + 0.2
    nxt = [0]
    counts = {"ok": 0, "bad": 0}

    async def one():
        rw = await asyncio.open_connection("127.0.0.1", port)
        while True:
            i = nxt[0]
            if i >= total:
                break
            nxt[0] += 1
            due = start + i / rate
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            c = random.choice(creds)
            try:
                status = await post(rw, port, c[0], c[1])
            except (OSError, asyncio.IncompleteReadError):
                counts["bad"] += 1
                rw = await asyncio.open_connection("127.0.0.1", port)
                continue
            counts["ok" if status == 201 else "bad"] += 1
        rw[1].close()

    await asyncio.gather(*(one() for _ in range(conns)))
    # The schedule's span is (total - 1) / rate: the achieved rate over the same span.
    wall = time.monotonic() - start
    return counts, (total - 1) / max(wall, 1e-9)


def delays(world, since_iso):
    """(submitted, started, p50_ms, p99_ms) of the jobs created since `since_iso`."""
    if world.backend == "postgres":
        rows = psql(world.env["VELU_DATABASE_URL"].rsplit("/", 1)[0],
                    "SELECT extract(epoch FROM (started_at - created_at)) * 1000 FROM jobs "
                    f"WHERE created_at >= '{since_iso}Z' AND started_at IS NOT NULL", db=world.db).split()
        started = [float(r) for r in rows]
        submitted = int(psql(world.env["VELU_DATABASE_URL"].rsplit("/", 1)[0],
                             f"SELECT count(*) FROM jobs WHERE created_at >= '{since_iso}Z'",
                             db=world.db))
    else:
        db = sqlite3.connect(os.path.join(world.home, "velu.db"))
        rows = db.execute("SELECT (julianday(started_at) - julianday(created_at)) * 86400000.0 "
                          "FROM jobs WHERE created_at >= ?", (since_iso,)).fetchall()
        db.close()
        submitted = len(rows)
        started = [r[0] for r in rows if r[0] is not None]
    started.sort()
    if not started:
        return submitted, 0, float("nan"), float("nan")
    p = lambda q: started[min(len(started) - 1, int(q * len(started)))]
    return submitted, len(started), p(0.50), p(0.99)


# More flags for the worker, split on spaces (e.g. "--prefetch 100").
WORKER_ARGS = env("WORKER_ARGS", "").split()
# Flags of a second worker beside the first (unset: none).
SECOND_WORKER = os.environ.get("SECOND_WORKER")


def start_worker(world, binary, remote, args=None, name="fleet"):
    """The worker draining the queue: local (`velu-cli worker`, on the database), or with
    `remote` a platform worker over the server's worker protocol (`worker --server`, a
    platform key with `jobs:work`, its own home). `args`: its flags (WORKER_ARGS)."""
    args = WORKER_ARGS if args is None else args
    if not remote:
        return subprocess.Popen([binary, "worker", "--concurrency", "10", *args], env=world.env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
    key = json.loads(run([binary, "key", "create", "--platform", "--name", name,
                          "--scopes", "jobs:work", "-o", "json"], world.env))
    token = key.get("token") or key["key"]["token"]
    home = os.path.join(world.home, f"remote-worker-{name}")
    worker_env = dict(os.environ, VELU_HOME=home, VELU_LOG="warn", VELU_API_KEY=token)
    worker_env.pop("VELU_DATABASE_URL", None)
    return subprocess.Popen([binary, "worker", "--server", f"http://127.0.0.1:{world.port}",
                             "--concurrency", "10", *args], env=worker_env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def main():
    backends = env("BACKENDS", "postgres,sqlite").split(",")
    rates = [int(r) for r in env("RATES", "250,500,750,1000,1500,2000").split(",")]
    orgs, drain, conns = int(env("ORGS", 200)), int(env("DRAIN", 30)), int(env("CONNS", 32))
    secs = int(env("SUSTAINED_SECS", 60))
    pgurl = env("PGURL", "postgres://postgres@127.0.0.1:5432")
    binary = env("VELU_BIN", os.path.join(ROOT, "target/release/velu-cli"))
    keep = env("KEEP", "") == "1"
    remote = env("REMOTE", "") == "1"
    print(f"# {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {os.cpu_count()} cores; "
          f"ORGS={orgs} SUSTAINED_SECS={secs} CONNS={conns}"
          f"{' worker=remote' if remote else ''}"
          f"{f' second_worker={SECOND_WORKER!r}' if SECOND_WORKER is not None else ''}", flush=True)
    for n, backend in enumerate(backends):
        world = World("velu", binary, backend, orgs, pgurl, 100 + n)
        workers = [start_worker(world, binary, remote)]
        if SECOND_WORKER is not None:
            workers.append(start_worker(world, binary, remote, SECOND_WORKER.split(), "second"))
        held = 0
        try:
            time.sleep(2)
            for rate in rates:
                since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - 1))
                counts, achieved = asyncio.run(produce(world.port, world.creds, rate, secs, conns))
                deadline = time.monotonic() + drain
                while True:
                    submitted, started, p50, p99 = delays(world, since)
                    if started >= submitted or time.monotonic() > deadline:
                        break
                    time.sleep(1)
                ok = achieved >= 0.98 * rate and started >= submitted and counts["bad"] == 0 and p99 < 100
                print(f"velu {backend} sustained rate={rate} achieved={achieved:.0f} "
                      f"submitted={submitted} started={started} errors={counts['bad']} "
                      f"submit_to_start_p50_ms={p50:.1f} p99_ms={p99:.1f} held={'yes' if ok else 'no'}",
                      flush=True)
                if not ok:
                    break
                held = rate
            print(f"velu {backend} sustained highest_rate_held={held}", flush=True)
        finally:
            for worker in workers:
                worker.terminate()
            for worker in workers:
                try:
                    worker.wait(10)
                except subprocess.TimeoutExpired:
                    worker.kill()
            world.close(pgurl, keep)


if __name__ == "__main__":
    main()
