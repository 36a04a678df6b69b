"""The locustfile on its own, as a user runs it against a bot: `locust -f locustfile.py
--host ...`. Delivery figures land in Locust's statistics, and the thresholds decide
Locust's exit status (its `quitting` hook sets `process_exit_code`).
"""

from __future__ import annotations

import csv
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.load.driver import locust_command
from harness.stack import LaneSpec, LocalStack, StackSpec

pytestmark = [pytest.mark.integration, pytest.mark.load, pytest.mark.timeout(180)]

PARTS = 3
SPACING_S = 0.3
GRACE_S = 3.0
RUN_S = 4
# Locust's own start and the wait for the last parts, beyond the users' run.
BOUND_S = 60


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    spec = StackSpec(
        lanes=[LaneSpec(name="gevent", pool="gevent", concurrency=10)],
        bot_env={"FIXTURES_PARTS": str(PARTS), "FIXTURES_SPACING_S": str(SPACING_S)},
        mock_behaviours={"latency": {"default": {"model": "fixed", "value_s": 0.02}}},
    )
    with LocalStack(spec, tmp_path_factory.mktemp("stack")) as running:
        yield running


def locust(stack: LocalStack, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    lane = stack.lanes["gevent"]
    argv = locust_command(
        "--headless", "--users", "2", "--spawn-rate", "10", "--run-time", f"{RUN_S}s",
        "--host", lane.web.url,
        "--phone-number-id", lane.phone_number_id,
        "--app-secret", lane.settings.whatsapp_app_secret,
        "--mock-url", stack.mock_url,
        "--pace", "0.5", "--parts", str(PARTS), "--spacing", str(SPACING_S),
        "--missing-grace", str(GRACE_S), "--csv", str(out / "locust"),
        *extra,
    )  # fmt: skip
    out.mkdir()
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=BOUND_S, stdin=subprocess.DEVNULL
    )


def rows(out: Path) -> dict[str, dict[str, str]]:
    with (out / "locust_stats.csv").open() as table:
        return {row["Name"]: row for row in csv.DictReader(table)}


def test_within_its_thresholds_it_exits_0_with_delivery_rows(
    stack: LocalStack, tmp_path: Path
) -> None:
    done = locust(stack, tmp_path / "ok", "--max-fail-ratio", "0")
    assert done.returncode == 0, done.stderr[-2000:]
    found = rows(tmp_path / "ok")
    delivered = int(found["lateness [default]"]["Request Count"])
    fixtures = int(found["webhook fixtures [default]"]["Request Count"])
    assert delivered == fixtures * PARTS > 0
    assert int(found["Aggregated"]["Failure Count"]) == 0
    assert "missing [default]" not in found


def test_past_a_threshold_it_exits_1_and_says_which(stack: LocalStack, tmp_path: Path) -> None:
    """Lateness includes the webhook's own milliseconds: a bound of 0.1 ms is exceeded."""
    done = locust(stack, tmp_path / "strict", "--max-lateness-p95", "0.0001")
    assert done.returncode == 1, done.stderr[-2000:]
    assert "threshold exceeded: default: delivery-lateness p95" in done.stderr


def test_bad_options_stop_it_before_any_request(stack: LocalStack, tmp_path: Path) -> None:
    done = locust(stack, tmp_path / "bad", "--fixtures-share", "2", "--lanes", "x=1@ftp://y")
    assert done.returncode != 0
    assert "--fixtures-share must be within 0..1, got 2.0" in done.stderr
    assert "--lanes: 'x=1@ftp://y' is not name=PHONE_NUMBER_ID@WEBHOOK_URL" in done.stderr
