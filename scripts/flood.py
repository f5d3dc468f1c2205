#!/usr/bin/env python3
"""Authentication flood: how a real key fares while a flood of wrong secrets hits its kid.

Measures, never asserts (exit 0 unless the setup itself fails). See docs/reliability.md.

1. Starts `velu-cli serve` on 127.0.0.1 with a fresh temporary VELU_HOME (SQLite), or on
   PostgreSQL when VELU_DATABASE_URL is set (then `migrate up` first, and a pepper:
   VELU_API_KEY_PEPPER, generated for the run when unset), and bootstraps an org.
2. Baseline: N requests `GET /v1/whoami` with the org's real builder key, CONC at a time
   on keep-alive connections: p50/p99 latency.
3. Flood: FLOOD_CONNS concurrent connections, for FLOOD_SECS seconds (at most FLOOD_MAX
   requests), each request carrying the real kid with a random wrong secret and a valid
   checksum (so it passes the format check and would cost a lookup and argon2), while the
   real key's latency is measured again the same way and the server's RSS is sampled
   (VmRSS every 50 ms, VmHWM from /proc/PID/status).
4. Prints peak RSS before/during, real-key p50/p99 baseline vs under flood and the ratio,
   and the flood's answers by status (401, 429, 503, others, connection errors).

Knobs (environment): VELU_BIN (target/release/velu-cli), N (1000), CONC (4),
FLOOD_CONNS (500), FLOOD_SECS (10), FLOOD_MAX (2000000), FLOOD_PROCS (1: client
processes sharing FLOOD_CONNS), RAMP_SECS (1), PORT (a free one), VELU_DATABASE_URL,
VELU_API_KEY_PEPPER, KEEP=1 (keep the temporary home and the server log).

The org's plan (superhero) allows 6,000 authenticated requests a minute; warm-up, baseline
and the measurement under flood together stay under that with the default N.
Targets 127.0.0.1 only; every loop is bounded in count and time.
"""

import asyncio
import json
import math
import multiprocessing
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
PREFIX = "velu_k1_"
KID_LEN, SECRET_LEN, CHECKSUM_LEN = 16, 43, 6


def env_int(name, default):
    return int(os.environ.get(name, default))


def env_float(name, default):
    return float(os.environ.get(name, default))


# ---------------------------------------------------------------------------------------
# Keys (velu-core/src/keys/token.rs)
# ---------------------------------------------------------------------------------------


def checksum(body: str) -> str:
    """CRC32 of `body`, as 6 base62 digits, most significant first."""
    n = zlib.crc32(body.encode()) & 0xFFFFFFFF
    out = []
    for _ in range(CHECKSUM_LEN):
        out.append(BASE62[n % 62])
        n //= 62
    return "".join(reversed(out))


def make_key(kid: str, secret: str) -> str:
    body = f"{PREFIX}{kid}_{secret}"
    return body + checksum(body)


def wrong_key(kid: str, rng: random.Random) -> str:
    return make_key(kid, "".join(rng.choice(BASE62) for _ in range(SECRET_LEN)))


# ---------------------------------------------------------------------------------------
# A minimal HTTP/1.1 keep-alive client (stdlib asyncio)
# ---------------------------------------------------------------------------------------


class Conn:
    def __init__(self, port):
        self.port = port
        self.reader = self.writer = None

    async def open(self):
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    def close(self):
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def get(self, path, key):
        """One GET; returns the status. Reopens the connection when needed."""
        if self.writer is None:
            await self.open()
        req = (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            f"X-API-Key: {key}\r\nAccept: application/json\r\n\r\n"
        ).encode()
        self.writer.write(req)
        await self.writer.drain()
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip().lower()
        if "content-length" in headers:
            await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        if headers.get("connection") == "close":
            self.close()
        return status


def percentile(sorted_values, p):
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, math.ceil(p / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


async def measure(port, key, n, conc, deadline):
    """n requests with `key`, `conc` connections; stops early at `deadline` (monotonic)."""
    latencies, statuses, errors = [], {}, 0
    remaining = [n]

    async def one_conn():
        nonlocal errors
        conn = Conn(port)
        while remaining[0] > 0 and time.monotonic() < deadline:
            remaining[0] -= 1
            t0 = time.perf_counter()
            try:
                status = await asyncio.wait_for(conn.get("/v1/whoami", key), 10)
            except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError):
                errors += 1
                conn.close()
                await asyncio.sleep(0.01)
                continue
            latencies.append((time.perf_counter() - t0) * 1000)
            statuses[status] = statuses.get(status, 0) + 1
        conn.close()

    t0 = time.monotonic()
    await asyncio.gather(*(one_conn() for _ in range(conc)))
    wall = time.monotonic() - t0
    latencies.sort()
    return {
        "requests": len(latencies),
        "wall_s": round(wall, 3),
        "req_per_s": round(len(latencies) / wall, 1) if wall > 0 else 0,
        "p50_ms": round(percentile(latencies, 50), 3),
        "p99_ms": round(percentile(latencies, 99), 3),
        "max_ms": round(latencies[-1], 3) if latencies else float("nan"),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "errors": errors,
    }


