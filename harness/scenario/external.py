"""A lane's `external` table: how to run and read a bot of one's own instead of the replica.

A lane names the commands of its webhook and worker (placeholders the harness fills, such
as `{broker_url}` and `{port}`), or the URL of a webhook already running; the stack
starts them (`harness.stack.external`). On the compose backend the same commands run in
an `image` (or a `build`), or the lane names services of the team's own `compose` file
(`harness.scenario.containers`).
"""

from __future__ import annotations

import re
import shlex
import string
from typing import Annotated

from pydantic import Field, field_validator, model_validator

from .containers import Build, ComposeServices
from .strict import Strict

# What a command, an `env` value or a `cwd` may name in braces.
PLACEHOLDERS = {
    "python": "the harness's Python interpreter",
    "broker_url": "the lane's broker",
    "api_url": "the mock Cloud API's base URL",
    "phone_number_id": "the lane's business phone number id",
    "token": "the Cloud API access token",
    "app_secret": "the app secret that signs webhook requests",
    "verify_token": "the webhook's verify token",
    "port": "a free port for the webhook",
    "pool": "the lane's pool",
    "concurrency": "the lane's concurrency (empty when unset)",
    "queue": "the lane's queue",
    "lane": "the lane's name",
    "parts": "the parts per request (the scenario's flow.messages)",
    "spacing_s": "seconds between parts (flow.spacing_s, time scaled)",
}
LOOPBACK_URL = re.compile(r"^https?://(127\.0\.0\.1|\[::1\]|localhost)(:\d+)?(/|$)")


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def _known(text: str, what: str) -> str:
    try:
        unknown = sorted(_fields(text) - set(PLACEHOLDERS))
    except ValueError as exc:
        raise ValueError(
            f"{what}: {exc} in {text!r} (a literal brace is written {{{{ }}}})"
        ) from None
    if unknown:
        raise ValueError(
            f"{what}: unknown placeholder(s) {unknown}; allowed: {', '.join(PLACEHOLDERS)}"
        )
    return text


class External(Strict):
    """How to run and read a bot of one's own for one lane."""

    webhook: str | None = Field(
        default=None, description="The webhook's command; it must listen on 127.0.0.1:{port}."
    )
    url: str | None = Field(
        default=None,
        description="The URL of a webhook already running (instead of `webhook`); it must "
        "queue onto the broker the harness gives the worker.",
    )
    webhook_path: str = Field(default="/webhook/", description="With `webhook`: the path.")
    worker: str | None = Field(
        default=None,
        description="The Celery worker's command; the harness adds -E (with `compose`: unset).",
    )
    image: str | None = Field(
        default=None, description="Compose backend: the image the commands run in."
    )
    build: Build | None = Field(
        default=None, description="Compose backend: the image to build for the commands."
    )
    compose: ComposeServices | None = Field(
        default=None, description="Compose backend: services of the team's compose file."
    )
    port: Annotated[int, Field(ge=1, le=65535)] = Field(
        default=8000, description="In a container: the port the webhook listens on ({port})."
    )
    cwd: str | None = Field(
        default=None,
        description="Where the commands run (relative: to the scenario's file; with `image` "
        "or `build`: the working directory in the container).",
    )
    env: dict[str, str] = Field(default_factory=dict, description="Extra environment.")
    part_regex: str | None = Field(
        default=None,
        description="Which part a sent text is: the regex's `seq` group (or first group). "
        "Unset: the order sent.",
    )
    first_seq: Annotated[int, Field(ge=0, le=1)] = Field(
        default=0, description="The number the bot gives its first part (0 or 1)."
    )
    keyword: str = Field(default="fixtures", description="The text that starts the flow.")

    @field_validator("webhook", "worker")
    @classmethod
    def _command(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not shlex.split(value):
            raise ValueError("a command cannot be empty")
        return _known(value, "command")

    @field_validator("env")
    @classmethod
    def _env(cls, env: dict[str, str]) -> dict[str, str]:
        bad = [name for name in env if not name.isidentifier() or name.upper() != name]
        if bad:
            raise ValueError(f"environment variable names must be UPPER_CASE, got {bad}")
        for name, value in env.items():
            _known(value, f"env {name}")
        return env

    @field_validator("part_regex")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            pattern = re.compile(value)
        except re.error as exc:
            raise ValueError(f"part_regex {value!r} is not a regex: {exc}") from None
        if "seq" not in pattern.groupindex and pattern.groups == 0:
            raise ValueError(
                f"part_regex {value!r} needs a group for the part's number, e.g. (?P<seq>\\d+)"
            )
        return value

    @property
    def in_containers(self) -> bool:
        """Run by the compose backend (an image, a build or compose services)."""
        return self.image is not None or self.build is not None or self.compose is not None

    @model_validator(mode="after")
    def _one_form(self) -> External:
        if self.compose is not None:
            given = [
                name
                for name in ("webhook", "url", "worker", "image", "build", "cwd")
                if getattr(self, name) is not None
            ]
            if given:
                raise ValueError(
                    f"`compose` names the services to run; drop {', '.join(given)} "
                    "(the commands come from the compose file)"
                )
            return self
        if self.image is not None and self.build is not None:
            raise ValueError("give either `image` or `build`, not both")
        if self.worker is None:
            raise ValueError("give the worker's command (`worker`), or `compose` services")
        if self.in_containers:
            if self.webhook is None or self.url is not None:
                raise ValueError(
                    "with `image` or `build`, give the webhook's command (`webhook`), not `url`"
                )
            return self
        if (self.webhook is None) == (self.url is None):
            raise ValueError("give either `webhook` (a command) or `url` (one running), not both")
        if self.url is not None and not LOOPBACK_URL.match(self.url):
            raise ValueError(f"url {self.url!r}: only a webhook on 127.0.0.1 or ::1 is allowed")
        return self

    def seq_of(self, text: str | None) -> int | None:
        """The part a text is, by `part_regex` (None: no match, or no regex)."""
        if self.part_regex is None or text is None:
            return None
        match = re.search(self.part_regex, text)
        if match is None:
            return None
        raw = match.group("seq") if "seq" in match.re.groupindex else match.group(1)
        return int(raw) - self.first_seq if raw is not None and raw.isdigit() else None
