"""Locust as the harness's workload: started as subprocesses, stopped by PID, read back.

Locust monkey-patches with gevent when imported, so it never runs in the harness's own
process: `locustfile.py` runs under `python -m locust`, headless, as one process or as
a master and `workers` worker processes on loopback. It writes its statistics (CSV,
HTML, JSON), every fixtures request it sent (`locust-requests.jsonl`) and a per-lane
summary with the thresholds' outcome (`locust-summary.json`) into the run directory.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import RunError
from ..processes import ServerProcess, start_server
from ..scenario import Load, Scenario
from ..stack.backend import Stack
from ..stack.broker import free_port
from .command import locust_command
from .lanes import LoadLane, lanes_option

STARTED = re.compile(r"Starting Locust \d")
REQUESTS_LOG = "locust-requests.jsonl"
SUMMARY = "locust-summary.json"
START_TIMEOUT_S = 60.0


class LoadError(RunError):
    """Locust could not be started, or ended without its figures; the message says why."""


@dataclass(frozen=True)
class LoadPlan:
    """What to drive: the load, the lanes' webhooks, and how to judge delivery."""

    load: Load
    lanes: list[LoadLane]
    mock_url: str
    parts: int
    spacing_s: float
    missing_grace_s: float
    app_secret: str
    fixtures_keyword: str = "fixtures"

    @classmethod
    def for_stack(cls, scenario: Scenario, stack: Stack) -> LoadPlan:
        """Every lane's webhook under the scenario's [load], judged by its own flow."""
        assert scenario.load is not None
        first = next(iter(stack.lanes.values()))
        return cls(
            load=scenario.load,
            lanes=[
                LoadLane(lane.name, lane.phone_number_id, lane.webhook_url)
                for lane in stack.lanes.values()
            ],
            mock_url=stack.mock_url,
            parts=scenario.flow.messages,
            spacing_s=scenario.flow.spacing_s,
            missing_grace_s=scenario.tolerances.missing_after_s,
            app_secret=first.settings.whatsapp_app_secret,
            fixtures_keyword=first.settings.fixtures_keyword,
        )

    def options(self, run_dir: Path) -> list[str]:
        """The locustfile's own options and Locust's, for the master (or only) process."""
        load = self.load
        thresholds = load.thresholds
        argv = [
            "--headless",
            "--users", str(load.users),
            "--spawn-rate", f"{load.spawn_rate:g}",
            "--run-time", f"{max(1, round(load.run_time_s))}s",
            "--shape", load.shape,
            "--pace", f"{load.pace_s:g}",
            "--fixtures-share", f"{load.fixtures_share:g}",
            "--fixtures-keyword", self.fixtures_keyword,
            "--lanes", lanes_option(self.lanes),
            "--app-secret", self.app_secret,
            "--mock-url", self.mock_url,
            "--parts", str(self.parts),
            "--spacing", f"{self.spacing_s:g}",
            "--missing-grace", f"{self.missing_grace_s:g}",
            "--requests-log", str(run_dir / REQUESTS_LOG),
            "--summary-file", str(run_dir / SUMMARY),
            "--csv", str(run_dir / "locust"),
            "--csv-full-history",
            "--html", str(run_dir / "locust.html"),
            "--json-file", str(run_dir / "locust"),
            "--only-summary",
            "--stop-timeout", "5",
        ]  # fmt: skip
        if load.rates:
            argv += ["--rates", ",".join(f"{lane}={rate:g}" for lane, rate in load.rates.items())]
        if thresholds.max_fail_ratio is not None:
            argv += ["--max-fail-ratio", f"{thresholds.max_fail_ratio:g}"]
        if thresholds.max_lateness_p95_s is not None:
            argv += ["--max-lateness-p95", f"{thresholds.max_lateness_p95_s:g}"]
        return argv

    @property
    def expected_duration_s(self) -> float:
        """The users' run, then the wait for the last parts: due, plus the grace."""
        schedule = (self.parts - 1) * self.spacing_s
        return self.load.run_time_s + schedule + self.missing_grace_s


@dataclass
class LoadDriver:
    """One Locust run: `start()`, poll `finished()`, then `stop()` (always)."""

    plan: LoadPlan
    run_dir: Path
    processes: list[ServerProcess] = field(default_factory=list)
    started_at: float | None = None
    _requests_read: int = 0
    _requests: list[dict[str, Any]] = field(default_factory=list)

    def start(self) -> None:
        """The master (or the only process) first; workers connect to it on loopback."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / REQUESTS_LOG).touch()
        workers = self.plan.load.workers
        options = self.plan.options(self.run_dir)
        try:
            if workers:
                port = free_port()
                options += ["--master", "--expect-workers", str(workers)]
                options += ["--master-bind-host", "127.0.0.1", "--master-bind-port", str(port)]
            self._spawn(locust_command(*options), "locust")
            for n in range(workers):
                worker = locust_command(
                    "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)
                )
                self._spawn(worker, f"locust-worker-{n + 1}")
        except BaseException:
            self.stop()
            raise
        self.started_at = time.time()

    def _spawn(self, argv: list[str], name: str) -> ServerProcess:
        """Started and waited for; kept in `processes` from the moment it exists."""
        try:
            return start_server(
                argv,
                STARTED,
                timeout_s=START_TIMEOUT_S,
                log_path=self.run_dir / f"{name}.log",
                on_start=self.processes.append,
            )
        except Exception as exc:
            raise LoadError(f"{name} did not start: {exc}") from exc

    @property
    def master(self) -> ServerProcess:
        return self.processes[0]

    def finished(self) -> bool:
        """The master has exited: the load ran and every part was delivered or missing."""
        return bool(self.processes) and not self.master.alive()

    def stop(self) -> int | None:
        """Every Locust process stopped by PID (SIGTERM: Locust writes its statistics)."""
        codes = [process.stop(grace_s=10.0) for process in reversed(self.processes)]
        return codes[-1] if codes else None

    def requests(self) -> list[dict[str, Any]]:
        """Every fixtures request logged so far (complete lines only)."""
        path = self.run_dir / REQUESTS_LOG
        with path.open("rb") as log:
            log.seek(self._requests_read)
            data = log.read()
        complete = data[: data.rfind(b"\n") + 1]
        self._requests_read += len(complete)
        self._requests += [json.loads(line) for line in complete.splitlines() if line.strip()]
        return self._requests

    def summary(self) -> dict[str, Any] | None:
        path = self.run_dir / SUMMARY
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None
