"""A scenario that cannot run, said in one error that names the file, the field and the value."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from mock_meta_api.config import describe_errors

from ..errors import InputError
from .faults import explain


class ScenarioError(InputError):
    """A scenario that cannot run; the message names the file, the field and what is allowed."""


def scenario_error(exc: ValidationError, source: str, data: Any = None) -> ScenarioError:
    """Pydantic's errors as the scenario's sentences, one line each, under `source`.

    `data` is what was validated (a fault's sentence quotes the fault as given).
    """
    said = (explain(item, data) for item in exc.errors(include_url=False))
    return ScenarioError(describe_errors([item for item in said if item is not None], source))
