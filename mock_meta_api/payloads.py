"""The `/messages` request body, validated the way the Graph API does it.

The pydantic models are the single description of the payload: they validate
requests and feed the OpenAPI document. A validation failure becomes Meta's
code 100 error with a `details` sentence in Graph's wording ("The parameter
to is required.", "Param text['body'] must be at most 4096 characters long.").
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, get_args

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import GraphError, invalid_parameter

MAX_TEXT_BODY = 4096
MAX_CALLBACK_DATA = 512
_PHONE_SEPARATORS = re.compile(r"[\s\-().]")
_PHONE_DIGITS = re.compile(r"^\+?\d{5,15}$", re.ASCII)  # ASCII digits only

MessageType = Literal[
    "audio", "contacts", "document", "image", "interactive", "location",
    "reaction", "sticker", "template", "text", "video",
]  # fmt: skip
MESSAGE_TYPES: tuple[str, ...] = get_args(MessageType)


class Lenient(BaseModel):
    """Graph ignores fields it does not know; so do we."""

    model_config = ConfigDict(extra="allow")


class Text(Lenient):
    body: Annotated[str, Field(min_length=1, max_length=MAX_TEXT_BODY)]
    preview_url: bool = False


class Language(Lenient):
    code: Annotated[str, Field(min_length=1)]
    policy: Literal["deterministic"] = "deterministic"


class Template(Lenient):
    name: Annotated[str, Field(min_length=1, max_length=512)]
    language: Language
    components: list[dict[str, Any]] = Field(default_factory=list)


class Interactive(Lenient):
    type: Literal[
        "button", "list", "product", "product_list", "cta_url", "flow", "location_request_message"
    ]
    action: dict[str, Any]
    body: dict[str, Any] | None = None
    header: dict[str, Any] | None = None
    footer: dict[str, Any] | None = None


class Context(Lenient):
    message_id: Annotated[str, Field(min_length=1)]


class SendMessage(Lenient):
    """POST /{version}/{phone_number_id}/messages: send one message."""

    messaging_product: Literal["whatsapp"]
    recipient_type: Literal["individual", "group"] = "individual"
    to: str
    type: MessageType = "text"
    text: Text | None = None
    template: Template | None = None
    interactive: Interactive | None = None
    context: Context | None = None
    biz_opaque_callback_data: Annotated[str, Field(max_length=MAX_CALLBACK_DATA)] | None = None

    @field_validator("to")
    @classmethod
    def _phone_number(cls, value: str) -> str:
        if not _PHONE_DIGITS.match(_PHONE_SEPARATORS.sub("", value)):
            raise ValueError("must be a phone number in international format (5-15 digits)")
        return value

    @model_validator(mode="after")
    def _object_for_type(self) -> SendMessage:
        """Graph requires the object named by `type` (text, template, image, ...)."""
        content = getattr(self, self.type, None)
        if content is None:
            raise GraphSentence(f"The parameter {self.type} is required.")
        if self.type == "contacts":  # Graph's one array-valued message object
            if not isinstance(content, list):
                raise GraphSentence("Param contacts must be an array.")
        elif not isinstance(content, BaseModel | dict):
            raise GraphSentence(f"Param {self.type} must be a JSON object.")
        return self

    @property
    def wa_id(self) -> str:
        return re.sub(r"\D", "", self.to)

    @property
    def body_text(self) -> str | None:
        return self.text.body if self.text is not None else None


class MarkRead(Lenient):
    """POST .../messages with status=read: mark an inbound message as read."""

    messaging_product: Literal["whatsapp"]
    status: Literal["read"]
    message_id: Annotated[str, Field(min_length=1)]


class GraphSentence(ValueError):
    """A validation failure whose message is already Graph's full sentence."""


def graph_param(loc: tuple[int | str, ...]) -> str:
    """("text", "body") -> "text['body']", Graph's notation for nested params."""
    head, *rest = [str(part) for part in loc] or ["body"]
    return head + "".join(f"['{part}']" for part in rest)


def details_for(error: dict[str, Any]) -> str:
    """Graph's sentence for one pydantic error."""
    param = graph_param(error["loc"])
    kind = error["type"]
    ctx = error.get("ctx") or {}
    given = error.get("input")
    if kind == "missing" or (kind == "string_too_short" and ctx.get("min_length") == 1):
        return f"The parameter {param} is required."
    if kind == "string_too_long":
        return f"Param {param} must be at most {ctx['max_length']} characters long."
    if kind == "literal_error":
        return f"Param {param} must be one of {{{ctx['expected']}}} - got {given!r}."
    if kind == "string_type":
        return f"Param {param} must be a string."
    if kind in ("bool_type", "bool_parsing"):
        return f"Param {param} must be a boolean."
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"Param {param} must be a JSON object."
    if kind == "list_type":
        return f"Param {param} must be an array."
    if kind == "value_error":
        cause = ctx.get("error")
        if isinstance(cause, GraphSentence):
            return str(cause)
        return f"Param {param} {error['msg'].removeprefix('Value error, ')}."
    return f"Param {param} is invalid: {error['msg']}."


def parse_message(payload: Any) -> SendMessage | MarkRead:
    """Validate a decoded JSON body or raise the GraphError Meta would answer."""
    if not isinstance(payload, dict):
        raise invalid_parameter("The request body must be a JSON object.")
    model: type[SendMessage | MarkRead] = MarkRead if "status" in payload else SendMessage
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise invalid_parameter(details_for(exc.errors(include_url=False)[0])) from None


def decode_json(raw: bytes) -> Any:
    """Decode a request body; a body that is not JSON is Graph's code 100."""
    if not raw:
        raise invalid_parameter("The request body is empty; send a JSON object.")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise invalid_parameter(f"The request body is not valid JSON: {exc}") from None


__all__ = ["MESSAGE_TYPES", "GraphError", "MarkRead", "SendMessage", "decode_json", "parse_message"]
