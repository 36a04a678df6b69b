"""The base of every table in a scenario, and the types its tables share."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

# A time within a day, in seconds: a fault's time, an early bound.
Seconds = Annotated[float, Field(ge=0, le=24 * 3600)]


class Strict(BaseModel):
    """An unknown key is an error (a typo must not pass as a default), and a scenario read
    is final: changing one makes a copy."""

    model_config = ConfigDict(extra="forbid", frozen=True)
