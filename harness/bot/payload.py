"""What Meta posts to the webhook: the notification's shape, validated before anything is done.

The webhook validates with these models and the OpenAPI document describes them, so both
import them from here and the document cannot drift from the code.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import InputError


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Text(_Open):
    body: str


class Message(_Open):
    id: str = Field(min_length=1)
    sender: str = Field(alias="from", min_length=1)
    type: str
    timestamp: str | None = None
    text: Text | None = None


class Status(_Open):
    id: str
    status: str
    recipient_id: str | None = None
    biz_opaque_callback_data: str | None = None


class Metadata(_Open):
    phone_number_id: str


class MessagesValue(_Open):
    messaging_product: Literal["whatsapp"]
    metadata: Metadata
    messages: list[Message] = Field(default_factory=list)
    statuses: list[Status] = Field(default_factory=list)


class Change(_Open):
    field: str
    value: Any


class Entry(_Open):
    id: str
    changes: list[Change]


class Notification(_Open):
    object: Literal["whatsapp_business_account"]
    entry: list[Entry]


class ShapeError(InputError):
    """The body is JSON but not Meta's notification shape; the message names where."""


def messages_values(data: object) -> list[MessagesValue]:
    """The `messages` changes' values, validated; other fields (account updates...) skipped."""
    try:
        notification = Notification.model_validate(data)
    except ValidationError as exc:
        raise ShapeError(_first_problem(exc, ())) from None
    values = []
    for i, entry in enumerate(notification.entry):
        for j, change in enumerate(entry.changes):
            if change.field != "messages":
                continue
            try:
                values.append(MessagesValue.model_validate(change.value))
            except ValidationError as exc:
                raise ShapeError(_first_problem(exc, ("entry", i, "changes", j, "value"))) from None
    return values


def _first_problem(exc: ValidationError, prefix: tuple[str | int, ...]) -> str:
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in (*prefix, *first["loc"])) or "(body)"
    return f"not a whatsapp_business_account notification: {where}: {first['msg']}"


# Meta's webhook notifications are at most 3 MB; a larger body is refused unread (413), so
# a client cannot make the bot hold an unbounded body in memory before its signature fails.
MAX_BODY_BYTES = 3 * 1024 * 1024
