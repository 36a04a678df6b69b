"""How long the local stack takes to come up and go down, and how much memory it holds.

Starts the stack (embedded Valkey, mock, and per lane a bot webhook and a
Celery worker) `--repeat` times for each lane set, timing `start()` (every
ready line seen, status webhooks routed) and `stop()` (every process gone), and
summing the resident memory of every process the stack started, pool
processes included, once it is up. Results: a table, and JSON in
benchmarks/results/ (git-ignored).

    uv run python benchmarks/stack_start.py --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil

from harness.bot.settings import POOLS
from harness.signals import orderly_shutdown
from harness.stack import LocalStack, StackSpec

RESULTS = Path(__file__).parent / "results"
LANE_SETS = {"solo": ("solo",), "four-pools": POOLS}


def rss_mib(pids: set[int]) -> float:
    total = 0
    for pid in pids:
        try:
            total += psutil.Process(pid).memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total / 2**20


def measure(pools: tuple[str, ...], run_dir: Path) -> dict[str, float]:
    """One start and stop of a stack with a lane per pool."""
    stack = LocalStack(StackSpec.of_pools(*pools), run_dir)  # type: ignore[arg-type]
    began = time.perf_counter()
    try:
        stack.start()
        started = time.perf_counter()
        pids = stack.pids()
        memory = rss_mib(pids)
    finally:
        stopping = time.perf_counter()
        stack.stop()
    stopped = time.perf_counter()
    return {
        "start_s": started - began,
        "stop_s": stopped - stopping,
        "processes": len(pids),
        "rss_mib": memory,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per lane set (default 3)")
    parser.add_argument("--output", type=Path, help="JSON file (default: benchmarks/results/)")
    args = parser.parse_args(argv)
    if not 1 <= args.repeat <= 20:
        parser.error(f"--repeat must be between 1 and 20, got {args.repeat}")

    runs: dict[str, list[dict[str, float]]] = {}
    try:
        with orderly_shutdown(), tempfile.TemporaryDirectory() as scratch:
            for name, pools in LANE_SETS.items():
                runs[name] = [
                    measure(pools, Path(scratch) / f"{name}-{i}") for i in range(args.repeat)
                ]
    except KeyboardInterrupt:
        print("interrupted: every process was stopped", file=sys.stderr)
        return 130

    print(
        f"{'lanes':<11} {'processes':>9} {'start s (median, max)':>22} {'stop s':>7} {'RSS MiB':>8}"
    )
    summary = {}
    for name, results in runs.items():
        starts = [r["start_s"] for r in results]
        row = {
            "processes": int(results[0]["processes"]),
            "start_median_s": statistics.median(starts),
            "start_max_s": max(starts),
            "stop_median_s": statistics.median(r["stop_s"] for r in results),
            "rss_median_mib": statistics.median(r["rss_mib"] for r in results),
        }
        summary[name] = row
        print(
            f"{name:<11} {row['processes']:>9} "
            f"{row['start_median_s']:>12.1f}, {row['start_max_s']:>7.1f} "
            f"{row['stop_median_s']:>7.1f} {row['rss_median_mib']:>8.0f}"
        )
    record = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor()},
        "python": platform.python_version(),
        "repeat": args.repeat,
        "summary": summary,
        "runs": runs,
    }
    output = args.output or RESULTS / f"stack-start-{datetime.now():%Y%m%d-%H%M%S}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(record, indent=2))
    print(f"results: {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
