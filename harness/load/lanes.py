"""The bots a load test drives: `name=PHONE_NUMBER_ID@WEBHOOK_URL`, comma-separated.

One string, so it travels as a Locust option from the master to every worker.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,30}$")


@dataclass(frozen=True)
class LoadLane:
    """One bot under load: its lane name, business number and webhook URL."""

    name: str
    phone_number_id: str
    webhook_url: str

    def spec(self) -> str:
        return f"{self.name}={self.phone_number_id}@{self.webhook_url}"


def parse_lanes(text: str) -> list[LoadLane]:
    """`solo=106540352290000@http://127.0.0.1:8001/webhook,...`; a bad item is named."""
    lanes: list[LoadLane] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, rest = item.partition("=")
        number, _, url = rest.partition("@")
        if not (NAME.match(name) and number.isdigit() and url.startswith(("http://", "https://"))):
            raise ValueError(
                f"--lanes: {item!r} is not name=PHONE_NUMBER_ID@WEBHOOK_URL "
                "(name: lower-case letters, digits, dashes; the number: digits; the URL: http(s)://)"
            )
        lanes.append(LoadLane(name, number, url))
    names = [lane.name for lane in lanes]
    if len(set(names)) != len(names):
        raise ValueError(f"--lanes: lane names must be unique, got {names}")
    if not lanes and text.strip():
        raise ValueError("--lanes: no lane given")
    return lanes


def lanes_option(lanes: list[LoadLane]) -> str:
    return ",".join(lane.spec() for lane in lanes)


def parse_rates(text: str, lanes: list[LoadLane]) -> dict[str, float]:
    """`solo=0.1,gevent=1.5`: requests per second for each lane (empty: none given)."""
    rates: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, value = item.partition("=")
        try:
            rate = float(value)
        except ValueError:
            rate = 0.0
        if not NAME.match(name) or not 0 < rate <= 1000:
            raise ValueError(
                f"--rates: {item!r} is not name=REQUESTS_PER_SECOND (a rate above 0, at most 1000)"
            )
        rates[name] = rate
    names = sorted(lane.name for lane in lanes)
    if rates and sorted(rates) != names:
        raise ValueError(f"--rates: give a rate for every lane ({names}), got {sorted(rates)}")
    return rates
