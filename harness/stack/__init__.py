"""How the system comes up: the local stack of real processes, or compose containers."""

from pathlib import Path

from .backend import BACKENDS, Backend, Stack
from .local import Lane, LocalStack
from .spec import LaneSpec, StackSpec


def make_stack(backend: Backend, spec: StackSpec, run_dir: Path) -> Stack:
    """A stack of `backend` for `spec`, not started yet."""
    if backend == "compose":
        from .compose import ComposeStack  # the docker SDK is imported only for compose runs

        return ComposeStack(spec, run_dir)
    return LocalStack(spec, run_dir)


__all__ = [
    "BACKENDS",
    "Backend",
    "Lane",
    "LaneSpec",
    "LocalStack",
    "Stack",
    "StackSpec",
    "make_stack",
]
