"""Throughput and added latency of the real mock-meta-api server on one core.

    uv run python benchmarks/mock_throughput.py            # full run (~1 min)
    uv run python benchmarks/mock_throughput.py --quick    # smoke run (~15 s)

What it does, in order (see benchmarks/README.md for the why):

1. starts `mock-meta-api --host 127.0.0.1 --port 0` pinned to one core
   (`taskset -c SERVER_CPU`), waits for its ready line and /_mock/health
   (deadline, no fixed sleeps), and pins itself and its load to CLIENT_CPU;
2. switches the throughput and pair-rate limits off (PATCH /_mock/behaviours),
   checks that latency is "none" and no failures are configured;
3. max throughput: closed loop, `wrk` (or the built-in Python client) on
   N keep-alive connections, a warm-up, a reset, then the measured run;
4. added latency: open loop at a fixed offered rate (default 3,000 req/s),
   built-in asyncio/uvloop client, latency measured from each request's
   scheduled send time (no coordinated omission) and from its actual write;
5. after every measured run: the journal must hold exactly the requests the
   client saw answered (wrk: up to one in-flight request per connection
   more), every entry answered HTTP 200 / outcome "accepted", none dropped;
6. prints a table, writes JSON to benchmarks/results/, stops the server by PID.

Exit status: 0 all checks and targets met, 1 a target missed, 2 a check failed
(errors, journal mismatch) or the run could not be done.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import os
import platform
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import httptools
import httpx

HOST = "127.0.0.1"  # the only address any load or admin request goes to
PHONE_NUMBER_ID = "106540352242922"
TOKEN = "mock-access-token"
SEND_PATH = f"/v21.0/{PHONE_NUMBER_ID}/messages"
RECIPIENT = "15550100200"
READY = re.compile(r"mock-meta-api listening on (http://127\.0\.0\.1:(\d+))")
REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
TARGET_RPS = 3000.0
TARGET_P99_MS = 10.0
NOISE_LIMIT = 0.05  # share of the server core used by others before a run is flagged
TICK_S = 0.001  # the open-loop scheduler's wake-up period
# Hard bounds on every load loop, whatever the options say.
MAX_DURATION_S = 120.0
MAX_REQUESTS = 2_000_000


def body_for(correlation: str) -> bytes:
    return (
        b'{"messaging_product":"whatsapp","to":"' + RECIPIENT.encode() + b'","type":"text",'
        b'"text":{"body":"hello"},"biz_opaque_callback_data":"' + correlation.encode() + b'"}'
    )


def request_bytes(port: int, correlation: str) -> bytes:
    body = body_for(correlation)
    head = (
        f"POST {SEND_PATH} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
        f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list (NaN when empty)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def latency_summary_ms(seconds: list[float]) -> dict[str, float]:
    values = sorted(seconds)
    ms = {f"p{p:g}": percentile(values, p) * 1e3 for p in (50, 90, 99, 99.9)}
    ms["max"] = values[-1] * 1e3 if values else math.nan
    ms["mean"] = sum(values) / len(values) * 1e3 if values else math.nan
    return ms


# -- the server ----------------------------------------------------------------


@dataclass
class Server:
    popen: subprocess.Popen[str]
    url: str
    port: int
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def cpu_seconds(self) -> float:
        """utime + stime of the server process so far (from /proc)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def core_jiffies(cpu: int) -> tuple[int, int]:
    """(busy, steal) clock ticks of one core so far, from /proc/stat."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{cpu} "):
            user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, line.split()[1:9])
            return user + nice + system + irq + softirq, steal
    raise RuntimeError(f"cpu{cpu} not in /proc/stat")


def wait_quiet(cpus: list[int], limit: float, settle_s: float, timeout_s: float) -> float:
    """Wait until each core in `cpus` was busy less than `limit` for `settle_s` in a row.

    Returns the seconds waited, or -1 if the deadline passed first (the run then
    goes ahead and its noise column shows the interference).
    """
    start = time.monotonic()
    window = 0.5
    quiet_since: float | None = None
    tick = os.sysconf("SC_CLK_TCK")
    before = {cpu: sum(core_jiffies(cpu)) for cpu in cpus}
    while time.monotonic() - start < timeout_s:
        time.sleep(window)  # one sampling window of /proc/stat, bounded by timeout_s
        after = {cpu: sum(core_jiffies(cpu)) for cpu in cpus}
        busiest = max((after[c] - before[c]) / tick / window for c in cpus)
        before = after
        now = time.monotonic()
        if busiest >= limit:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = now - window
        if quiet_since is not None and now - quiet_since >= settle_s:
            return now - start
    return -1.0


@dataclass
class CpuWatch:
    """How busy the server, its core and the load generator's core were during one run.

    `server_core_other` is the share of the server's core used by anything but the
    server (other processes, interrupts), `*_steal` the share the hypervisor took:
    both should be near 0 for the figures to mean anything.
    """

    server: Server
    server_cpu: int
    client_cpu: int
    started: float = 0.0
    marks: tuple[float, tuple[int, int], tuple[int, int]] | None = None

    def __enter__(self) -> CpuWatch:
        self.started = time.perf_counter()
        self.marks = (
            self.server.cpu_seconds(),
            core_jiffies(self.server_cpu),
            core_jiffies(self.client_cpu),
        )
        return self

    def __exit__(self, *exc: object) -> None:
        self.result = self.read()

    def read(self) -> dict[str, float]:
        assert self.marks is not None
        wall = time.perf_counter() - self.started
        tick = os.sysconf("SC_CLK_TCK")
        server_s = self.server.cpu_seconds() - self.marks[0]
        (s_busy0, s_steal0), (s_busy1, s_steal1) = self.marks[1], core_jiffies(self.server_cpu)
        (c_busy0, c_steal0), (c_busy1, c_steal1) = self.marks[2], core_jiffies(self.client_cpu)
        s_busy, s_steal = s_busy1 - s_busy0, s_steal1 - s_steal0
        c_busy, c_steal = c_busy1 - c_busy0, c_steal1 - c_steal0
        return {
            "server_cpu_util": server_s / wall,
            "server_core_other": max(0.0, s_busy / tick - server_s) / wall,
            "server_core_steal": s_steal / tick / wall,
            "client_core_busy": c_busy / tick / wall,
            "client_core_steal": c_steal / tick / wall,
        }


def server_command(port: int) -> list[str]:
    script = Path(sys.executable).parent / "mock-meta-api"
    if script.exists():
        return [str(script), "--host", HOST, "--port", str(port)]
    code = "from mock_meta_api.cli import main; main()"
    return [sys.executable, "-c", code, "--host", HOST, "--port", str(port)]


def start_server(cpu: int, log: Path, deadline_s: float) -> Server:
    """Start the server pinned to `cpu`; return once it printed its ready line."""
    argv = ["taskset", "-c", str(cpu), *server_command(0)]
    with log.open("w") as err:
        popen = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=err,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,  # Ctrl-C reaches us; we stop it by PID
        )
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert popen.stdout is not None
        with contextlib.suppress(ValueError, OSError):
            for line in popen.stdout:
                lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    server = Server(popen, "", 0, log)
    end = time.monotonic() + deadline_s
    try:
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"no ready line from the server within {deadline_s} s")
            try:
                line = lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise RuntimeError(
                    f"server exited ({popen.wait()}) before it was ready:\n{log.read_text()}"
                )
            if match := READY.search(line):
                server.url, server.port = match.group(1), int(match.group(2))
                return server
    except BaseException:
        stop_server(server)
        raise


def stop_server(server: Server, grace_s: float = 5.0) -> int | None:
    """SIGTERM by PID, wait, then SIGKILL."""
    popen = server.popen
    if popen.poll() is None:
        popen.terminate()
        try:
            popen.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait(timeout=grace_s)
    if popen.stdout is not None:
        popen.stdout.close()
    return popen.returncode


def wait_healthy(admin: httpx.Client, deadline_s: float) -> dict[str, Any]:
    end = time.monotonic() + deadline_s
    while True:
        try:
            answer = admin.get("/_mock/health", timeout=max(0.1, end - time.monotonic()))
            if answer.status_code == 200 and answer.json().get("status") == "ok":
                return answer.json()
        except httpx.TransportError:
            pass
        if time.monotonic() >= end:
            raise RuntimeError(f"/_mock/health not ok within {deadline_s} s")
        time.sleep(0.05)  # poll interval, bounded by the deadline above


def configure(admin: httpx.Client) -> dict[str, Any]:
    """Rate limits off; verify zero latency, no failures, no webhooks."""
    answer = admin.patch(
        "/_mock/behaviours",
        json={"throughput": {"enabled": False}, "pair_rate": {"enabled": False}},
    )
    answer.raise_for_status()
    behaviours = answer.json()
    problems = []
    if behaviours["throughput"]["enabled"] or behaviours["pair_rate"]["enabled"]:
        problems.append("rate limits still enabled")
    if (
        behaviours["latency"]["default"]["model"] != "none"
        or behaviours["latency"]["per_phone_number"]
    ):
        problems.append(f"latency configured: {behaviours['latency']}")
    failures = behaviours["failures"]
    if failures["random"] or failures["scripted"] or failures["outages"]:
        problems.append(f"failures configured: {failures}")
    if behaviours["webhooks"]["url"] is not None:
        problems.append("status webhooks are on")
    if problems:
        raise RuntimeError("; ".join(problems))
    return behaviours


def reset(admin: httpx.Client) -> None:
    admin.post("/_mock/reset").raise_for_status()
    health = admin.get("/_mock/health").json()
    if health["journal_entries"] != 0 or health["send_attempts"] != 0:
        raise RuntimeError(f"reset did not clear the journal: {health}")


@dataclass
class JournalCheck:
    health_entries: int
    health_attempts: int
    journal_count: int
    dropped: int
    accepted_200: int
    other: dict[str, int]
    correlations_unique: bool
    client_ok: int
    max_extra: int
    passed: bool
    problems: list[str]


def check_journal(
    admin: httpx.Client, client_ok: int, client_errors: int, prefix: str, max_extra: int
) -> JournalCheck:
    """The journal must match what the client saw: all 200/accepted, counts equal.

    `max_extra`: requests the server may have handled but the client stopped
    counting (wrk stops at its deadline with one request per connection in flight).
    """
    health = admin.get("/_mock/health").json()
    page = admin.get("/_mock/journal", timeout=120).json()
    entries = page["entries"]
    other: dict[str, int] = {}
    accepted = 0
    correlations = set()
    for entry in entries:
        if entry["http_status"] == 200 and entry["outcome"] == "accepted" and entry["wamid"]:
            accepted += 1
        else:
            key = f"{entry['http_status']}/{entry['outcome']}/{entry['error_code']}"
            other[key] = other.get(key, 0) + 1
        correlations.add(entry["biz_opaque_callback_data"])
    problems = []
    if client_errors:
        problems.append(f"client saw {client_errors} errors / non-200 answers")
    if other:
        problems.append(f"journal has non-accepted entries: {other}")
    if page["dropped"]:
        problems.append(f"journal dropped {page['dropped']} entries")
    if not (health["journal_entries"] == page["count"] == len(entries)):
        problems.append("health and journal disagree on the entry count")
    if not client_ok <= page["count"] <= client_ok + max_extra:
        problems.append(
            f"journal has {page['count']} entries, client counted {client_ok} OK "
            f"(allowed extra in flight: {max_extra})"
        )
    unique = len(correlations) == len(entries)
    if not unique:
        problems.append("correlation ids repeat: some request was journaled twice")
    if any(not str(c).startswith(prefix) for c in correlations):
        problems.append(f"journal holds requests not from this run (prefix {prefix!r})")
    return JournalCheck(
        health_entries=health["journal_entries"],
        health_attempts=health["send_attempts"],
        journal_count=page["count"],
        dropped=page["dropped"],
        accepted_200=accepted,
        other=other,
        correlations_unique=unique,
        client_ok=client_ok,
        max_extra=max_extra,
        passed=not problems,
        problems=problems,
    )


# -- wrk (closed loop) ----------------------------------------------------------

WRK_LUA = r"""
local path, token, recipient, prefix = "@PATH@", "@TOKEN@", "@RECIPIENT@", "@PREFIX@"
local threads, next_id = {}, 0
function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end
function init(args)
  n, ok, bad = 0, 0, 0
  hdrs = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}