# ---------------------------------------------------------------------------------------
# The flood (a separate process, so its CPU is not the measurer's)
# ---------------------------------------------------------------------------------------


async def flood_async(port, kid, conns, secs, max_requests, seed):
    rng = random.Random(seed)
    deadline = time.monotonic() + secs
    counts = {"sent": 0, "errors": 0}
    budget = [max_requests]

    async def one_conn():
        conn = Conn(port)
        while budget[0] > 0 and time.monotonic() < deadline:
            budget[0] -= 1
            counts["sent"] += 1
            try:
                status = await asyncio.wait_for(
                    conn.get("/v1/whoami", wrong_key(kid, rng)),
                    max(0.1, deadline - time.monotonic() + 5),
                )
            except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError):
                counts["errors"] += 1
                conn.close()
                await asyncio.sleep(0.05)
                continue
            counts[str(status)] = counts.get(str(status), 0) + 1
        conn.close()

    t0 = time.monotonic()
    await asyncio.gather(*(one_conn() for _ in range(conns)))
    counts["wall_s"] = round(time.monotonic() - t0, 3)
    return counts


def flood_process(port, kid, conns, secs, max_requests, seed, out):
    try:
        out.put(asyncio.run(flood_async(port, kid, conns, secs, max_requests, seed)))
    except Exception as e:  # reported, not raised: the parent prints it
        out.put({"failed": repr(e)})


# ---------------------------------------------------------------------------------------
# The server's memory
# ---------------------------------------------------------------------------------------


