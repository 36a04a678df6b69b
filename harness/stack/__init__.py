"""How the system comes up: the embedded broker and the local stack of real processes."""

from .local import Lane, LocalStack, sigterm_as_interrupt
from .spec import LaneSpec, StackSpec

__all__ = ["Lane", "LaneSpec", "LocalStack", "StackSpec", "sigterm_as_interrupt"]
