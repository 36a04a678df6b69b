"""The compose backend's pure parts: the run's compose file, the lanes' environment, and
the checks that fail before anything starts (no engine is needed here)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from harness.stack.compose import (
    STACK_FILE,
    ComposeUnavailable,
    _one_line,
    check_ports,
    lane_env,
    project_file,
    worker_env,
)
from harness.stack.spec import LaneSpec, StackSpec

pytestmark = pytest.mark.unit

SPEC = StackSpec(
    lanes=[
        LaneSpec(name="solo", pool="solo"),
        LaneSpec(name="gevent-settings", pool="gevent", concurrency=20, pool_from_settings=True),
    ],
    bot_env={"FIXTURES_PARTS": "5"},
)


def test_each_lane_extends_the_stack_files_webhook_and_worker_with_its_settings() -> None:
    envs = {lane.name: lane_env(SPEC, i, lane, "abcd") for i, lane in enumerate(SPEC.lanes)}
    project = project_file(SPEC, envs, Path("/run/mock-config.json"), "stagger-abcd")
    services = project["services"]
    assert project["name"] == "stagger-abcd"
    assert set(services) == {
        "broker",
        "mock",
        "webhook-solo",
        "worker-solo",
        "webhook-gevent-settings",
        "worker-gevent-settings",
    }
    for service in services.values():
        assert service["extends"]["file"] == str(STACK_FILE)
    assert services["mock"]["volumes"] == ["/run/mock-config.json:/etc/stagger/mock-config.json:ro"]
    solo = services["worker-solo"]["environment"]
    assert solo["CELERY_BROKER_URL"] == "redis://broker:6379/1"
    assert (solo["CELERY_POOL"], solo["CELERY_POOL_SET_BY"], solo["CELERY_CONCURRENCY"]) == (
        "solo",
        "argv",
        "",
    )
    assert solo["FIXTURES_PARTS"] == "5"
    assert "CELERY_WORKER_POOL" not in solo
    gevent = services["worker-gevent-settings"]["environment"]
    assert gevent["CELERY_BROKER_URL"] == "redis://broker:6379/2"
    assert (gevent["CELERY_POOL_SET_BY"], gevent["CELERY_WORKER_POOL"]) == ("settings", "gevent")
    assert gevent["CELERY_CONCURRENCY"] == "20"
    assert services["webhook-gevent-settings"]["depends_on"]["broker"] == {
        "condition": "service_healthy"
    }


def test_the_worker_parameters_are_those_stack_yml_reads() -> None:
    text = STACK_FILE.read_text()
    for name in worker_env(SPEC, SPEC.lanes[0]):
        assert f"{name}:" in text, name


def test_a_pinned_port_in_use_is_named_in_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        with pytest.raises(
            ComposeUnavailable, match=rf"127\.0\.0\.1:{port} \(MOCK_PORT\) is in use"
        ):
            check_ports({"MOCK_PORT": str(port)})
    check_ports({"MOCK_PORT": "0", "BROKER_PORT": ""})  # 0 or unset: Docker chooses
    with pytest.raises(ComposeUnavailable, match="BROKER_PORT must be a port number"):
        check_ports({"BROKER_PORT": "http"})


def test_the_telling_line_of_a_compose_failure_is_kept() -> None:
    output = "Container x  Creating\nError response from daemon: port is already allocated\n"
    assert _one_line(output) == "Error response from daemon: port is already allocated"
    assert _one_line("") == "(no output)"
