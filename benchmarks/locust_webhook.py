"""Signed webhook requests per second from one Locust process, and the webhook's tail at a
fixed rate.

Starts the local stack with one lane (embedded Valkey, mock, bot webhook, a solo worker)
and drives its webhook with `locustfile.py` in one Locust process, headless, with only
non-"fixtures" texts (each request is signed, checked, claimed and recorded by the bot;
no parts are queued), so what is measured is the webhook path itself:

1. flat out: `--users` users with no wait, for `--seconds`: requests per second, and the
   CPU each side used (Locust, the webhook, the broker) over the run;
2. paced: `--rate` requests per second (users x pace), for `--seconds`: the webhook's
   p50 / p99 response time as Locust measured it.

Results: a table, and JSON in benchmarks/results/ (git-ignored).

    uv run python benchmarks/locust_webhook.py --repeat 3
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import resource
import statistics
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil

from harness.load.driver import locust_command
from harness.signals import orderly_shutdown
from harness.stack import LaneSpec, LocalStack, StackSpec

RESULTS = Path(__file__).parent / "results"
PACED_USERS = 20


def cpu_s(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_locust(stack: LocalStack, out: Path, users: int, pace_s: float, seconds: int) -> dict:
    """One headless Locust process against the lane's webhook; its aggregated figures."""
    lane = stack.lanes["solo"]
    argv = locust_command(
        "--headless", "--users", str(users), "--spawn-rate", str(users),
        "--run-time", f"{seconds}s", "--host", lane.web.url,
        "--phone-number-id", lane.phone_number_id,
        "--app-secret", lane.settings.whatsapp_app_secret,
        "--fixtures-share", "0", "--pace", f"{pace_s:g}",
        "--csv", str(out / "locust"), "--only-summary", "--loglevel", "WARNING",
    )  # fmt: skip
    watched = {"webhook": lane.web.pid}
    if stack.broker is not None and stack.broker.process is not None:
        watched["broker"] = stack.broker.process.pid
    before = {name: cpu_s(pid) for name, pid in watched.items()}
    locust_before = children_cpu_s()
    began = time.perf_counter()
    subprocess.run(
        argv, check=True, capture_output=True, timeout=seconds + 60, stdin=subprocess.DEVNULL
    )
    elapsed = time.perf_counter() - began
    with (out / "locust_stats.csv").open() as table:
        total = next(row for row in csv.DictReader(table) if row["Name"] == "Aggregated")
    cpu = {name: cpu_s(pid) - before[name] for name, pid in watched.items()}
    cpu["locust"] = children_cpu_s() - locust_before
    return {
        "requests": int(total["Request Count"]),
        "failures": int(total["Failure Count"]),
        "requests_per_s": float(total["Requests/s"]),
        "p50_ms": float(total["50%"]),
        "p99_ms": float(total["99%"]),
        "cpu_s": cpu,
        "wall_s": elapsed,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=20, help="Each load's run time.")
    parser.add_argument("--users", type=int, default=64, help="Users flat out.")
    parser.add_argument("--rate", type=float, default=200.0, help="Paced requests per second.")
    args = parser.parse_args(argv)
    if not (1 <= args.repeat <= 20 and 1 <= args.seconds <= 300 and 0 < args.rate <= 5000):
        parser.error("--repeat 1..20, --seconds 1..300 and --rate up to 5000")
    flat, paced = [], []
    spec = StackSpec(lanes=[LaneSpec(name="solo", pool="solo")])
    with (
        tempfile.TemporaryDirectory() as tmp,
        orderly_shutdown(),
        LocalStack(spec, Path(tmp) / "stack") as stack,
    ):
        for n in range(args.repeat):
            f = run_locust(stack, Path(tmp) / f"flat{n}", args.users, 0, args.seconds)
            p = run_locust(
                stack, Path(tmp) / f"paced{n}", PACED_USERS, PACED_USERS / args.rate, args.seconds
            )
            flat.append(f)
            paced.append(p)
            cpu = ", ".join(f"{k} {v / f['wall_s']:.2f}" for k, v in f["cpu_s"].items())
            print(
                f"run {n + 1}: flat out {f['requests_per_s']:.0f} req/s "
                f"({f['failures']} failed; cores busy: {cpu}); "
                f"at {p['requests_per_s']:.0f} req/s: p50 {p['p50_ms']:.0f} ms, "
                f"p99 {p['p99_ms']:.0f} ms ({p['failures']} failed)"
            )
    rates = [f["requests_per_s"] for f in flat]
    p99s = [p["p99_ms"] for p in paced]
    print(
        f"flat out: {min(rates):.0f}-{max(rates):.0f} req/s "
        f"(median {statistics.median(rates):.0f}); "
        f"at {args.rate:g} req/s: p99 {min(p99s):.0f}-{max(p99s):.0f} ms"
    )
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    (RESULTS / f"locust_webhook-{stamp}.json").write_text(
        json.dumps(
            {
                "machine": {"cpus": psutil.cpu_count(), "python": platform.python_version()},
                "args": vars(args),
                "flat_out": flat,
                "paced": paced,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
