"""Bot and Celery settings in a scenario: which a scenario may set, and which scale with time.

A scenario sets the bot's settings by their environment names, for every lane
(`[settings]`) or one (`lanes.settings`). Each value is checked as the bot reads it,
so a bad one fails when the file is read, not when the run starts.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, ValidationError

from ..bot.settings import BotSettings

SettingValue = str | bool | int | float
# Variables with these prefixes are the bot's settings: a name the bot does not know is a typo.
SETTING_PREFIXES = ("BOT_", "CELERY_", "FIXTURES_", "SEND_", "WHATSAPP_")
SETTING_NAMES = frozenset(name.upper() for name in BotSettings.model_fields)

# The harness sets these per lane (where its broker, mock and number are); a scenario cannot.
STACK_SETTINGS = frozenset(
    {
        "CELERY_BROKER_URL",
        "BOT_REDIS_URL",
        "BOT_KEY_PREFIX",
        "CELERY_BROKER_GLOBAL_KEYPREFIX",
        "CELERY_TASK_QUEUE",
        "WHATSAPP_API_URL",
        "WHATSAPP_PHONE_NUMBER_ID",
        "WHATSAPP_ACCESS_TOKEN",
        "WHATSAPP_APP_SECRET",
        "WHATSAPP_VERIFY_TOKEN",
    }
)
# The scenario's [flow] table sets these.
FLOW_SETTINGS = frozenset({"FIXTURES_PARTS", "FIXTURES_SPACING_S"})
# Settings that are durations (seconds) or rates, so the time scale applies to them.
DURATION_SETTINGS = frozenset(
    {
        "CELERY_BROKER_VISIBILITY_TIMEOUT",
        "CELERY_BROKER_SOCKET_TIMEOUT",
        "SEND_RETRY_BACKOFF_S",
        "SEND_RETRY_BACKOFF_MAX_S",
        "WHATSAPP_CONNECT_TIMEOUT_S",
        "WHATSAPP_READ_TIMEOUT_S",
        "WHATSAPP_WRITE_TIMEOUT_S",
        "WHATSAPP_POOL_TIMEOUT_S",
    }
)
RATE_SETTINGS = frozenset({"SEND_RATE_LIMIT"})
NO_VALUE = {"", "none", "off", "null"}


def env_value(value: SettingValue) -> str:
    """TOML values as an environment holds them: `true`/`false`, numbers as written."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def checked_env(env: dict[str, str]) -> dict[str, str]:
    """Upper-case names; a bot-setting prefix must name a real setting (typos are errors)."""
    bad = [name for name in env if not name.isidentifier() or name.upper() != name]
    if bad:
        raise ValueError(f"environment variable names must be UPPER_CASE, got {bad}")
    unknown = [n for n in env if n.startswith(SETTING_PREFIXES) and n not in SETTING_NAMES]
    if unknown:
        raise ValueError(
            f"unknown bot setting(s) {unknown}; known: {', '.join(sorted(SETTING_NAMES))}"
        )
    return env


def settings_env(values: dict[str, SettingValue]) -> dict[str, str]:
    """The settings as environment variables, refused if the harness or [flow] owns one,
    or if the bot would refuse its value."""
    env = checked_env({name: env_value(value) for name, value in values.items()})
    owned = sorted(name for name in env if name in STACK_SETTINGS)
    if owned:
        raise ValueError(f"{owned} are set by the harness for each lane; remove them")
    flow = sorted(name for name in env if name in FLOW_SETTINGS)
    if flow:
        raise ValueError(f"{flow} come from the [flow] table (messages, spacing_s); remove them")
    try:  # the values too, as the bot reads them: a bad one fails here, not when scaled or run
        BotSettings(**{name.lower(): value for name, value in env.items() if name in SETTING_NAMES})
    except ValidationError as exc:
        raise ValueError(
            "; ".join(
                f"{str(item['loc'][0]).upper()}: {item['msg'].removeprefix('Value error, ')}"
                + ("" if "got " in item["msg"] else f" (got {item.get('input')!r})")
                for item in exc.errors(include_url=False)
            )
        ) from None
    return env


def _checked(values: dict[str, SettingValue]) -> dict[str, SettingValue]:
    settings_env(values)
    return values


# A `settings` table: checked as `settings_env` checks it, kept as written (scaling reads it).
Settings = Annotated[dict[str, SettingValue], AfterValidator(_checked)]