end
function request()
  n = n + 1
  local body = '{"messaging_product":"whatsapp","to":"' .. recipient ..
    '","type":"text","text":{"body":"hello"},"biz_opaque_callback_data":"' ..
    prefix .. tid .. "-" .. n .. '"}'
  return wrk.format("POST", path, hdrs, body)
end
function response(status, headers, body)
  if status == 200 then ok = ok + 1 else bad = bad + 1 end
end
function done(summary, latency, requests)
  local ok_total, bad_total = 0, 0
  for _, t in ipairs(threads) do
    ok_total = ok_total + t:get("ok")
    bad_total = bad_total + t:get("bad")
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"ok":%d,"non_200":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"p99_9_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, ok_total, bad_total,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean))
end
"""


def run_wrk(
    port: int, cpu: int, connections: int, duration_s: float, prefix: str, workdir: Path
) -> dict[str, Any]:
    script = workdir / f"{prefix.rstrip('-')}.lua"
    lua = WRK_LUA
    for key, value in {
        "@PATH@": SEND_PATH,
        "@TOKEN@": TOKEN,
        "@RECIPIENT@": RECIPIENT,
        "@PREFIX@": prefix,
    }.items():
        lua = lua.replace(key, value)
    script.write_text(lua)
    seconds = max(1, round(duration_s))
    argv = ["taskset", "-c", str(cpu), "wrk", "-t1", f"-c{connections}", f"-d{seconds}s"]
    argv += ["--timeout", "5s", "-s", str(script), f"http://{HOST}:{port}{SEND_PATH}"]
    popen = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        out, _ = popen.communicate(timeout=seconds + 30)
    finally:
        if popen.poll() is None:  # Ctrl-C or timeout: stop it by PID
            popen.kill()
            popen.wait()
    match = re.search(r"^WRK_JSON (.*)$", out, re.MULTILINE)
    if popen.returncode != 0 or match is None:
        raise RuntimeError(f"wrk failed ({popen.returncode}):\n{out}")
    raw = json.loads(match.group(1))
    errors = raw["connect"] + raw["read"] + raw["write"] + raw["timeout"] + raw["non_200"]
    duration = raw["duration_us"] / 1e6
    return {
        "tool": "wrk",
        "connections": connections,
        "duration_s": duration,
        "requests": raw["requests"],
        "ok": raw["ok"],
        "errors": errors,
        "error_detail": {k: raw[k] for k in ("connect", "read", "write", "timeout", "non_200")},
        "rps": raw["ok"] / duration,
        "latency_ms": {
            "p50": raw["p50_us"] / 1e3,
            "p90": raw["p90_us"] / 1e3,
            "p99": raw["p99_us"] / 1e3,
            "p99.9": raw["p99_9_us"] / 1e3,
            "max": raw["max_us"] / 1e3,
            "mean": raw["mean_us"] / 1e3,
        },
    }


# -- the built-in asyncio client (open loop and closed loop) --------------------


class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, one request in flight at a time."""

    def __init__(self, on_answer: Any) -> None:
        self.on_answer = on_answer  # (connection, status or None on failure)
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.busy = False
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._fail()

    def on_message_complete(self) -> None:
        self.busy = False
        self.on_answer(self, self.parser.get_status_code())

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)
        self._fail()

    def _fail(self) -> None:
        if self.busy:
            self.busy = False
            self.on_answer(self, None)
        if self.transport is not None:
            self.transport.abort()

    def send(self, data: bytes) -> None:
        assert self.transport is not None
        self.busy = True
        self.transport.write(data)


