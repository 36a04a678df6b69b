"""Markdown for an OpenAPI document: each operation, its parameters and answers, and the
schemas of its bodies, drawn from the document the app itself serves at /openapi.json."""

from __future__ import annotations

from typing import Any

from ref_schema import Model, cell, first_paragraph, model_section, type_of

METHODS = ("get", "put", "post", "patch", "delete")


def _body(operation: dict[str, Any], prefix: str) -> str:
    content = operation.get("requestBody", {}).get("content", {})
    return ", ".join(type_of(media.get("schema", {}), prefix) for media in content.values())


def _answers(operation: dict[str, Any], prefix: str) -> str:
    said = []
    for status, answer in operation.get("responses", {}).items():
        schemas = [
            type_of(media["schema"], prefix)
            for media in answer.get("content", {}).values()
            if media.get("schema")
        ]
        what = first_paragraph(answer.get("description"))
        said.append(f"**{status}** {what}" + (f" ({', '.join(schemas)})" if schemas else ""))
    return "<br>".join(cell(s) for s in said)


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in document.get("paths", {}).items()
        for method, operation in item.items()
        if method in METHODS
    ]


def openapi_reference(document: dict[str, Any], *, level: int = 2, prefix: str = "schema-") -> str:
    """Every operation, then every schema (anchored `prefix` + name) the operations name."""
    lines: list[str] = []
    for method, path, operation in operations(document):
        title = operation.get("summary") or f"{method} {path}"
        lines += [f"{'#' * level} `{method} {path}`", "", f"**{title}.**", ""]
        if operation.get("description"):
            lines += [operation["description"].strip(), ""]
        parameters = operation.get("parameters", [])
        if parameters:
            lines += ["| parameter | in | type | meaning |", "|---|---|---|---|"]
            for parameter in parameters:
                lines.append(
                    f"| `{parameter['name']}` | {parameter.get('in', '')} "
                    f"| {cell(type_of(parameter.get('schema', {}), prefix))} "
                    f"| {cell(parameter.get('description', ''))} |"
                )
            lines.append("")
        body = _body(operation, prefix)
        if body:
            lines += [f"Body: {body}.", ""]
        lines += [f"Answers: {_answers(operation, prefix)}", ""]
    schemas = document.get("components", {}).get("schemas", {})
    if schemas:
        lines += [f"{'#' * level} Schemas", ""]
        for name in sorted(schemas):
            lines += model_section(Model(name, schemas[name]), level + 1, False, prefix)
    return "\n".join(lines)
