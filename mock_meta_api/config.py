"""Configuration of the mock: identity (token, numbers, secret) and behaviours.

Behaviours are the part that can change at run time through the admin API;
everything is a pydantic model so that a config file, CLI flags and admin
payloads are validated by the same rules and fail with the same messages.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Annotated, Literal

import httpx
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails

DEFAULT_ACCESS_TOKEN = "mock-access-token"
DEFAULT_PHONE_NUMBER_ID = "106540352242922"
DEFAULT_DISPLAY_PHONE_NUMBER = "15550783881"
DEFAULT_APP_SECRET = "mock-app-secret"
DEFAULT_WABA_ID = "102290129340398"


class Strict(BaseModel):
    """Base for config models: unknown keys are errors, so typos never pass silently."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


Seconds = Annotated[float, Field(ge=0)]


# -- latency -----------------------------------------------------------------


class NoLatency(Strict):
    model: Literal["none"] = "none"


class FixedLatency(Strict):
    model: Literal["fixed"]
    value_s: Seconds


class UniformLatency(Strict):
    model: Literal["uniform"]
    low_s: Seconds
    high_s: Seconds

    @model_validator(mode="after")
    def _ordered(self) -> UniformLatency:
        if self.high_s < self.low_s:
            raise ValueError(f"high_s ({self.high_s}) must be >= low_s ({self.low_s})")
        return self


class NormalLatency(Strict):
    """Normal latency, clipped to [0, max_s]: a negative delay has no meaning."""

    model: Literal["normal"]
    mean_s: Seconds
    stddev_s: Seconds
    max_s: Seconds | None = None


class LognormalLatency(Strict):
    """Lognormal latency (long right tail, like real APIs): median and shape sigma."""

    model: Literal["lognormal"]
    median_s: Annotated[float, Field(gt=0)]
    sigma: Annotated[float, Field(ge=0)]
    max_s: Seconds | None = None


LatencyModel = Annotated[
    NoLatency | FixedLatency | UniformLatency | NormalLatency | LognormalLatency,
    Field(discriminator="model"),
]


class Latency(Strict):
    """Latency added before each Graph answer; `per_phone_number` overrides `default`."""

    default: LatencyModel = Field(default_factory=NoLatency)
    per_phone_number: dict[str, LatencyModel] = Field(default_factory=dict)
    seed: int | None = None


# -- failures ----------------------------------------------------------------

HttpStatus = Annotated[int, Field(ge=400, le=599)]


class ErrorAnswer(Strict):
    """A Graph error answer: Meta code, HTTP status and optional subcode/details."""

    action: Literal["error"] = "error"
    code: int = 131000
    http_status: HttpStatus = 500
    error_subcode: int | None = None
    details: str | None = None


class ResetAnswer(Strict):
    """The TCP connection is reset without an HTTP answer."""

    action: Literal["reset"]


class HangAnswer(Strict):
    """No answer at all: the request hangs until the client gives up (or `hang_s` passes)."""

    action: Literal["hang"]
    hang_s: Seconds | None = None


def _answer_action(value: object) -> str | None:
    """`action` picks the answer kind; a table without one is an error answer."""
    if isinstance(value, dict):
        return value.get("action", "error")
    return getattr(value, "action", None)


FaultAnswer = Annotated[
    Annotated[ErrorAnswer, Tag("error")]
    | Annotated[ResetAnswer, Tag("reset")]
    | Annotated[HangAnswer, Tag("hang")],
    Discriminator(
        _answer_action,
        custom_error_type="invalid_action",
        custom_error_message="action must be one of 'error', 'reset', 'hang'",
    ),
]


class RandomFailure(Strict):
    probability: Annotated[float, Field(ge=0, le=1)]
    answer: FaultAnswer = Field(default_factory=ErrorAnswer)


class ScriptedFailure(Strict):
    """Send attempts `first`..`last` (1-based, per business number, since start or reset)."""

    first: Annotated[int, Field(ge=1)]
    last: Annotated[int, Field(ge=1)] | None = None
    answer: FaultAnswer = Field(default_factory=ErrorAnswer)

    @model_validator(mode="after")
    def _ordered(self) -> ScriptedFailure:
        if self.last is not None and self.last < self.first:
            raise ValueError(f"last ({self.last}) must be >= first ({self.first})")
        return self

    def covers(self, attempt: int) -> bool:
        return self.first <= attempt <= (self.first if self.last is None else self.last)


class Outage(Strict):
    """A window, relative to when the behaviours were applied, when every send fails."""

    start_s: Seconds = 0
    duration_s: Annotated[float, Field(gt=0)]
    answer: FaultAnswer = Field(default_factory=lambda: ErrorAnswer(code=131016, http_status=503))


class Failures(Strict):
    random: list[RandomFailure] = Field(default_factory=list)
    scripted: list[ScriptedFailure] = Field(default_factory=list)
    outages: list[Outage] = Field(default_factory=list)
    seed: int | None = None


# -- rate limits -------------------------------------------------------------


class Throughput(Strict):
    """Per business number throughput (Meta's default tier: 80 messages/s)."""

    enabled: bool = True
    messages_per_second: Annotated[float, Field(gt=0)] = 80
    http_status: HttpStatus = 429


