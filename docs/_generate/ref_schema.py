"""Markdown tables from a JSON Schema: one section per model, one row per field.

Pydantic writes every field's type, default, bounds and `Field(description=...)` into its
JSON Schema, so a page drawn from it names exactly the fields the code accepts: a field
added, renamed or removed changes the page at the next build.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

Schema = dict[str, Any]


@dataclass
class Model:
    """A model met while walking the schema, and the places (TOML tables, JSON keys) it sits."""

    name: str
    schema: Schema
    places: list[str] = field(default_factory=list)


def ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def anchor(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def cell(text: str) -> str:
    """Text for one table cell: one line, pipes escaped."""
    return re.sub(r"\s*\n\s*", " ", text).replace("|", "\\|").strip()


def first_paragraph(text: str | None) -> str:
    return (text or "").strip().split("\n\n", 1)[0]


def _bounds(prop: Schema) -> list[str]:
    said = []
    for key, sign in (
        ("minimum", "≥"),
        ("exclusiveMinimum", ">"),
        ("maximum", "≤"),
        ("exclusiveMaximum", "<"),
    ):
        if key in prop:
            said.append(f"{sign} {prop[key]:g}")
    if "minLength" in prop:
        said.append(f"at least {prop['minLength']} characters")
    if "maxLength" in prop:
        said.append(f"at most {prop['maxLength']} characters")
    if "minItems" in prop:
        said.append(f"at least {prop['minItems']}")
    if "maxItems" in prop:
        said.append(f"at most {prop['maxItems']}")
    if "pattern" in prop:
        said.append(f"matches `{prop['pattern']}`")
    return said


def type_of(prop: Schema, prefix: str = "") -> str:
    """A field's type as Markdown: models link to their section (anchors `prefix` + name)."""
    if "$ref" in prop:
        name = ref_name(prop["$ref"])
        return f"[{name}](#{anchor(prefix + name)})"
    if "const" in prop:
        return f"`{json.dumps(prop['const'])}`"
    if "enum" in prop:
        return " \\| ".join(f"`{json.dumps(v)}`" for v in prop["enum"])
    for key in ("anyOf", "oneOf", "allOf"):
        if key in prop:  # null is how a field left unset reads: the default column says so
            kept = [option for option in prop[key] if option.get("type") != "null"]
            options = [type_of(option, prefix) for option in kept]
            return " or ".join(dict.fromkeys(options))
    kind = prop.get("type")
    if kind == "array":
        items = prop.get("items")
        inner = type_of(items, prefix) if items else "any"
        shown = f"list of {inner}"
    elif kind == "object":
        values = prop.get("additionalProperties")
        shown = f"table of {type_of(values, prefix)}" if isinstance(values, dict) else "table"
    elif kind is None:
        shown = "any"
    else:
        shown = {"number": "number", "integer": "integer", "string": "string"}.get(kind, kind)
    bounds = _bounds(prop)
    return f"{shown} ({', '.join(bounds)})" if bounds else shown


def _model_ref(prop: Schema) -> str | None:
    return prop.get("$ref") or next((o["$ref"] for o in prop.get("anyOf", []) if "$ref" in o), None)


def default_of(name: str, prop: Schema, required: set[str]) -> str:
    if name in required:
        return "**required**"
    if "default" in prop:
        default = prop["default"]
        if default is None:
            return "unset"
        if isinstance(default, dict) and _model_ref(prop):
            return "its fields' defaults"
        return f"`{json.dumps(default)}`"
    if _model_ref(prop):
        return "its fields' defaults"
    if prop.get("type") == "array":
        return "`[]`"
    if prop.get("type") == "object":
        return "`{}`"
    return "unset"


def _refs(prop: Any) -> Iterator[str]:
    """Every model a field's type names, in order."""
    if isinstance(prop, dict):
        if "$ref" in prop:
            yield ref_name(prop["$ref"])
        for value in prop.values():
            yield from _refs(value)
    elif isinstance(prop, list):
        for value in prop:
            yield from _refs(value)


def _place(parent: str, name: str, prop: Schema) -> str:
    path = f"{parent}.{name}" if parent else name
    return f"[[{path}]]" if prop.get("type") == "array" else f"[{path}]"


def walk(root: Schema, defs: dict[str, Schema], root_name: str) -> list[Model]:
    """The root model and every model it reaches, in the order a reader meets them."""
    models: dict[str, Model] = {root_name: Model(root_name, root, ["the top level"])}
    queue = [(root_name, "")]
    while queue:
        name, path = queue.pop(0)
        for field_name, prop in models[name].schema.get("properties", {}).items():
            for target in _refs(prop):
                if target not in defs:
                    continue
                place = _place(path, field_name, prop)
                model = models.setdefault(target, Model(target, defs[target]))
                if place not in model.places:
                    model.places.append(place)
                    queue.append((target, place.strip("[]")))
    return list(models.values())


def field_rows(model: Schema, prefix: str = "") -> list[str]:
    required = set(model.get("required", []))
    rows = ["| field | type | default | meaning |", "|---|---|---|---|"]
    for name, prop in model.get("properties", {}).items():
        kind = cell(type_of(prop, prefix))
        default = cell(default_of(name, prop, required))
        rows.append(f"| `{name}` | {kind} | {default} | {cell(prop.get('description', ''))} |")
    return rows


def model_section(model: Model, level: int, show_places: bool, prefix: str = "") -> list[str]:
    lines = [f"{'#' * level} {model.name} {{#{anchor(prefix + model.name)}}}", ""]
    if show_places and model.places:
        lines += [f"In {', '.join(f'`{p}`' for p in model.places)}.", ""]
    description = model.schema.get("description")
    if description:
        lines += [description.strip(), ""]
    if model.schema.get("properties"):
        lines += [*field_rows(model.schema, prefix), ""]
    elif "enum" in model.schema or "anyOf" in model.schema or "oneOf" in model.schema:
        lines += [f"One of: {type_of(model.schema, prefix)}.", ""]
    return lines


def models_reference(
    root: Schema, root_name: str, *, level: int = 2, show_places: bool = True, prefix: str = ""
) -> str:
    """Every model `root` reaches, each with its table of fields; anchors are `prefix` and
    the model's name, so two schemas on one page keep theirs apart."""
    defs = root.get("$defs", {})
    lines: list[str] = []
    for model in walk(root, defs, root_name):
        lines += model_section(model, level, show_places, prefix)
    return "\n".join(lines)


def all_fields(root: Schema, root_name: str) -> list[tuple[str, str]]:
    """(model, field) for every field the root reaches: what a page must name."""
    defs = root.get("$defs", {})
    return [
        (model.name, name)
        for model in walk(root, defs, root_name)
        for name in model.schema.get("properties", {})
    ]
