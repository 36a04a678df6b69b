"""A fault as the nemesis did it: what was asked, to which lane or target, when, and how
it ended.

The nemesis writes one `FaultRecord` per fault; the history keeps them beside the
messages (history.jsonl), and results.json lists them. The record is flat, the fault's
own settings beside what happened, as results.json has held faults since schema 1, so
every stored run reads into it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from mock_meta_api.config import FaultAnswer, LatencyModel, PairRate, Throughput

from .scenario import FaultAction, NetTarget


class FaultRecord(BaseModel):
    """One fault injected (or attempted) during a run. Times are wall clock (epoch s)."""

    # Settings a later scenario model carries beyond these are not part of the record.
    model_config = ConfigDict(extra="ignore")

    action: FaultAction
    lane: str | None = Field(default=None, description="The lane it struck; None: the stack.")
    target: NetTarget | None = Field(default=None, description="net-*: broker or api.")
    at_s: float | None = None
    after_received: int | None = None
    after_sent: int | None = None
    grace_s: float | None = None
    duration_s: float | None = None
    keep_data: bool | None = None
    delay_s: float | None = None
    answer: FaultAnswer | None = None
    latency: LatencyModel | None = None
    throughput: Throughput | None = None
    pair_rate: PairRate | None = None

    scheduled_at: float | None = Field(
        default=None,
        description="When it was due: at_s after the answers, or when its trigger fired "
        "(None: the trigger never fired).",
    )
    begun_at: float | None = Field(
        default=None, description="When it began (absent in results written before it was)."
    )
    done_at: float | None = Field(default=None, description="When it was done, or gave up.")

    pid: int | None = Field(
        default=None,
        description="The worker or broker it acted on (kill-pool-process: the pool process).",
    )
    worker_pid: int | None = Field(
        default=None, description="kill-pool-process: the worker whose pool process it killed."
    )
    part: int | None = Field(
        default=None,
        description="kill-pool-process: the seq of the part the pool process was running "
        "(None: it was idle).",
    )
    new_pid: int | None = Field(default=None, description="The one started in its place.")
    pids: list[int] | None = Field(default=None, description="thaw-worker: the workers thawed.")
    exit_code: int | None = Field(default=None, description="The stopped worker's.")
    down_s: float | None = Field(default=None, description="Broker faults: how long it was down.")
    in_effect_from: float | None = Field(
        default=None,
        description="api-* and the net-* windows: when the mock surely had the window's "
        "behaviours, or the proxy its mode (it had answered the switch); sends between "
        "begun_at and this may have met either.",
    )
    in_effect_until: float | None = Field(
        default=None,
        description="api-* and the net-* windows: the last moment the window was surely "
        "still in force (the switch back had not been asked yet).",
    )
    connections: int | None = Field(
        default=None,
        description="net-*: connections the proxy had accepted by the window's end "
        "(net-half-open: the open connections it left half-open).",
    )
    cancelled: bool = Field(default=False, description="The run was stopping: nothing failed.")
    error: str | None = Field(default=None, description="Why it could not be done.")

    @property
    def at(self) -> float | None:
        """When it struck: when it began, else (older results) when it was done."""
        return self.begun_at if self.begun_at is not None else self.done_at

    @property
    def failed(self) -> bool:
        return bool(self.error)
