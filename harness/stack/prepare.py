"""Before anything starts: every lane's broker answers and its environment exists.

A stack that would fail on one lane's broker URL or Celery release fails here, with
the lane and the field named, before a single process is started.
"""

from __future__ import annotations

from ..errors import InputError
from . import broker as brokers
from . import rabbitmq
from .envs import EnvError, ensure_env
from .spec import StackSpec


class LaneError(InputError):
    """A lane that cannot run; the message names the lane and the field."""


def prepare(spec: StackSpec) -> StackSpec:
    """The spec with each pinned lane's interpreter set; LaneError for the first bad lane."""
    lanes = []
    for lane in spec.lanes:
        if lane.broker_url is not None:
            try:
                if lane.broker == "rabbitmq":
                    rabbitmq.probe(lane.broker_url)
                else:
                    brokers.external(lane.broker_url)
            except brokers.BrokerError as exc:
                raise LaneError(f"lane {lane.name}: broker_url: {exc}") from None
        if lane.broker == "rabbitmq" and lane.broker_url is None:
            try:
                rabbitmq.server_binary()
            except brokers.BrokerError as exc:
                raise LaneError(f"lane {lane.name}: broker: {exc}") from None
        if lane.pins and lane.python is None:
            try:
                lane = lane.model_copy(update={"python": ensure_env(lane.pins, lane.name)})
            except EnvError as exc:
                raise LaneError(str(exc)) from None
        lanes.append(lane)
    return spec.model_copy(update={"lanes": lanes})
