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
    """No delay added."""

    model: Literal["none"] = Field(default="none", description="`none`: no added delay.")


class FixedLatency(Strict):
    """The same delay before every answer."""

    model: Literal["fixed"] = Field(description="`fixed`: the same delay every time.")
    value_s: Seconds = Field(description="The delay, in seconds (0 or more).")


class UniformLatency(Strict):
    """A delay drawn evenly between `low_s` and `high_s`."""

    model: Literal["uniform"] = Field(description="`uniform`: drawn evenly between the bounds.")
    low_s: Seconds = Field(description="The least delay, in seconds (0 or more).")
    high_s: Seconds = Field(description="The greatest delay, in seconds (at least low_s).")

    @model_validator(mode="after")
    def _ordered(self) -> UniformLatency:
        if self.high_s < self.low_s:
            raise ValueError(f"high_s ({self.high_s}) must be >= low_s ({self.low_s})")
        return self


class NormalLatency(Strict):
    """Normal latency, clipped to [0, max_s]: a negative delay has no meaning."""

    model: Literal["normal"] = Field(description="`normal`: drawn from a normal distribution.")
    mean_s: Seconds = Field(description="The mean delay, in seconds (0 or more).")
    stddev_s: Seconds = Field(description="Its standard deviation, in seconds (0 or more).")
    max_s: Seconds | None = Field(
        default=None, description="The longest delay, in seconds (unset: no bound)."
    )


class LognormalLatency(Strict):
    """Lognormal latency (long right tail, like real APIs): median and shape sigma."""

    model: Literal["lognormal"] = Field(description="`lognormal`: a long right tail.")
    median_s: Annotated[float, Field(gt=0)] = Field(
        description="The median delay, in seconds (above 0)."
    )
    sigma: Annotated[float, Field(ge=0)] = Field(
        description="The shape: the standard deviation of the delay's logarithm (0 or more)."
    )
    max_s: Seconds | None = Field(
        default=None, description="The longest delay, in seconds (unset: no bound)."
    )


LatencyModel = Annotated[
    NoLatency | FixedLatency | UniformLatency | NormalLatency | LognormalLatency,
    Field(discriminator="model"),
]


class Latency(Strict):
    """Latency added before each Graph answer; `per_phone_number` overrides `default`."""

    default: LatencyModel = Field(
        default_factory=NoLatency,
        description="The latency model of every business number without its own: `none`, "
        "`fixed`, `uniform`, `normal` or `lognormal` (default: none).",
    )
    per_phone_number: dict[str, LatencyModel] = Field(
        default_factory=dict,
        description="Latency models by business phone number id, over `default`.",
    )
    seed: int | None = Field(
        default=None, description="Seed of the random delays (unset: a fresh one each start)."
    )


# -- failures ----------------------------------------------------------------

HttpStatus = Annotated[int, Field(ge=400, le=599)]


class ErrorAnswer(Strict):
    """A Graph error answer: Meta code, HTTP status and optional subcode/details."""

    action: Literal["error"] = Field(
        default="error",
        description="`error` (the default, when a table names no action): a Graph error answer.",
    )
    code: int = Field(default=131000, description="Meta's error code (default 131000).")
    http_status: HttpStatus = Field(
        default=500, description="The answer's HTTP status, 400 to 599 (default 500)."
    )
    error_subcode: int | None = Field(
        default=None, description="Meta's error_subcode (unset: none in the answer)."
    )
    details: str | None = Field(
        default=None,
        description="The answer's error_data.details (unset: Meta's wording for the code).",
    )


class ResetAnswer(Strict):
    """The TCP connection is reset without an HTTP answer."""

    action: Literal["reset"] = Field(
        description="`reset`: the TCP connection is reset, with no HTTP answer."
    )


class HangAnswer(Strict):
    """No answer at all: the request hangs until the client gives up (or `hang_s` passes)."""

    action: Literal["hang"] = Field(description="`hang`: no answer; the request hangs.")
    hang_s: Seconds | None = Field(
        default=None,
        description="Seconds after which the hang ends (unset: when the client gives up, or "
        "the outage ends).",
    )


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
    """A share of sends, drawn at random, gets `answer`."""

    probability: Annotated[float, Field(ge=0, le=1)] = Field(
        description="The share of sends that get `answer`, 0 to 1."
    )
    answer: FaultAnswer = Field(
        default_factory=ErrorAnswer,
        description="What they get: an error answer (the default: code 131000, HTTP 500), "
        '{ action = "reset" } or { action = "hang" }.',
    )


class ScriptedFailure(Strict):
    """Send attempts `first`..`last` (1-based, per business number, since start or reset)."""

    first: Annotated[int, Field(ge=1)] = Field(
        description="The first send attempt that fails (1-based, counted per business number "
        "since start or reset)."
    )
    last: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="The last attempt that fails (unset: `first` only)."
    )
    answer: FaultAnswer = Field(
        default_factory=ErrorAnswer,
        description="What they get: an error answer (the default: code 131000, HTTP 500), "
        '{ action = "reset" } or { action = "hang" }.',
    )

    @model_validator(mode="after")
    def _ordered(self) -> ScriptedFailure:
        if self.last is not None and self.last < self.first:
            raise ValueError(f"last ({self.last}) must be >= first ({self.first})")
        return self

    def covers(self, attempt: int) -> bool:
        return self.first <= attempt <= (self.first if self.last is None else self.last)