@dataclass
class ClientRun:
    mode: str
    connections: int
    requests: int = 0
    ok: int = 0
    errors: int = 0
    unanswered: int = 0
    started: float = 0.0
    finished: float = 0.0
    offered_rps: float | None = None
    # Seconds per answered request: from scheduled start (open loop) and from the write.
    from_schedule: list[float] = field(default_factory=list)
    from_write: list[float] = field(default_factory=list)
    client_cpu_s: float = 0.0
    max_backlog: int = 0


async def open_connections(port: int, count: int, on_answer: Any) -> list[Connection]:
    loop = asyncio.get_running_loop()
    conns = []
    for _ in range(count):
        _, proto = await asyncio.wait_for(
            loop.create_connection(lambda: Connection(on_answer), HOST, port), timeout=5
        )
        conns.append(proto)
    return conns


async def close_connections(conns: list[Connection]) -> None:
    for conn in conns:
        if conn.transport is not None:
            conn.transport.close()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*(c.closed for c in conns)), timeout=5)


async def open_loop(
    port: int, rate: float, duration_s: float, connections: int, prefix: str
) -> ClientRun:
    """Send rate*duration requests on a fixed schedule over a pool of connections.

    A request whose time has come while every connection is busy waits in a
    backlog; its latency still counts from its scheduled time.
    """
    total = min(MAX_REQUESTS, round(rate * duration_s))
    run = ClientRun("open-loop", connections, offered_rps=rate)
    perf = time.perf_counter
    in_flight: dict[Connection, tuple[float, float]] = {}
    idle: deque[Connection] = deque()
    backlog: deque[tuple[int, float]] = deque()
    all_done = asyncio.get_running_loop().create_future()
    answered = 0

    def dispatch(conn: Connection, index: int, scheduled: float) -> None:
        now = perf()
        in_flight[conn] = (scheduled, now)
        conn.send(request_bytes(port, f"{prefix}{index}"))

    def on_answer(conn: Connection, status: int | None) -> None:
        nonlocal answered
        now = perf()
        scheduled, written = in_flight.pop(conn)
        answered += 1
        if status == 200:
            run.ok += 1
            run.from_schedule.append(now - scheduled)
            run.from_write.append(now - written)
        else:
            run.errors += 1
        if status is not None and not conn.closed.done():
            if backlog:
                dispatch(conn, *backlog.popleft())
            else:
                idle.append(conn)
        if answered == total and not all_done.done():
            all_done.set_result(None)

    conns = await open_connections(port, connections, on_answer)
    idle.extend(conns)
    cpu0 = time.process_time()
    start = perf() + 0.01
    run.started = start
    sent = 0
    try:
        while sent < total:
            due = min(total, math.floor((perf() - start) * rate) + 1)
            while sent < due:
                scheduled = start + sent / rate
                if idle:
                    dispatch(idle.popleft(), sent, scheduled)
                else:
                    backlog.append((sent, scheduled))
                    run.max_backlog = max(run.max_backlog, len(backlog))
                sent += 1
            # libuv timers have 1 ms resolution: sleep at least that long (a shorter
            # sleep spins the loop, and a busy load core makes the kernel move other
            # work onto the server's core); requests due meanwhile go out together.
            await asyncio.sleep(max(TICK_S, start + sent / rate - perf()))
        run.requests = sent
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_done, timeout=30)
    finally:
        run.finished = perf()
        run.client_cpu_s = time.process_time() - cpu0
        run.unanswered = run.requests - answered + len(backlog)
        await close_connections(conns)
    return run


