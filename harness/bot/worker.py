"""The `celery -A harness.bot.worker worker` target: the bot's Celery app from the environment."""

from __future__ import annotations

import sys

from .app import create_bot
from .settings import SettingsError, load_settings

try:
    bot = create_bot(load_settings())
except SettingsError as exc:
    print(exc, file=sys.stderr)
    raise SystemExit(2) from None

app = bot.celery