class Outage(Strict):
    """A window, relative to when the behaviours were applied, when every send fails."""

    start_s: Seconds = Field(
        default=0,
        description="When the window opens, in seconds after the behaviours were applied.",
    )
    duration_s: Annotated[float, Field(gt=0)] = Field(
        description="How long the window lasts, in seconds (above 0)."
    )
    answer: FaultAnswer = Field(
        default_factory=lambda: ErrorAnswer(code=131016, http_status=503),
        description="What every send in the window gets (default: HTTP 503, code 131016).",
    )


class Failures(Strict):
    """Error answers instead of success: at random, by attempt, or in windows."""

    random: list[RandomFailure] = Field(
        default_factory=list, description="Answers for a random share of sends."
    )
    scripted: list[ScriptedFailure] = Field(
        default_factory=list, description="Answers for given send attempts."
    )
    outages: list[Outage] = Field(
        default_factory=list, description="Windows in which every send fails."
    )
    seed: int | None = Field(
        default=None, description="Seed of the random draws (unset: a fresh one each start)."
    )


# -- rate limits -------------------------------------------------------------


class Throughput(Strict):
    """Per business number throughput (Meta's default tier: 80 messages/s)."""

    enabled: bool = Field(default=True, description="Whether the limit applies.")
    messages_per_second: Annotated[float, Field(gt=0)] = Field(
        default=80,
        description="Sends per second allowed per business number (above 0; default 80); "
        "beyond it, code 130429.",
    )
    http_status: HttpStatus = Field(
        default=429, description="The HTTP status beyond the rate, 400 to 599 (default 429)."
    )


class PairRate(Strict):
    """Per (business number, recipient) token bucket: 1 message per `period_s`, `burst` deep."""

    enabled: bool = Field(default=True, description="Whether the limit applies.")
    period_s: Annotated[float, Field(gt=0)] = Field(
        default=6,
        description="Seconds per message to one recipient: the bucket gains a token this "
        "often (above 0; default 6).",
    )
    burst: Annotated[int, Field(ge=1)] = Field(
        default=45,
        description="The bucket's depth, 1 or more (default 45); beyond it, code 131056.",
    )
    http_status: HttpStatus = Field(
        default=400, description="The HTTP status beyond the limit, 400 to 599 (default 400)."
    )


# -- status webhooks ---------------------------------------------------------


class StatusFailure(Strict):
    """Report `failed` (with `code`) instead of delivering, for matching sends."""

    code: int = Field(
        default=131026, description="Meta's error code in the `failed` status (default 131026)."
    )
    recipient: str | None = Field(
        default=None, description="Only sends to this recipient (unset: every recipient)."
    )
    probability: Annotated[float, Field(ge=0, le=1)] = Field(
        default=1.0, description="The share of matching sends reported failed, 0 to 1."
    )


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

    url: HttpUrl | None = Field(
        default=None,
        description="Where status webhooks go, an http(s) URL (unset: none are sent, but "
        "where `url_per_phone_number` names the number).",
    )
    url_per_phone_number: dict[str, HttpUrl] = Field(
        default_factory=dict,
        description="Meta's per-number override: a business number's statuses go to its URL "
        "here instead of `url`.",
    )
    sent_delay_s: Seconds | None = Field(
        default=0.05,
        description="Seconds after the accepted send before the `sent` status (or a `failed` "
        "one); null: no `sent` status.",
    )
    delivered_delay_s: Seconds | None = Field(
        default=0.1,
        description="Seconds after the status before it until `delivered`; null: none.",
    )
    read_delay_s: Seconds | None = Field(
        default=None,
        description="Seconds after the status before it until `read`; null (the default): none.",
    )
    failures: list[StatusFailure] = Field(
        default_factory=list,
        description="Rules that report a single `failed` status instead of delivering.",
    )
    max_attempts: Annotated[int, Field(ge=1, le=20)] = Field(
        default=3, description="Tries per status for a receiver that fails, 1 to 20."
    )
    retry_backoff_s: Seconds = Field(
        default=0.5, description="Seconds before the first retry, doubled for each next one."
    )
    timeout_s: Annotated[float, Field(gt=0)] = Field(
        default=5, description="Seconds a receiver has to answer each try (above 0)."
    )
    seed: int | None = Field(
        default=None, description="Seed of the random draws (unset: a fresh one each start)."
    )

    def url_for(self, phone_number_id: str) -> str | None:
        return self.url_per_phone_number.get(phone_number_id, self.url)


class Behaviours(Strict):
    """How the mock answers: set in its config file, changed at run time on /_mock/behaviours."""

    latency: Latency = Field(
        default_factory=Latency, description="The delay before every Graph answer."
    )
    failures: Failures = Field(
        default_factory=Failures,
        description="Error answers: for a random share of sends, by attempt, in windows.",
    )
    throughput: Throughput = Field(
        default_factory=Throughput,
        description="Meta's throughput limit per business number (code 130429 beyond it).",
    )
    pair_rate: PairRate = Field(
        default_factory=PairRate,
        description="Meta's limit per (business number, recipient): a token bucket "
        "(code 131056 beyond it).",
    )
    webhooks: Webhooks = Field(
        default_factory=Webhooks, description="Signed status webhooks after each accepted send."
    )


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
