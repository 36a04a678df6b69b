"""Throughput and added latency of the real mock-meta-api server on one core.

    uv run python benchmarks/mock_throughput.py --repeat 3
    uv run python benchmarks/mock_throughput.py --skip-throughput --rate 4500 --rate 5000
    uv run python benchmarks/mock_throughput.py --quick      # 3 s smoke run

Needs wrk (`apt-get install -y wrk`) for the closed loop and taskset (util-linux).

1. Start `mock-meta-api --port 0` pinned to --server-cpu, wait for its ready line and
   /_mock/health; pin this process and wrk to --client-cpu.
2. PATCH the throughput and pair-rate limits off and check that nothing else (latency,
   failures, webhooks) is configured.
3. Max throughput: wrk, closed loop on --connections keep-alive connections.
4. Added latency: this script's open-loop client at a fixed --rate, latency counted from
   each request's scheduled time (wrk has no fixed-rate mode).
5. After each measured run the journal must hold exactly what the client saw answered,
   every entry HTTP 200 / "accepted".

Exit status: 0 checks passed and targets met, 1 a target missed, 2 a check failed or the
run could not be done, 130 interrupted. Details: benchmarks/README.md.
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
import re
import shutil
import signal
import string
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from statistics import median
from typing import Any

import httptools
import httpx
import uvloop

from harness.processes import ServerProcess, start_server
from mock_meta_api.server import READY, command

HOST = "127.0.0.1"  # the only address any request goes to
TOKEN = "mock-access-token"
SEND_PATH = "/v21.0/106540352242922/messages"
RECIPIENT = "15550100200"
REPO = Path(__file__).resolve().parent.parent
TARGET_RPS = 3000.0
TARGET_P99_MS = 10.0
NOISE_LIMIT = 0.05  # share of the server's core taken by other work before a run is flagged
MAX_DURATION_S = 120.0  # hard bounds on every load loop, whatever the options say
MAX_REQUESTS = 2_000_000
TICKS = os.sysconf("SC_CLK_TCK")


def request_bytes(port: int, correlation: str) -> bytes:
    """The send request wrk's Lua script also builds, with a unique correlation id."""
    body = (
        f'{{"messaging_product":"whatsapp","to":"{RECIPIENT}","type":"text",'
        f'"text":{{"body":"hello"}},"biz_opaque_callback_data":"{correlation}"}}'
    ).encode()
    head = (
        f"POST {SEND_PATH} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
        f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def latency_ms(seconds: list[float]) -> dict[str, float]:
    """Nearest-rank percentiles and the maximum, in ms."""
    values = sorted(seconds) or [math.nan]
    pick = {f"p{p:g}": values[max(1, math.ceil(p / 100 * len(values))) - 1] for p in (50, 90, 99)}
    return {k: v * 1e3 for k, v in (pick | {"max": values[-1]}).items()}


# -- the server and the machine --------------------------------------------------


def start_mock(cpu: int) -> ServerProcess:
    """Start the mock pinned to `cpu`; `harness.processes` waits for its ready line.

    It runs in its own session, so Ctrl-C reaches only this script, whose `finally`
    stops it by PID.
    """
    return start_server(["taskset", "-c", str(cpu), *command(host=HOST)], READY, 30)


def core_ticks(cpu: int) -> tuple[int, int]:
    """(busy, steal) clock ticks of one core since boot, from /proc/stat."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{cpu} "):
            user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, line.split()[1:9])
            return user + nice + system + irq + softirq, steal
    raise RuntimeError(f"cpu{cpu} not in /proc/stat")


def cpu_sample(pid: int, server_cpu: int, client_cpu: int) -> list[float]:
    """[wall s, server process CPU s, server core busy s, its steal s, client core busy s]."""
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    busy, steal = core_ticks(server_cpu)
    client, _ = core_ticks(client_cpu)
    ticks = (int(stat[11]) + int(stat[12]), busy, steal, client)
    return [time.perf_counter(), *(t / TICKS for t in ticks)]


def cpu_usage(before: list[float], after: list[float]) -> dict[str, float]:
    """Shares of one core over a run; `noise` is what others took of the server's core."""
    wall, server, busy, steal, client = (b - a for a, b in zip(before, after, strict=True))
    return {
        "server_cpu": server / wall,
        "noise": (max(0.0, busy - server) + steal) / wall,
        "client_core_busy": client / wall,
    }


def wait_quiet(cpus: list[int], timeout_s: float) -> float | None:
    """Wait until every core in `cpus` was under 5% busy for 2 s (the machine is shared).

    Returns the seconds waited, or None if `timeout_s` passed first (the run then goes
    ahead and its noise column shows the interference).
    """
    start, quiet_for = time.monotonic(), 0.0
    before = [sum(core_ticks(c)) for c in cpus]
    while time.monotonic() - start < timeout_s:
        time.sleep(0.5)
        after = [sum(core_ticks(c)) for c in cpus]
        busiest = max(b - a for a, b in zip(before, after, strict=True)) / TICKS / 0.5
        before = after
        quiet_for = quiet_for + 0.5 if busiest < 0.05 else 0.0
        if quiet_for >= 2:
            return time.monotonic() - start
    return None


# -- the admin API: setup and verification ---------------------------------------


def wait_healthy(admin: httpx.Client, deadline_s: float = 30) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        with contextlib.suppress(httpx.TransportError):
            answer = admin.get("/_mock/health")
            if answer.status_code == 200 and answer.json().get("status") == "ok":
                return
        time.sleep(0.05)
    raise RuntimeError(f"/_mock/health not ok within {deadline_s:g} s")


def configure(admin: httpx.Client) -> dict[str, Any]:
    """Switch the rate limits off and check the answer: with a limit, latency or failures
    left on, the figures would measure the mock's behaviours, not its speed."""
    answer = admin.patch(
        "/_mock/behaviours",
        json={"throughput": {"enabled": False}, "pair_rate": {"enabled": False}},
    )
    answer.raise_for_status()
    b = answer.json()
    problems = []
    if b["throughput"]["enabled"] or b["pair_rate"]["enabled"]:
        problems.append("rate limits still enabled")
    if b["latency"]["default"]["model"] != "none" or b["latency"]["per_phone_number"]:
        problems.append(f"latency configured: {b['latency']}")
    if any(b["failures"][k] for k in ("random", "scripted", "outages")):
        problems.append(f"failures configured: {b['failures']}")
    if b["webhooks"]["url"] is not None:
        problems.append("status webhooks are on")
    if problems:
        raise RuntimeError("; ".join(problems))
    return b


def reset(admin: httpx.Client) -> None:
    admin.post("/_mock/reset").raise_for_status()
    health = admin.get("/_mock/health").json()
    if health["journal_entries"] or health["send_attempts"]:
        raise RuntimeError(f"reset did not clear the journal: {health}")


def check_journal(
    admin: httpx.Client, ok: int, errors: int, prefix: str, max_extra: int
) -> dict[str, Any]:
    """The journal must match what the client saw, so a fast stream of 429s or 400s
    fails the run instead of passing as throughput.

    `max_extra`: requests the server may have answered after the client stopped counting
    (wrk stops at its deadline with up to one request per connection in flight).
    """
    health = admin.get("/_mock/health").json()
    page = admin.get("/_mock/journal", timeout=120).json()
    entries, count = page["entries"], page["count"]
    other: dict[str, int] = {}
    for e in entries:
        if not (e["http_status"] == 200 and e["outcome"] == "accepted" and e["wamid"]):
            key = f"{e['http_status']}/{e['outcome']}/{e['error_code']}"
            other[key] = other.get(key, 0) + 1
    correlations = {e["biz_opaque_callback_data"] for e in entries}
    problems = []
    if errors:
        problems.append(f"client saw {errors} errors, non-200 or unanswered requests")
    if other:
        problems.append(f"journal has non-accepted entries: {other}")
    if page["dropped"]:
        problems.append(f"journal dropped {page['dropped']} entries")
    if not health["journal_entries"] == count == len(entries):
        problems.append("health and journal disagree on the entry count")
    if not ok <= count <= ok + max_extra:
        problems.append(f"journal has {count} entries, client counted {ok} OK (+{max_extra})")
    if len(correlations) != len(entries):
        problems.append("correlation ids repeat: some request was journaled twice")
    if any(not str(c).startswith(prefix) for c in correlations):
        problems.append(f"journal holds requests not from this run (prefix {prefix!r})")
    return {"count": count, "client_ok": ok, "other": other, "problems": problems}


# -- closed loop: wrk ---------------------------------------------------------------

WRK_LUA = string.Template(r"""
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args)
  n, ok, bad = 0, 0, 0
  hdrs = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer $token"}
end
function request()
  n = n + 1
  return wrk.format("POST", nil, hdrs, '{"messaging_product":"whatsapp","to":"$recipient",' ..
    '"type":"text","text":{"body":"hello"},"biz_opaque_callback_data":"$prefix' .. n .. '"}')
end
function response(status, headers, body)
  if status == 200 then ok = ok + 1 else bad = bad + 1 end
end
function done(summary, latency, requests)
  local ok_total, bad_total = 0, 0
  for _, t in ipairs(threads) do
    ok_total, bad_total = ok_total + t:get("ok"), bad_total + t:get("bad")
  end
  local e = summary.errors
  io.write(string.format('WRK_JSON {"duration_us":%d,"requests":%d,"ok":%d,"errors":%d,' ..
    '"p50":%d,"p90":%d,"p99":%d,"max":%d}\n', summary.duration, summary.requests, ok_total,
    bad_total + e.connect + e.read + e.write + e.timeout, latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency.max))
end
""")


def run_wrk(
    port: int, cpu: int, connections: int, seconds: float, prefix: str, lua: Path
) -> dict[str, Any]:
    """One run of one wrk thread (C, epoll: ~30,000 req/s here, far above the mock).

    The Lua script counts HTTP 200s itself (wrk's own count takes any 4xx as success)
    and numbers the requests, unique with one thread, so a double journal entry shows.
    """
    lua.write_text(WRK_LUA.substitute(token=TOKEN, recipient=RECIPIENT, prefix=prefix))
    seconds = max(1, round(seconds))
    argv = ["taskset", "-c", str(cpu), "wrk", "-t1", f"-c{connections}", f"-d{seconds}s"]
    argv += ["--timeout", "5s", "-s", str(lua), f"http://{HOST}:{port}{SEND_PATH}"]
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
    return {
        "tool": "wrk",
        "connections": connections,
        "requests": raw["requests"],
        "ok": raw["ok"],
        "errors": raw["errors"],
        "rps": raw["ok"] / (raw["duration_us"] / 1e6),
        "latency_ms": {k: raw[k] / 1e3 for k in ("p50", "p90", "p99", "max")},
    }


# -- open loop: fixed rate -----------------------------------------------------------


class Connection(asyncio.Protocol):
    """One keep-alive connection, one request in flight, parsed with uvicorn's parser."""

    def __init__(self, on_answer: Callable[[Connection, int | None], None]) -> None:
        self.on_answer = on_answer  # status, or None when the connection failed
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
            self.fail()

    def on_message_complete(self) -> None:
        self.busy = False
        self.on_answer(self, self.parser.get_status_code())

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)
        self.fail()

    def fail(self) -> None:
        if self.busy:
            self.busy = False
            self.on_answer(self, None)
        if self.transport is not None:
            self.transport.abort()

    def send(self, data: bytes) -> None:
        assert self.transport is not None
        self.busy = True
        self.transport.write(data)


