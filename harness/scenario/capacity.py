"""The `[capacity]` table of a scenario: how far and how finely a capacity run searches."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from .strict import Strict


class CapacitySettings(Strict):
    """Bounds on the search: every step is one load of `load_s`, at most `max_steps` each."""

    load_s: Annotated[float, Field(gt=0, le=600)] = Field(
        default=70.0,
        description="Each step's load: fixtures requests at the step's rate for this long.",
    )
    start: Annotated[float, Field(gt=0, le=10)] = Field(
        default=0.8,
        description="The first step's rate, as a share of the configuration's theoretical "
        "bound (concurrency / mean send time, the API's throughput).",
    )
    growth: Annotated[float, Field(gt=1, le=10)] = Field(
        default=1.5,
        description="Until a step is not kept on time, the next rate is this times the last "
        "(and the last divided by it while none is).",
    )
    resolution: Annotated[float, Field(gt=0, le=10)] = Field(
        default=0.25,
        description="Bisect until the lowest rate not kept on time is within this share "
        "above the highest kept on time.",
    )
    max_steps: Annotated[int, Field(ge=1, le=20)] = Field(
        default=5, description="Steps per configuration, the repeat included."
    )
    budget_s: Annotated[float, Field(gt=0, le=24 * 3600)] = Field(
        default=600.0,
        description="No round starts that would end past this, counted from the run's start "
        "(each round is taken to last as long as the longest so far).",
    )
    repeat: bool = Field(
        default=True,
        description="Run the knee's step once more: the knee's run-to-run spread.",
    )
    noise_s: Annotated[float, Field(ge=0, le=3600)] = Field(
        default=0.5,
        description="Two p95 latenesses of one step closer than this are equal; widened to "
        "what a repeat measures. Scales with the run.",
    )
    max_rate: Annotated[float, Field(gt=0, le=1000)] = Field(
        default=20.0, description="No step offers more fixtures requests per second than this."
    )
    concurrencies: list[Annotated[int, Field(ge=1, le=1000)]] = Field(
        default_factory=list,
        description="The grid: every lane of a pool other than solo, once per concurrency "
        "(named POOL-N). Empty: the lanes as written.",
    )

    def scaled(self, x: float) -> CapacitySettings:
        """Durations times `x`, the rate bound divided by it."""
        return self.model_copy(
            update={
                "load_s": self.load_s * x,
                "noise_s": self.noise_s * x,
                "max_rate": self.max_rate / x,
            }
        )
