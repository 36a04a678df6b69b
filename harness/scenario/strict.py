"""The base of every table in a scenario."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """An unknown key is an error (a typo must not pass as a default), and a scenario read
    is final: changing one makes a copy."""

    model_config = ConfigDict(extra="forbid", frozen=True)
