"""The `load` section of results.json: what the load was, and what each lane made of it.

The verdict per lane stays the checks' (from the bot's outbox, the workers' events and
the mock's journal); this section adds Locust's side: webhook requests and failures,
response times, delivery as Locust counted it, the offered rate over time, and the
thresholds Locust's quitting hook judged.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from pydantic import BaseModel, Field

from ..scenario import Load


class LoadLaneResult(BaseModel):
    """One lane under load."""

    lane: str
    fixtures_requests: int = Field(description="Fixtures requests Locust sent to this lane.")
    fixtures_accepted: int = Field(description="...of which the webhook answered 200.")
    correlations: list[str] = Field(
        description="The requests whose parts were judged: answered 200, or queued anyway."
    )
    webhook_requests: int | None = None
    webhook_failures: int | None = None
    webhook_p50_ms: float | None = None
    webhook_p99_ms: float | None = None
    locust_delivered: int | None = Field(default=None, description="Parts Locust saw delivered.")
    locust_missing: int | None = None
    locust_duplicated: int | None = None
    locust_out_of_order: int | None = None
    locust_lateness_p95_s: float | None = Field(
        default=None,
        description="Locust's view: API receipt minus (request sent + seq x spacing), >= 0.",
    )
    fail_ratio: float | None = Field(
        default=None, description="Failed rows (webhook and delivery) over all of the lane's."
    )
    rate: list[int] = Field(
        default_factory=list,
        description="Fixtures requests sent in each second since the load started.",
    )


class LoadResult(BaseModel):
    """The load as run (scaled), Locust's exit status, and the lanes' figures."""

    load: dict[str, Any]
    exit_code: int | None = Field(description="Locust's (1: a threshold was exceeded).")
    error: str | None = Field(
        default=None, description="Locust ended without its figures: the load did not run."
    )
    exceeded: list[str] = Field(
        default_factory=list, description="Thresholds exceeded, one line per lane and bound."
    )
    lanes: list[LoadLaneResult]

    def lane(self, name: str) -> LoadLaneResult | None:
        return next((lane for lane in self.lanes if lane.lane == name), None)

    def exceeded_by(self, lane: str) -> list[str]:
        return [line for line in self.exceeded if line.startswith(f"{lane}: ")]


def expected_requests(
    requests: list[dict[str, Any]], queued: dict[str, set[str]]
) -> dict[str, list[str]]:
    """Per lane, the requests whose parts must all arrive: those the webhook accepted, and
    any it queued although its answer was lost (a timeout), in the order they were sent."""
    expected: dict[str, list[str]] = {lane: [] for lane in queued}
    for record in sorted(requests, key=lambda r: r["sent_at"]):
        lane, correlation = record["lane"], record["correlation"]
        if record["status"] == 200 or correlation in queued.get(lane, set()):
            expected.setdefault(lane, []).append(correlation)
    return expected


def per_second(times: list[float], origin: float) -> list[int]:
    """How many of `times` fall in each whole second since `origin`."""
    bins = Counter(max(0, math.floor(t - origin)) for t in times)
    return [bins.get(second, 0) for second in range(max(bins, default=-1) + 1)]


def load_result(
    load: Load,
    requests: list[dict[str, Any]],
    expected: dict[str, list[str]],
    summary: dict[str, Any] | None,
    exit_code: int | None,
    origin: float,
) -> LoadResult:
    """The section, from Locust's request log and summary (None: Locust wrote none)."""
    figures = (summary or {}).get("lanes", {})
    lanes = []
    for name, correlations in expected.items():
        mine = [r for r in requests if r["lane"] == name]
        seen = figures.get(name, {})
        lanes.append(
            LoadLaneResult(
                lane=name,
                fixtures_requests=len(mine),
                fixtures_accepted=sum(1 for r in mine if r["status"] == 200),
                correlations=correlations,
                webhook_requests=seen.get("webhook_requests"),
                webhook_failures=seen.get("webhook_failures"),
                webhook_p50_ms=seen.get("webhook_p50_ms"),
                webhook_p99_ms=seen.get("webhook_p99_ms"),
                locust_delivered=seen.get("delivered"),
                locust_missing=seen.get("missing"),
                locust_duplicated=seen.get("duplicated"),
                locust_out_of_order=seen.get("out_of_order"),
                locust_lateness_p95_s=seen.get("lateness_p95_s"),
                fail_ratio=seen.get("fail_ratio"),
                rate=per_second([r["sent_at"] for r in mine], origin),
            )
        )
    error = None
    if summary is None:
        error = f"Locust wrote no figures (exit status {exit_code}); see locust.log"
    return LoadResult(
        load=load.model_dump(mode="json"),
        exit_code=exit_code,
        error=error,
        exceeded=list((summary or {}).get("exceeded", [])),
        lanes=lanes,
    )
