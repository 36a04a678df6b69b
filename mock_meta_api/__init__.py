"""A mock of Meta's WhatsApp Cloud API, faithful for the calls a bot makes."""

from .app import create_app
from .config import Behaviours, MockConfig

__all__ = ["Behaviours", "MockConfig", "create_app"]
