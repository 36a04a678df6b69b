"""Graph API errors in Meta's exact shape, and the catalogue of codes the mock uses.

Message is "(#code) title" as Meta writes it; clients key on `code` and
`error_data.details`, so those carry the meaning.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass

# code -> (type, title, default details)
CATALOGUE: dict[int, tuple[str, str, str]] = {
    100: ("OAuthException", "Invalid parameter", "Invalid parameter"),
    190: (
        "OAuthException",
        "Invalid OAuth access token - Cannot parse access token",
        "The access token is missing, malformed or not valid for this app",
    ),
    2500: ("OAuthException", "Unknown path components", "Unknown path components"),
    130429: (
        "OAuthException",
        "Rate limit hit",
        "Message failed to send because there were too many messages sent from this phone "
        "number in a short period of time",
    ),
    131000: (
        "OAuthException",
        "Something went wrong",
        "Message failed to send due to an unknown error. Try again later",
    ),
    131016: (
        "OAuthException",
        "Service unavailable",
        "A service is temporarily unavailable. Please check our status page and try again later",
    ),
    131026: (
        "OAuthException",
        "Message undeliverable",
        "Unable to deliver message. The recipient may not be a WhatsApp user",
    ),
    131047: (
        "OAuthException",
        "Re-engagement message",
        "Message failed to send because more than 24 hours have passed since the customer "
        "last replied to this number",
    ),
    131056: (
        "OAuthException",
        "(Business Account, Consumer Account) pair rate limit hit",
        "Message failed to send because there were too many messages sent from this phone "
        "number to the same phone number in a short period of time",
    ),
}


def title_of(code: int) -> str:
    return CATALOGUE.get(code, ("", f"Error {code}", ""))[1]


def new_fbtrace_id() -> str:
    """A trace id shaped like Meta's (base64url, ~23 characters)."""
    return base64.urlsafe_b64encode(os.urandom(17)).decode().rstrip("=")


@dataclass(slots=True)
class GraphError(Exception):
    """An error answer of the Graph API; `body()` renders Meta's JSON object."""

    code: int
    http_status: int = 400
    details: str | None = None
    message: str | None = None
    error_subcode: int | None = None
    with_error_data: bool = True

    def body(self, fbtrace_id: str) -> dict:
        kind, title, default_details = CATALOGUE.get(
            self.code, ("OAuthException", f"Error {self.code}", f"Error {self.code}")
        )
        error: dict = {
            "message": self.message or f"(#{self.code}) {title}",
            "type": kind,
            "code": self.code,
        }
        if self.with_error_data:
            error["error_data"] = {
                "messaging_product": "whatsapp",
                "details": self.details or default_details,
            }
        if self.error_subcode is not None:
            error["error_subcode"] = self.error_subcode
        error["fbtrace_id"] = fbtrace_id
        return {"error": error}


def invalid_parameter(details: str) -> GraphError:
    return GraphError(code=100, http_status=400, details=details)


def invalid_token() -> GraphError:
    """Meta answers an unusable token with 401, code 190 and no error_data."""
    return GraphError(
        code=190,
        http_status=401,
        message="Invalid OAuth access token - Cannot parse access token",
        with_error_data=False,
    )


def unknown_object(object_id: str, method: str = "post") -> GraphError:
    return GraphError(
        code=100,
        http_status=400,
        message=(
            f"Unsupported {method} request. Object with ID '{object_id}' does not exist, "
            "cannot be loaded due to missing permissions, or does not support this operation."
        ),
        details=f"Unknown phone number ID {object_id!r}",
    )


def unknown_path(path: str) -> GraphError:
    return GraphError(
        code=2500,
        http_status=400,
        message=f"Unknown path components: {path}",
        with_error_data=False,
    )