class PairRate(Strict):
    """Per (business number, recipient) token bucket: 1 message per `period_s`, `burst` deep."""

    enabled: bool = True
    period_s: Annotated[float, Field(gt=0)] = 6
    burst: Annotated[int, Field(ge=1)] = 45
    http_status: HttpStatus = 400


# -- status webhooks ---------------------------------------------------------


class StatusFailure(Strict):
    """Report `failed` (with `code`) instead of delivering, for matching sends."""

    code: int = 131026
    recipient: str | None = None
    probability: Annotated[float, Field(ge=0, le=1)] = 1.0


def _check_http_url(url: str) -> str:
    """Parse a URL as the webhook client will, so a bad one fails here, not per send."""
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"url must start with http:// or https://, got {url!r}")
    try:
        host = httpx.URL(url).host
    except httpx.InvalidURL as exc:
        raise ValueError(f"url is not a valid URL ({exc}), got {url!r}") from None
    if not host:
        raise ValueError(f"url has no host, got {url!r}")
    return url


HttpUrl = Annotated[str, AfterValidator(_check_http_url)]


class Webhooks(Strict):
    """Status webhooks posted after each accepted send (off while no URL applies).

    `url_per_phone_number` is Meta's webhook override for one business number:
    its statuses go there instead of the app's `url`.
    """

    url: HttpUrl | None = None
    url_per_phone_number: dict[str, HttpUrl] = Field(default_factory=dict)
    sent_delay_s: Seconds | None = 0.05
    delivered_delay_s: Seconds | None = 0.1
    read_delay_s: Seconds | None = None
    failures: list[StatusFailure] = Field(default_factory=list)
    max_attempts: Annotated[int, Field(ge=1, le=20)] = 3
    retry_backoff_s: Seconds = 0.5
    timeout_s: Annotated[float, Field(gt=0)] = 5
    seed: int | None = None

    def url_for(self, phone_number_id: str) -> str | None:
        return self.url_per_phone_number.get(phone_number_id, self.url)


class Behaviours(Strict):
    latency: Latency = Field(default_factory=Latency)
    failures: Failures = Field(default_factory=Failures)
    throughput: Throughput = Field(default_factory=Throughput)
    pair_rate: PairRate = Field(default_factory=PairRate)
    webhooks: Webhooks = Field(default_factory=Webhooks)


class MockConfig(Strict):
    """Everything the mock needs to start."""

    access_token: Annotated[str, Field(min_length=1)] = DEFAULT_ACCESS_TOKEN
    phone_number_ids: Annotated[
        list[Annotated[str, Field(pattern=r"^\d+$")]], Field(min_length=1)
    ] = Field(default_factory=lambda: [DEFAULT_PHONE_NUMBER_ID])
    display_phone_number: str = DEFAULT_DISPLAY_PHONE_NUMBER
    waba_id: str = DEFAULT_WABA_ID
    app_secret: Annotated[str, Field(min_length=1)] = DEFAULT_APP_SECRET
    admin_allow_remote: bool = False
    journal_max_entries: Annotated[int, Field(ge=1)] = 1_000_000
    behaviours: Behaviours = Field(default_factory=Behaviours)


class ConfigError(ValueError):
    """A config file or payload that cannot be used; the message says why and where."""


def _loc_part(part: str | int) -> str:
    """A field name as written; a key with spaces, dots or control characters quoted, so
    the line still shows which key it is (a bare `\r` would break the line)."""
    text = str(part)
    return text if re.fullmatch(r"[\w-]+", text) else repr(text)


def describe_validation_error(error: ValidationError, source: str) -> str:
    """One line per problem: where, what was given, what is allowed."""
    return describe_errors(error.errors(include_url=False), source)


def describe_errors(errors: list[ErrorDetails], source: str) -> str:
    """`describe_validation_error` for errors a caller has put in its own words first."""
    lines = [f"{source}: {len(errors)} invalid setting(s)"]
    for item in errors:
        where = ".".join(_loc_part(part) for part in item["loc"]) or "(top level)"
        given = item.get("input")
        message = item["msg"].removeprefix("Value error, ")  # pydantic's wrapper adds nothing
        # No "(got ...)" where nothing was given, where the message already quotes the value
        # (or the bad part of it), or at the top level (the whole document).
        quiet = (
            item["type"] == "missing"
            or not item["loc"]
            or repr(given) in message
            or "(got " in message
        )
        lines.append(f"  {where}: {message}{'' if quiet else f' (got {given!r})'}")
    return "\n".join(lines)


def load_config(path: Path) -> dict:
    """Read a TOML or JSON config file into a plain dict (validated by the caller)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from exc
    try:
        if path.suffix == ".json":
            data = json.loads(raw)
        elif path.suffix == ".toml":
            data = tomllib.loads(raw.decode())
        else:
            raise ConfigError(f"{path}: unknown config format {path.suffix!r}; use .toml or .json")
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid {path.suffix[1:].upper()}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a table/object")
    return data


def build_config(data: dict, source: str) -> MockConfig:
    """Validate settings into a MockConfig or raise ConfigError naming each bad field."""
    try:
        return MockConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, source)) from exc
