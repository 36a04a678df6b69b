"""Every error the harness raises on purpose, under one root that carries the exit code.

    HarnessError                 exit 2: the harness could not do what it was asked
    ├── InputError (ValueError)  what it was given is wrong: a scenario, a setting, a lane,
    │                            a run directory, a repository to `init`; the message says
    │                            what was wrong and what is allowed
    └── RunError (RuntimeError)  a part could not start, or stopped: a broker, a server, a
        │                        lane's process, an image, a compose project, a load run
        └── DeadlineExceeded     a condition did not hold in time (also an AssertionError,
                                 so a test that waits reads as a failed assertion)

Each module keeps its own class (`ScenarioError`, `BrokerError`, ...) beneath one of these,
so a caller can still catch exactly one kind; the CLI catches `HarnessError` once and exits
with its `exit_code`. The second base (`ValueError`, `RuntimeError`) keeps every `except`
written against the standard classes working.
"""

from __future__ import annotations


class HarnessError(Exception):
    """The root: the CLI says the message on one line and exits with `exit_code`."""

    exit_code: int = 2


class InputError(HarnessError, ValueError):
    """What the harness was given is wrong; nothing was started."""


class RunError(HarnessError, RuntimeError):
    """A part of the run could not start, or stopped while it ran."""