async def closed_loop(port: int, duration_s: float, connections: int, prefix: str) -> ClientRun:
    """Each connection sends its next request as soon as the last one is answered."""
    run = ClientRun("closed-loop", connections)
    perf = time.perf_counter
    written_at: dict[Connection, float] = {}
    counter = 0
    stop_at = 0.0
    all_done = asyncio.get_running_loop().create_future()

    def dispatch(conn: Connection) -> None:
        nonlocal counter
        written_at[conn] = perf()
        conn.send(request_bytes(port, f"{prefix}{counter}"))
        counter += 1

    def on_answer(conn: Connection, status: int | None) -> None:
        now = perf()
        latency = now - written_at.pop(conn)
        if status == 200:
            run.ok += 1
            run.from_write.append(latency)
        else:
            run.errors += 1
        if status is not None and now < stop_at and counter < MAX_REQUESTS:
            dispatch(conn)
        elif not written_at and not all_done.done():
            all_done.set_result(None)

    conns = await open_connections(port, connections, on_answer)
    cpu0 = time.process_time()
    run.started = perf()
    stop_at = run.started + duration_s
    try:
        for conn in conns:
            dispatch(conn)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_done, timeout=duration_s + 30)
    finally:
        run.finished = perf()
        run.requests = counter
        run.client_cpu_s = time.process_time() - cpu0
        run.unanswered = len(written_at)
        await close_connections(conns)
    run.from_schedule = run.from_write
    return run