def proc_status_kib(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class RssSampler(threading.Thread):
    """Samples VmRSS every `period` seconds; `peak()` since the last `reset()`."""

    def __init__(self, pid, period=0.05):
        super().__init__(daemon=True)
        self.pid, self.period = pid, period
        self.max_rss, self.samples = 0, 0
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def run(self):
        while not self.stop.is_set():
            rss = proc_status_kib(self.pid, "VmRSS")
            if rss is not None:
                with self.lock:
                    self.max_rss = max(self.max_rss, rss)
                    self.samples += 1
            self.stop.wait(self.period)

    def reset(self):
        with self.lock:
            self.max_rss, self.samples = 0, 0

    def peak(self):
        with self.lock:
            return self.max_rss, self.samples


# ---------------------------------------------------------------------------------------
# Setup and the run
# ---------------------------------------------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(binary, env, *args):
    res = subprocess.run([binary, *args], env=env, capture_output=True, text=True, timeout=300)
    if res.returncode != 0:
        sys.exit(f"flood: `velu-cli {' '.join(args)}` failed ({res.returncode}): {res.stderr.strip()}")
    return res.stdout


def wait_ready(port, proc, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(f"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def mib(kib):
    return "n/a" if kib is None else f"{kib / 1024:.1f} MiB"


def main():
    binary = os.environ.get("VELU_BIN", os.path.join(ROOT, "target/release/velu-cli"))
    if not os.access(binary, os.X_OK):
        sys.exit(f"flood: {binary} not found; build it (cargo build --release -p velu-cli) or set VELU_BIN")
    n, conc = env_int("N", 1000), env_int("CONC", 4)
    flood_conns, flood_secs = env_int("FLOOD_CONNS", 500), env_float("FLOOD_SECS", 10)
    flood_max, flood_procs = env_int("FLOOD_MAX", 2_000_000), max(1, env_int("FLOOD_PROCS", 1))
    ramp = env_float("RAMP_SECS", 1)
    port = env_int("PORT", 0) or free_port()

    home = tempfile.mkdtemp(prefix="velu-flood-")
    env = dict(os.environ, VELU_HOME=home)
    env.setdefault("VELU_LOG", "warn")
    pg = bool(os.environ.get("VELU_DATABASE_URL"))
    if pg:
        env.setdefault("VELU_API_KEY_PEPPER", secrets.token_urlsafe(32))
        cli(binary, env, "migrate", "up")
    slug = f"flood-{os.getpid()}"
    boot = json.loads(cli(binary, env, "org", "bootstrap", "--name", "Flood", "--slug", slug,
                          "--plan", "superhero", "-o", "json"))
    builder = boot["keys"]["builder"]
    real_key, kid = builder["token"], builder["key"]["id"]
    assert real_key.startswith(f"{PREFIX}{kid}_"), "the token carries its kid"
    assert make_key(kid, real_key[len(PREFIX) + KID_LEN + 1:][:SECRET_LEN]) == real_key, \
        "checksum as in token.rs"

    log = open(os.path.join(home, "serve.log"), "w")
    server = subprocess.Popen([binary, "serve", "--addr", f"127.0.0.1:{port}"], env=env,
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    sampler = None
    try:
        if not wait_ready(port, server):
            log.flush()
            sys.exit(f"flood: server did not become ready; log:\n{open(log.name).read()[-2000:]}")
        pid = server.pid
        sampler = RssSampler(pid)
        sampler.start()

        # Warm-up: the first request pays argon2 once; later ones hit the cache.
        warm = asyncio.run(measure(port, real_key, 50, 2, time.monotonic() + 60))
        hwm_start, rss_start = proc_status_kib(pid, "VmHWM"), proc_status_kib(pid, "VmRSS")

        sampler.reset()
        base = asyncio.run(measure(port, real_key, n, conc, time.monotonic() + 300))
        base_rss_peak, _ = sampler.peak()
        hwm_before = proc_status_kib(pid, "VmHWM")

        # Flood, and measure the real key during it.
        sampler.reset()
        ctx = multiprocessing.get_context("fork")
        out = ctx.Queue()
        per_proc = [flood_conns // flood_procs + (1 if i < flood_conns % flood_procs else 0)
                    for i in range(flood_procs)]
        procs = [ctx.Process(target=flood_process,
                             args=(port, kid, c, flood_secs, flood_max // flood_procs, i, out))
                 for i, c in enumerate(per_proc) if c > 0]
        t_flood = time.monotonic()
        for p in procs:
            p.start()
        time.sleep(min(ramp, flood_secs / 2))
        during = asyncio.run(measure(port, real_key, n, conc, t_flood + flood_secs - 0.2))
        results = [out.get(timeout=flood_secs + 120) for _ in procs]
        for p in procs:
            p.join(timeout=30)
        flood_rss_peak, samples = sampler.peak()
        hwm_after = proc_status_kib(pid, "VmHWM")
        after = asyncio.run(measure(port, real_key, 20, 1, time.monotonic() + 60))
        alive = server.poll() is None
    finally:
        if sampler:
            sampler.stop.set()
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        log.close()

    flood = {"sent": 0, "errors": 0, "wall_s": 0.0}
    for r in results:
        if "failed" in r:
            print(f"flood process failed: {r['failed']}", file=sys.stderr)
            continue
        for k, v in r.items():
            flood[k] = max(flood[k], v) if k == "wall_s" else flood.get(k, 0) + v
    answered = sum(v for k, v in flood.items() if k.isdigit())
    others = {k: v for k, v in flood.items() if k.isdigit() and k not in ("401", "429", "503")}
    ratio = lambda a, b: (a / b) if b else float("nan")  # noqa: E731

    print(f"# flood {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}, {os.cpu_count()} cores, "
          f"{'PostgreSQL' if pg else 'SQLite'}, {os.path.relpath(binary, ROOT)}")
    print(f"# N={n} CONC={conc} FLOOD_CONNS={flood_conns} FLOOD_SECS={flood_secs} "
          f"FLOOD_PROCS={flood_procs}")
    print(f"server RSS        after warm-up {mib(rss_start)} (VmHWM {mib(hwm_start)})")
    print(f"                  baseline peak VmRSS {mib(base_rss_peak)}; VmHWM before flood {mib(hwm_before)}")
    print(f"                  flood peak VmRSS {mib(flood_rss_peak)} ({samples} samples); "
          f"VmHWM after flood {mib(hwm_after)}")
    print(f"real key baseline p50 {base['p50_ms']:.2f} ms  p99 {base['p99_ms']:.2f} ms  "
          f"({base['requests']} req, {base['req_per_s']} req/s, statuses {base['statuses']}, "
          f"errors {base['errors']})")
    print(f"real key in flood p50 {during['p50_ms']:.2f} ms  p99 {during['p99_ms']:.2f} ms  "
          f"({during['requests']} req, {during['req_per_s']} req/s, statuses {during['statuses']}, "
          f"errors {during['errors']})")
    if during["requests"] < 100:
        print(f"note              only {during['requests']} real-key samples under flood: "
              f"p99 is rough; raise FLOOD_SECS")
    print(f"ratio (flood/baseline) p50 {ratio(during['p50_ms'], base['p50_ms']):.2f}x  "
          f"p99 {ratio(during['p99_ms'], base['p99_ms']):.2f}x")
    print(f"flood             sent {flood['sent']} in {flood['wall_s']} s "
          f"({ratio(answered, flood['wall_s']):.0f} answered/s): 401 {flood.get('401', 0)}, "
          f"429 {flood.get('429', 0)}, 503 {flood.get('503', 0)}, other {others or 0}, "
          f"connection errors {flood['errors']}")
    print(f"after the flood   real key statuses {after['statuses']}, errors {after['errors']}; "
          f"server {'alive' if alive else 'DIED'}")
    print("# json: " + json.dumps({
        "backend": "postgres" if pg else "sqlite", "n": n, "conc": conc,
        "flood_conns": flood_conns, "flood_secs": flood_secs,
        "rss_kib": {"start": rss_start, "hwm_start": hwm_start, "baseline_peak": base_rss_peak,
                    "hwm_before_flood": hwm_before, "flood_peak": flood_rss_peak,
                    "hwm_after_flood": hwm_after},
        "baseline": base, "during_flood": during, "after_flood": after,
        "flood": flood, "server_alive": alive,
    }))
    if os.environ.get("KEEP") == "1":
        print(f"# kept {home} (serve.log inside)")
    else:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
