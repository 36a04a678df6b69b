"""Network faults on `--backend compose`: the lanes reach broker and API through the run's
`proxy` container, and a fault does there what it does on the local backend.

One run, three lanes of the shipped network-faults scenario's kinds: a replica's lane
whose broker connection is reset, the Django example's own containers with the same fault
(its `{broker_url}` through the proxy too), and a replica's lane with a black hole to the
API. Each lane is judged by the very assertions the local fault suite makes
(tests/faults/network.py), and nothing of the run is left on the engine.
"""

from __future__ import annotations

import json
import time

import docker
import pytest

from harness.run import RunOutcome, run_scenario
from harness.scenario import Scenario
from tests.faults.network import (
    assert_a_black_hole_delays_the_sends_caught_in_it,
    assert_a_broker_reset_loses_the_parts_the_worker_held,
)

from .conftest import run_dir_project
from .test_own_containers import DJANGO, assert_nothing_left

pytestmark = [pytest.mark.compose, pytest.mark.timeout(600)]

# The shipped network-faults scenario's lanes and faults, shorter: ten parts a second apart,
# the faults 2 s in (a cold worker in a container has received its parts by then).
NETWORK = {
    "name": "compose-network-faults",
    "description": "A broker reset and a black hole to the API, through the proxy container.",
    "flow": {"messages": 10, "spacing_s": 1.0},
    "api": {"latency": {"seed": 22, "default": {"model": "uniform", "low_s": 0.1, "high_s": 0.3}}},
    "tolerances": {"on_time_s": 1.0, "missing_after_s": 10.0},
    "lanes": [
        {
            "name": "solo-broker-reset",
            "pool": "solo",
            "expect": "fail",
            "because": ["missing"],
        },
        {
            "name": "django-broker-reset",
            "pool": "solo",
            "concurrency": 1,
            "expect": "fail",
            "because": ["missing"],
            "external": {
                "build": {"context": str(DJANGO)},
                "webhook": "{python} manage.py runserver 0.0.0.0:{port} --noreload --skip-checks",
                "worker": "{python} -m celery -A botsite -b {broker_url} worker --loglevel INFO "
                "-n {lane}@%h -Q {queue} -P {pool} -c {concurrency}",
                "env": {"DJANGO_ALLOWED_HOSTS": "*"},
                "part_regex": r"part (?P<seq>\d+) of",
                "first_seq": 1,
            },
        },
        {
            "name": "solo-api-blackhole",
            "pool": "solo",
            "expect": "fail",
            "because": ["late"],
        },
    ],
    "faults": [
        {
            "at_s": 2.0,
            "action": "net-reset",
            "lane": "solo-broker-reset",
            "target": "broker",
            "duration_s": 1.0,
        },
        {
            "at_s": 2.0,
            "action": "net-reset",
            "lane": "django-broker-reset",
            "target": "broker",
            "duration_s": 1.0,
        },
        {
            "at_s": 2.0,
            "action": "net-blackhole",
            "lane": "solo-api-blackhole",
            "target": "api",
            "duration_s": 3.0,
        },
    ],
}


@pytest.fixture(scope="module")
def network(
    docker_engine: docker.DockerClient,
    offline_images: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> RunOutcome:
    run_dir = tmp_path_factory.mktemp("network") / "run"
    started = time.monotonic()
    outcome = run_scenario(Scenario.model_validate(NETWORK), run_dir, backend="compose")
    print(f"network faults on compose: {time.monotonic() - started:.0f} s")
    assert_nothing_left(docker_engine, run_dir_project(run_dir))
    return outcome


def test_every_lane_reaches_broker_and_api_through_the_proxy_container(
    network: RunOutcome,
) -> None:
    services = json.loads((network.run_dir / "compose.yml").read_text())["services"]
    assert "proxy" in services
    for name in ("worker-solo-broker-reset", "worker-django-broker-reset"):
        env = services[name]["environment"]
        assert env["CELERY_BROKER_URL"].startswith("redis://proxy:"), name
        assert env["WHATSAPP_API_URL"].startswith("http://proxy:"), name
    django = services["worker-django-broker-reset"]["command"]
    assert django[django.index("-b") + 1].startswith("redis://proxy:")  # {broker_url}
    assert (network.run_dir / "proxy.log").read_text().startswith("proxies listening:")


def test_a_broker_reset_loses_the_parts_the_replicas_worker_held(network: RunOutcome) -> None:
    assert_a_broker_reset_loses_the_parts_the_worker_held(network, "solo-broker-reset")


def test_a_broker_reset_loses_the_parts_the_teams_own_worker_held(network: RunOutcome) -> None:
    assert_a_broker_reset_loses_the_parts_the_worker_held(network, "django-broker-reset")


def test_a_black_hole_to_the_api_delays_the_sends_caught_in_it(network: RunOutcome) -> None:
    assert_a_black_hole_delays_the_sends_caught_in_it(network, "solo-api-blackhole")