async def open_loop(
    port: int, rate: float, seconds: float, connections: int, prefix: str
) -> dict[str, Any]:
    """Send rate * seconds requests, request i due at t0 + i/rate, over a connection pool.

    A request due while every connection is busy waits in a backlog, its clock running,
    so a server stall counts in full (no coordinated omission).
    """
    loop = asyncio.get_running_loop()
    perf = time.perf_counter
    total = round(rate * seconds)
    idle: deque[Connection] = deque()
    backlog: deque[tuple[int, float]] = deque()
    in_flight: dict[Connection, tuple[float, float]] = {}
    from_schedule: list[float] = []
    from_write: list[float] = []
    answered = errors = max_backlog = 0
    all_done = loop.create_future()

    def dispatch(conn: Connection, index: int, scheduled: float) -> None:
        in_flight[conn] = (scheduled, perf())
        conn.send(request_bytes(port, f"{prefix}{index}"))

    def on_answer(conn: Connection, status: int | None) -> None:
        nonlocal answered, errors
        now = perf()
        scheduled, written = in_flight.pop(conn)
        answered += 1
        if status == 200:
            from_schedule.append(now - scheduled)
            from_write.append(now - written)
        else:
            errors += 1
        if status is not None and not conn.closed.done():
            if backlog:
                dispatch(conn, *backlog.popleft())
            else:
                idle.append(conn)
        if answered == total and not all_done.done():
            all_done.set_result(None)

    conns: list[Connection] = []
    for _ in range(connections):
        connecting = loop.create_connection(lambda: Connection(on_answer), HOST, port)
        conns.append((await asyncio.wait_for(connecting, timeout=5))[1])
    idle.extend(conns)
    cpu0, start = time.process_time(), perf() + 0.01
    try:
        sent = 0
        while sent < total:
            due = min(total, math.floor((perf() - start) * rate) + 1)
            for i in range(sent, due):
                if idle:
                    dispatch(idle.popleft(), i, start + i / rate)
                else:
                    backlog.append((i, start + i / rate))
                    max_backlog = max(max_backlog, len(backlog))
            sent = max(sent, due)
            # Sleep at least 1 ms, libuv's timer resolution: a shorter sleep spins core 1
            # and the kernel then moves other work onto the server's core. Requests due
            # meanwhile go out together, which adds at most ~1 ms to "from schedule".
            await asyncio.sleep(max(0.001, start + sent / rate - perf()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_done, timeout=30)
    finally:
        elapsed, client_cpu = perf() - start, time.process_time() - cpu0
        for conn in conns:
            conn.transport.close()  # type: ignore[union-attr]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(c.closed for c in conns)), timeout=5)
    return {
        "tool": "open loop",
        "connections": connections,
        "offered_rps": rate,
        "requests": total,
        "ok": len(from_schedule),
        "errors": errors + total - answered,  # non-200 or unanswered
        "rps": len(from_schedule) / elapsed,
        "latency_from_schedule_ms": latency_ms(from_schedule),
        "latency_ms": latency_ms(from_write),
        "max_backlog": max_backlog,
        "client_cpu_s": client_cpu,
    }


def run_open_loop(*args: Any) -> dict[str, Any]:
    """open_loop() on uvloop with the collector paused, so the client adds no GC stalls."""
    gc.collect()
    gc.disable()
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(open_loop(*args))
    finally:
        gc.enable()


# -- the run ------------------------------------------------------------------------


def measure(
    args: argparse.Namespace,
    server: ServerProcess,
    port: int,
    admin: httpx.Client,
    rate: float | None,
    lua: Path,
) -> dict[str, Any]:
    """One run (rate None: wrk, else the open loop at `rate`): warm up, empty the journal,
    wait for a quiet machine, measure, verify."""

    def load(seconds: float, prefix: str) -> dict[str, Any]:
        if rate is None:
            return run_wrk(port, args.client_cpu, args.connections, seconds, prefix, lua)
        return run_open_loop(port, rate, seconds, args.rate_connections, prefix)

    load(args.warmup, "warm-")
    reset(admin)
    waited = wait_quiet([args.server_cpu, args.client_cpu], args.quiet_timeout)
    if waited is None and args.quiet_timeout > 0:
        print(f"  not quiet after {args.quiet_timeout:g} s; measuring anyway", flush=True)
    before = cpu_sample(server.pid, args.server_cpu, args.client_cpu)
    result = load(args.duration, "run-")
    result |= cpu_usage(before, cpu_sample(server.pid, args.server_cpu, args.client_cpu))
    result["waited_for_quiet_s"] = waited
    # wrk stops at its deadline with up to one request per connection still in flight
    extra = args.connections if rate is None else 0
    result["journal"] = check_journal(admin, result["ok"], result["errors"], "run-", extra)
    return result


def environment(server: ServerProcess) -> dict[str, Any]:
    def run(*argv: str) -> str:
        return subprocess.run(argv, capture_output=True, text=True, timeout=5, cwd=REPO).stdout

    model = re.search(r"model name\s*: (.*)", Path("/proc/cpuinfo").read_text())
    packages = ("fastapi", "starlette", "uvicorn", "pydantic", "uvloop", "httptools", "orjson")
    return {
        "cpu_model": model.group(1) if model else platform.machine(),
        "cpus_online": os.cpu_count(),
        "server_affinity": sorted(os.sched_getaffinity(server.pid)),
        "client_affinity": sorted(os.sched_getaffinity(0)),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "versions": {name: metadata.version(name) for name in packages},
        "wrk": run("wrk", "--version").splitlines()[0],
        "git_commit": run("git", "rev-parse", "--short", "HEAD").strip(),
        "mock_meta_api_modified": bool(run("git", "status", "--porcelain", "--", "mock_meta_api")),
    }


def print_table(results: dict[str, Any]) -> None:
    def row(label: str, run: dict[str, Any], lat: dict[str, float], full: bool = True) -> list:
        figures = [f"{lat[k]:.2f}" for k in ("p50", "p90", "p99", "max")]
        if not full:
            return [label, "", *figures, "", "", "", ""]
        counts = [run["errors"], f"{run['journal']['count']:,}"]
        cpu = [f"{run['server_cpu']:.0%}", f"{run['noise']:.0%}"]
        return [label, f"{run['rps']:,.0f}", *figures, *counts, *cpu]

    rows = [["run", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors", "journal"]]
    rows[0] += ["srv CPU", "noise"]
    for i, r in enumerate(results["throughput"], 1):
        rows.append(row(f"#{i} max throughput (wrk, {r['connections']} conn)", r, r["latency_ms"]))
    for i, r in enumerate(results["fixed_rate"], 1):
        label = f"#{i} {r['offered_rps']:,.0f}/s open loop"
        rows.append(row(f"{label}, from schedule", r, r["latency_from_schedule_ms"]))
        rows.append(row(f"{label}, from write", r, r["latency_ms"], full=False))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    rows.insert(1, ["-" * w for w in widths])
    for r in rows:
        cells = [str(c).rjust(w) for c, w in zip(r, widths, strict=True)]
        print("  ".join([str(r[0]).ljust(widths[0]), *cells[1:]]).rstrip())
    env = results["environment"]
    print(
        f"\n{env['cpu_model']}; server on core {env['server_affinity']}, load on "
        f"{env['client_affinity']}; Python {env['python']}, commit {env['git_commit']}, "
        + ", ".join(f"{k} {v}" for k, v in env["versions"].items())
    )
    print("noise: share of the server's core used by anything else (processes, IRQs, steal)")
    for name, verdict in results["verdict"].items():
        print(f"{name}: {verdict}")


def verdicts(results: dict[str, Any]) -> tuple[dict[str, str], int]:
    """Verification first (exit 2), then the targets on medians of the runs (exit 1)."""
    runs = results["throughput"] + results["fixed_rate"]
    failed = [p for r in runs for p in r["journal"]["problems"]]
    verdict = {
        "verification": "FAIL: " + "; ".join(failed)
        if failed
        else f"PASS ({len(runs)} runs: every request answered 200, journal count matches)"
    }
    missed = False
    if results["throughput"]:
        rps = median(r["rps"] for r in results["throughput"])
        missed |= rps < TARGET_RPS
        verdict["throughput target"] = (
            f"{'NOT MET' if rps < TARGET_RPS else 'MET'}: median {rps:,.0f} req/s "
            f"vs >= {TARGET_RPS:,.0f}"
        )
    at_target = [r for r in results["fixed_rate"] if r["offered_rps"] == TARGET_RPS]
    if at_target:
        p99 = median(r["latency_from_schedule_ms"]["p99"] for r in at_target)
        missed |= p99 > TARGET_P99_MS
        verdict["latency target"] = (
            f"{'NOT MET' if p99 > TARGET_P99_MS else 'MET'}: median p99 {p99:.2f} ms from "
            f"schedule at {TARGET_RPS:,.0f} req/s vs <= {TARGET_P99_MS:g} ms"
        )
    if noisy := [r for r in runs if r["noise"] > NOISE_LIMIT]:
        verdict["noise warning"] = (
            f"{len(noisy)}/{len(runs)} run(s) shared the server's core with other work "
            f"(> {NOISE_LIMIT:.0%}); rerun on a quiet machine"
        )
    return verdict, 2 if failed else int(missed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=15, help="measured s per run")
    parser.add_argument("--warmup", type=float, default=3, help="warm-up s before each run")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument("--rate", type=float, action="append", help="open-loop req/s (repeatable)")
    parser.add_argument("--rate-connections", type=int, default=32, help="open-loop pool size")
    parser.add_argument("--repeat", type=int, default=1, help="measured runs of each kind")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument(
        "--quiet-timeout", type=float, default=30,
        help="before each run, wait up to this many s for both cores to idle",
    )  # fmt: skip
    parser.add_argument("--skip-throughput", action="store_true", help="no wrk run")
    parser.add_argument("--skip-fixed-rate", action="store_true", help="no open-loop run")
    parser.add_argument("--quick", action="store_true", help="3 s runs, 1 s warm-up")
    parser.add_argument("--output", type=Path, help="JSON file [benchmarks/results/...]")
    args = parser.parse_args(argv)
    rates = [] if args.skip_fixed_rate else args.rate or [TARGET_RPS]
    if args.quick:
        args.duration, args.warmup = 3, 1
    if not (0 < args.duration <= MAX_DURATION_S and 0 < args.warmup <= MAX_DURATION_S):
        parser.error(f"--duration and --warmup must be in (0, {MAX_DURATION_S:g}] s")
    if not all(0 < r * max(args.duration, args.warmup) <= MAX_REQUESTS for r in rates):
        parser.error(f"rate x duration must be in (0, {MAX_REQUESTS:,}] requests")
    if not 1 <= args.repeat <= 10:
        parser.error("--repeat must be in [1, 10]")
    kinds = ([] if args.skip_throughput else [None]) + rates  # None: the wrk run
    needed = {"taskset": "util-linux"} | ({} if args.skip_throughput else {"wrk": "wrk"})
    for tool, package in needed.items():
        if shutil.which(tool) is None:
            parser.error(f"{tool} not found: apt-get install -y {package}")

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)  # stop the server on SIGTERM as on Ctrl-C
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.sched_setaffinity(0, {args.client_cpu})  # this process and wrk: the client core

    results: dict[str, Any] = {
        "args": vars(args) | {"rate": rates},
        "throughput": [],
        "fixed_rate": [],
    }
    server = None
    with tempfile.TemporaryDirectory(prefix="mock-bench-") as tmp:
        lua = Path(tmp) / "send.lua"
        try:
            server = start_mock(args.server_cpu)
            url = server.url
            port = int(url.rsplit(":", 1)[1])
            print(f"server pid {server.pid} on {url}, core {args.server_cpu}", flush=True)
            with httpx.Client(base_url=url, timeout=10) as admin:
                wait_healthy(admin)
                results["behaviours"] = configure(admin)
                results["environment"] = environment(server)
                for i in range(1, args.repeat + 1):
                    for rate in kinds:
                        what = "max throughput" if rate is None else f"fixed rate {rate:g}/s"
                        print(f"[{i}] {what}, {args.duration:g} s ...", flush=True)
                        run = measure(args, server, port, admin, rate, lua)
                        results["throughput" if rate is None else "fixed_rate"].append(run)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
        except Exception as exc:  # the run could not be done: exit 2, not a traceback
            tail = server.output[-4000:] if server is not None else ""
            print(f"benchmark failed: {exc!r}\nserver log:\n{tail}", file=sys.stderr)
            return 2
        finally:
            if server is not None:
                results["server_exit_code"] = server.stop()
                results["server_log_tail"] = server.output[-4000:]

    results["verdict"], status = verdicts(results)
    results["exit_status"] = status
    print()
    print_table(results)
    name = time.strftime("mock_throughput-%Y%m%d-%H%M%S.json")
    out = args.output or REPO / "benchmarks" / "results" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"\nJSON: {out}")
    return status


if __name__ == "__main__":
    sys.exit(main())
