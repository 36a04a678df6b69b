"""The scenario's JSON Schema, made from its models: for editors, and the reference pages.

Every field carries its meaning, type, bounds and default; faults are a union on
`action`, so the schema says which fields each action takes. `[api]` is the mock's
configuration, so its schema is the mock's `Behaviours`.
"""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import GenerateJsonSchema, models_json_schema
from pydantic_core import core_schema

from mock_meta_api.config import Behaviours

from .base import Scenario

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


class _FactoryDefaults(GenerateJsonSchema):
    """A default made by a factory (an empty table or list, a table of defaults) is a
    default too: the schema shows it, as it shows every other."""

    def get_default_value(self, schema: core_schema.WithDefaultSchema) -> Any:
        factory = schema.get("default_factory")
        if factory is not None and not schema.get("default_factory_takes_data"):
            return factory()  # type: ignore[call-arg]
        return super().get_default_value(schema)


def scenario_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) a scenario file's TOML, read as JSON, must meet."""
    refs, schema = models_json_schema(
        [(Scenario, "validation"), (Behaviours, "validation")],
        title="Scenario",
        schema_generator=_FactoryDefaults,
    )
    definitions = schema["$defs"]
    root = definitions.pop(refs[(Scenario, "validation")]["$ref"].rsplit("/", 1)[-1])
    api = root["properties"]["api"]
    root["properties"]["api"] = {
        "$ref": refs[(Behaviours, "validation")]["$ref"],
        "description": api["description"],
        "default": api["default"],
    }
    return {"$schema": SCHEMA_DIALECT, **root, "$defs": definitions}
