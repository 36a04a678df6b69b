"""Time to verdict of a scenario matrix: all lanes side by side, against one pool at a time.

Runs the scenario (default: the four-pool incident) through `harness.run.run_scenario`,
the code path of `harness matrix`, with every lane on one stack, then once per lane
on a stack of its own, one after another. For each it records the stack start, the
time from the requests to the verdict (every lane settled), and the stop. The target:
side by side, start + time to verdict <= start + 1.2 x the schedule (the last part's
due time). Results: a table, and JSON in benchmarks/results/ (git-ignored).

    uv run python benchmarks/time_to_verdict.py                  # full length, ~5 min
    uv run python benchmarks/time_to_verdict.py --time-scale 0.25 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from harness.run import RunOutcome, run_scenario
from harness.scenario import Scenario, load_scenario
from harness.signals import orderly_shutdown

RESULTS = Path(__file__).parent / "results"
TARGET_RATIO = 1.2


def timed(scenario: Scenario, run_dir: Path) -> dict[str, float | bool]:
    """One run: stack start, requests to verdict, stop; and whether it was as expected."""
    began = time.time()
    outcome: RunOutcome = run_scenario(scenario, run_dir)
    ended = time.time()
    results = outcome.results
    assert results.trigger_at is not None
    assert results.verdict_at is not None
    assert results.stack_start_s is not None
    return {
        "start_s": results.stack_start_s,
        "to_verdict_s": results.verdict_at - results.trigger_at,
        "stop_s": ended - results.verdict_at,
        "wall_s": ended - began,
        "as_expected": results.as_expected,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?", default="incident")
    parser.add_argument("--time-scale", type=float, default=None)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--skip-sequential", action="store_true")
    args = parser.parse_args()
    written, _ = load_scenario(args.scenario)
    scenario = written.scaled(args.time_scale)
    schedule = scenario.flow.schedule_s
    rows: list[dict[str, object]] = []
    with orderly_shutdown(), tempfile.TemporaryDirectory(prefix="verdict-") as tmp:
        for n in range(args.repeat):
            side = timed(scenario, Path(tmp) / f"side-{n}")
            rows.append({"mode": "side by side", "lanes": len(scenario.lanes), **side})
            print(f"side by side #{n + 1}: {side}", flush=True)
            if args.skip_sequential:
                continue
            one_by_one = [
                timed(scenario.only([lane.name]), Path(tmp) / f"seq-{n}-{lane.name}")
                for lane in scenario.lanes
            ]
            total = {
                key: sum(float(run[key]) for run in one_by_one)
                for key in ("start_s", "to_verdict_s", "stop_s", "wall_s")
            }
            seq = {**total, "as_expected": all(run["as_expected"] for run in one_by_one)}
            rows.append({"mode": "one after another", "lanes": len(scenario.lanes), **seq})
            print(f"one after another #{n + 1}: {seq}", flush=True)

    print(f"\n{scenario.name} x{scenario.time_scale:g}: schedule {schedule:.1f} s")
    print(f"{'mode':<18} {'start':>7} {'to verdict':>11} {'ratio':>6} {'stop':>6} {'wall':>7}")
    met = True
    for row in rows:
        ratio = float(row["to_verdict_s"]) / schedule if schedule else float("nan")
        row["ratio"] = ratio
        if row["mode"] == "side by side":
            met = met and ratio <= TARGET_RATIO and bool(row["as_expected"])
        print(
            f"{row['mode']:<18} {row['start_s']:>6.1f}s {row['to_verdict_s']:>10.1f}s "
            f"{ratio:>6.2f} {row['stop_s']:>5.1f}s {row['wall_s']:>6.1f}s"
        )
    print(
        f"target: side by side, time to verdict <= {TARGET_RATIO} x schedule: "
        f"{'met' if met else 'MISSED'}"
    )
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"time_to_verdict-{stamp}.json"
    out.write_text(
        json.dumps(
            {
                "scenario": scenario.name,
                "time_scale": scenario.time_scale,
                "schedule_s": schedule,
                "python": platform.python_version(),
                "rows": rows,
                "target_met": met,
            },
            indent=2,
        )
    )
    print(f"written: {out}")
    return 0 if met else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