def run_client(coro: Any) -> ClientRun:
    """Run one client coroutine on uvloop with the collector paused (no client GC stalls)."""
    import uvloop

    gc.collect()
    gc.disable()
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(coro)
    finally:
        gc.enable()


def summarize_client(run: ClientRun) -> dict[str, Any]:
    elapsed = run.finished - run.started
    result: dict[str, Any] = {
        "tool": "python-uvloop",
        "mode": run.mode,
        "connections": run.connections,
        "duration_s": elapsed,
        "requests": run.requests,
        "ok": run.ok,
        "errors": run.errors + run.unanswered,
        "error_detail": {"non_200_or_failed": run.errors, "unanswered": run.unanswered},
        "rps": run.ok / elapsed if elapsed > 0 else math.nan,
        "latency_ms": latency_summary_ms(run.from_write),
        "client_cpu_s": run.client_cpu_s,
    }
    if run.mode == "open-loop":
        result["offered_rps"] = run.offered_rps
        result["latency_from_schedule_ms"] = latency_summary_ms(run.from_schedule)
        result["max_backlog"] = run.max_backlog
    return result


# -- environment ------------------------------------------------------------------


def environment(server: Server | None) -> dict[str, Any]:
    cpu_model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    versions = {}
    for name in ("fastapi", "starlette", "uvicorn", "pydantic", "uvloop", "httptools", "orjson"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    wrk = shutil.which("wrk")
    wrk_version = None
    if wrk:
        probe = subprocess.run([wrk, "--version"], capture_output=True, text=True, timeout=5)
        wrk_version = (probe.stdout + probe.stderr).splitlines()[0] if probe else None
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        timeout=5,
        cwd=REPO,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "mock_meta_api"],
        capture_output=True,
        text=True,
        timeout=5,
        cwd=REPO,
    ).stdout.strip()
    return {
        "cpu_model": cpu_model,
        "cpus_online": os.cpu_count(),
        "server_affinity": sorted(os.sched_getaffinity(server.pid)) if server else None,
        "client_affinity": sorted(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "versions": versions,
        "wrk": wrk_version,
        "git_commit": commit or None,
        "mock_meta_api_modified": bool(dirty),
    }


# -- the run ------------------------------------------------------------------------


def quiet(args: argparse.Namespace) -> float | None:
    """Before a measured run: wait (bounded) for both cores to be idle."""
    if args.quiet_timeout <= 0:
        return None
    waited = wait_quiet([args.server_cpu, args.client_cpu], 0.05, 2.0, args.quiet_timeout)
    if waited < 0:
        print(f"  machine not quiet after {args.quiet_timeout:g} s; measuring anyway", flush=True)
    return waited


def measure_throughput(
    args: argparse.Namespace, server: Server, admin: httpx.Client, workdir: Path
) -> dict[str, Any]:
    use_wrk = args.generator == "wrk" or (args.generator == "auto" and shutil.which("wrk"))
    if args.generator == "wrk" and not shutil.which("wrk"):
        raise RuntimeError("wrk not found: apt-get install -y wrk (or --generator python)")

    def load(seconds: float, prefix: str) -> dict[str, Any]:
        if use_wrk:
            return run_wrk(server.port, args.client_cpu, args.connections, seconds, prefix, workdir)
        run = run_client(closed_loop(server.port, seconds, args.connections, prefix))
        return summarize_client(run)

    load(args.warmup, "warm-")
    reset(admin)
    waited = quiet(args)
    with CpuWatch(server, args.server_cpu, args.client_cpu) as watch:
        result = load(args.duration, "tp-")
    result |= watch.result | {"waited_for_quiet_s": waited}
    check = check_journal(admin, result["ok"], result["errors"], "tp-", args.connections)
    result["journal"] = asdict(check)
    return result


def measure_fixed_rate(
    args: argparse.Namespace, server: Server, admin: httpx.Client, rate: float
) -> dict[str, Any]:
    run_client(open_loop(server.port, rate, args.warmup, args.rate_connections, "warm-"))
    reset(admin)
    waited = quiet(args)
    with CpuWatch(server, args.server_cpu, args.client_cpu) as watch:
        run = run_client(
            open_loop(server.port, rate, args.rate_duration, args.rate_connections, "rate-")
        )
    result = summarize_client(run) | watch.result | {"waited_for_quiet_s": waited}
    check = check_journal(admin, run.ok, run.errors + run.unanswered, "rate-", 0)
    if check.journal_count != run.requests:
        check.passed = False
        check.problems.append(f"sent {run.requests}, journal holds {check.journal_count}")
    result["journal"] = asdict(check)
    return result


def fmt(value: float | None, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def noise(run: dict[str, Any]) -> float:
    return run["server_core_other"] + run["server_core_steal"]


def table_row(label: str, run: dict[str, Any], lat: dict[str, float]) -> tuple[str, ...]:
    return (
        label,
        fmt(run["rps"], 0),
        fmt(lat["p50"]),
        fmt(lat["p90"]),
        fmt(lat["p99"]),
        fmt(lat["max"]),
        str(run["errors"]),
        f"{run['journal']['journal_count']:,}",
        f"{run['server_cpu_util']:.0%}",
        f"{noise(run):.0%}",
    )


def print_table(results: dict[str, Any]) -> None:
    rows = []
    for i, tp in enumerate(results["throughput"], 1):
        label = f"#{i} max throughput ({tp['tool']}, closed loop, {tp['connections']} conn)"
        rows.append(table_row(label, tp, tp["latency_ms"]))
    for i, fr in enumerate(results["fixed_rate"], 1):
        head = f"#{i} fixed {fr['offered_rps']:,.0f}/s (open loop, {fr['connections']} conn)"
        rows.append(table_row(f"{head}, from schedule", fr, fr["latency_from_schedule_ms"]))
        rows.append(table_row(f"{head}, from write", fr, fr["latency_ms"]))
    head = ("run", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors", "journal")
    head += ("srv CPU", "noise")
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    for i, row in enumerate([head, *rows]):
        print(
            "  ".join(
                str(c).ljust(w) if j == 0 else str(c).rjust(w)
                for j, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if i == 0:
            print("  ".join("-" * w for w in widths))
    env = results["environment"]
    print(
        f"\nCPU {env['cpu_model']}; server on core(s) {env['server_affinity']}, "
        f"load on {env['client_affinity']}; Python {env['python']}, "
        + ", ".join(f"{k} {v}" for k, v in env["versions"].items())
    )
    print(
        "srv CPU: the server's own CPU use; noise: other processes, IRQs and steal on "
        "the server's core (should be ~0%)"
    )
    for name, verdict in results["verdict"].items():
        print(f"{name}: {verdict}")


def judged(runs: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str]:
    """The runs a verdict rests on: those with a quiet server core, else all (flagged)."""
    clean = [r for r in runs if noise(r) <= NOISE_LIMIT]
    if clean:
        return clean, f"median of {len(clean)}/{len(runs)} quiet run(s)"
    return runs, f"median of {len(runs)} run(s), NONE QUIET: figures understate the server"


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def verdicts(results: dict[str, Any]) -> tuple[dict[str, str], int]:
    """Verification first (exit 2), then the targets (exit 1)."""
    verdict: dict[str, str] = {}
    status = 0
    runs = results["throughput"] + results["fixed_rate"]
    failed = [p for c in runs for p in c["journal"]["problems"]]
    verdict["verification"] = (
        f"PASS ({len(runs)} runs: every request answered 200, journal count matches)"
        if not failed
        else "FAIL: " + "; ".join(failed)
    )
    if results["throughput"]:
        chosen, how = judged(results["throughput"])
        rps = median([r["rps"] for r in chosen])
        met = rps >= TARGET_RPS
        verdict["throughput target"] = (
            f"{'MET' if met else 'NOT MET'}: {rps:,.0f} req/s vs >= {TARGET_RPS:,.0f} ({how})"
        )
        status = status or (0 if met else 1)
    at_target = [r for r in results["fixed_rate"] if r["offered_rps"] == TARGET_RPS]
    if at_target:
        chosen, how = judged(at_target)
        p99 = median([r["latency_from_schedule_ms"]["p99"] for r in chosen])
        met = p99 <= TARGET_P99_MS
        verdict["latency target"] = (
            f"{'MET' if met else 'NOT MET'}: p99 {p99:.2f} ms from schedule at "
            f"{TARGET_RPS:,.0f} req/s vs <= {TARGET_P99_MS:g} ms ({how})"
        )
        status = status or (0 if met else 1)
    noisy = [r for r in runs if noise(r) > NOISE_LIMIT]
    if noisy:
        verdict["noise warning"] = (
            f"{len(noisy)}/{len(runs)} run(s) shared the server core with other work "
            f"(> {NOISE_LIMIT:.0%}); use --repeat or a quiet machine"
        )
    return verdict, 2 if failed else status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=15, help="measured closed-loop s")
    parser.add_argument("--warmup", type=float, default=3, help="warm-up s before each run")
    parser.add_argument("--connections", type=int, default=16, help="closed-loop connections")
    parser.add_argument(
        "--rate", type=float, action="append", help="fixed offered rate, req/s (repeatable)"
    )
    parser.add_argument("--rate-duration", type=float, default=15, help="measured open-loop s")
    parser.add_argument("--rate-connections", type=int, default=32, help="open-loop pool size")
    parser.add_argument("--repeat", type=int, default=1, help="measured runs of each kind")
    parser.add_argument("--generator", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument(
        "--quiet-timeout",
        type=float,
        default=30,
        help="before each measured run wait up to this many s for both cores to idle (0: don't)",
    )
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-fixed-rate", action="store_true")
    parser.add_argument("--quick", action="store_true", help="short smoke run (3 s phases)")
    parser.add_argument("--output", type=Path, help="JSON path [benchmarks/results/...]")
    args = parser.parse_args(argv)
    rates = args.rate or [TARGET_RPS]
    if args.quick:
        args.duration = args.rate_duration = 3
        args.warmup = 1
    for name in ("duration", "warmup", "rate_duration"):
        if not 0 < getattr(args, name) <= MAX_DURATION_S:
            parser.error(f"--{name.replace('_', '-')} must be in (0, {MAX_DURATION_S:g}] s")
    if not all(0 < r * args.rate_duration <= MAX_REQUESTS for r in rates):
        parser.error(f"rate x duration must be in (0, {MAX_REQUESTS:,}] requests")
    if not 1 <= args.repeat <= 10:
        parser.error("--repeat must be in [1, 10]")
    if args.server_cpu == args.client_cpu:
        print("warning: server and load share a core; figures will be low", file=sys.stderr)
    if shutil.which("taskset") is None:
        parser.error("taskset (util-linux) is required")

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with it ignored
    os.sched_setaffinity(0, {args.client_cpu})  # this process and its load: CLIENT_CPU

    results: dict[str, Any] = {
        "started_at": time.time(),
        "args": vars(args) | {"rate": rates, "output": str(args.output or "")},
        "throughput": [],
        "fixed_rate": [],
    }
    server: Server | None = None
    with tempfile.TemporaryDirectory(prefix="mock-bench-") as tmp:
        workdir = Path(tmp)
        try:
            server = start_server(args.server_cpu, workdir / "server.log", deadline_s=30)
            print(f"server pid {server.pid} on {server.url}, core {args.server_cpu}", flush=True)
            with httpx.Client(base_url=server.url, timeout=10) as admin:
                wait_healthy(admin, deadline_s=30)
                results["behaviours"] = configure(admin)
                results["environment"] = environment(server)
                for i in range(args.repeat):
                    if not args.skip_throughput:
                        print(f"[{i + 1}] max throughput, {args.duration:g} s ...", flush=True)
                        run = measure_throughput(args, server, admin, workdir)
                        results["throughput"].append(run)
                    for rate in [] if args.skip_fixed_rate else rates:
                        print(
                            f"[{i + 1}] fixed rate {rate:g}/s, {args.rate_duration:g} s ...",
                            flush=True,
                        )
                        results["fixed_rate"].append(measure_fixed_rate(args, server, admin, rate))
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
        except (RuntimeError, httpx.HTTPError, OSError) as exc:
            print(f"benchmark failed: {exc}", file=sys.stderr)
            if server is not None and server.log.exists():
                print(server.log.read_text()[-4000:], file=sys.stderr)
            return 2
        finally:
            if server is not None:
                results["server_exit_code"] = stop_server(server)
                # uvicorn's log (warnings and tracebacks) is worth keeping with the figures
                with contextlib.suppress(OSError):
                    results["server_log_tail"] = server.log.read_text()[-4000:]

    results["verdict"], status = verdicts(results)
    results["exit_status"] = status
    print()
    print_table(results)
    out = args.output or RESULTS / time.strftime("mock_throughput-%Y%m%d-%H%M%S.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"\nJSON: {out}")
    return status


if __name__ == "__main__":
    sys.exit(main())
