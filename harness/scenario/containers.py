"""An external lane in containers: an image (or a build) with commands, or services of the
team's own compose file.

These tables only say where the bot's containers come from; the compose backend runs them
(`harness.stack.own_services`). The local backend refuses them: it runs commands, not images.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Protocol

from pydantic import Field, field_validator

from .errors import ScenarioError
from .strict import Strict

ServiceName = Annotated[str, Field(min_length=1, pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")]


class Build(Strict):
    """A build context and its Dockerfile; the harness builds it with no registry, its
    `BASE` build argument set to the harness's offline base image."""

    context: str = Field(description="The build context (relative: to the scenario's file).")
    dockerfile: str = Field(
        default="Dockerfile", description="The Dockerfile, relative to the context."
    )


class ComposeServices(Strict):
    """Services of the team's own compose file: the webhook and the Celery workers.

    The first worker is the lane's (the pool under test: the harness sets its pool and
    concurrency); the others run as the file has them, on the lane's broker.
    """

    file: str = Field(description="The compose file (relative: to the scenario's file).")
    webhook: ServiceName = Field(description="The webhook's service.")
    workers: list[ServiceName] = Field(
        min_length=1, description="The worker services; the first is the lane's."
    )

    @field_validator("workers")
    @classmethod
    def _distinct(cls, workers: list[str]) -> list[str]:
        if len(set(workers)) != len(workers):
            raise ValueError(f"workers {workers} name a service twice")
        return workers


class _Lane(Protocol):
    """A scenario's lane or a stack's: its name and its external table."""

    @property
    def name(self) -> str: ...
    @property
    def external(self) -> _External | None: ...


class _External(Protocol):
    @property
    def in_containers(self) -> bool: ...


def local_lanes_only(lanes: Iterable[_Lane]) -> None:
    """The local backend runs commands, not images: a lane in containers is refused there."""
    for lane in lanes:
        if lane.external is not None and lane.external.in_containers:
            raise ScenarioError(
                f"lane {lane.name}: `image`, `build` and `compose` run on containers: "
                "use --backend compose, or give the lane local commands"
            )
