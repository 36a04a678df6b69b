"""Network faults on the compose backend, without an engine: the run's `proxy` service, the
lanes' environment through it (the replica's and a team's own containers), and the
proxy service's command line read back (`harness.stack.compose_proxies`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.proxy_service import ProxyPlan, main
from harness.scenario.external import External
from harness.stack import compose_proxies
from harness.stack.compose import lane_env, project_file
from harness.stack.own_services import plan
from harness.stack.spec import LaneSpec, StackSpec

pytestmark = pytest.mark.unit

DJANGO = Path(__file__).resolve().parents[2] / "examples" / "django-bot"
OWN = LaneSpec(
    name="mine",
    pool="threads",
    concurrency=8,
    external=External.model_validate(
        {
            "build": {"context": str(DJANGO)},
            "webhook": "{python} manage.py runserver 0.0.0.0:{port}",
            "worker": "{python} -m celery -A botsite worker -b {broker_url} -Q {queue} -P {pool}",
            "env": {"BOT_API": "{api_url}"},
        }
    ),
)


def _spec(proxied: set[str], *lanes: LaneSpec) -> StackSpec:
    return StackSpec(lanes=list(lanes), proxied=frozenset(proxied))  # type: ignore[arg-type]


def _envs(spec: StackSpec) -> dict[str, dict[str, str]]:
    return {lane.name: lane_env(spec, i, lane, "abcd") for i, lane in enumerate(spec.lanes)}


def test_each_lane_gets_a_proxy_per_target_on_a_port_of_its_own() -> None:
    spec = _spec({"broker", "api"}, LaneSpec(name="solo", pool="solo"), OWN)
    plans = compose_proxies.plans(spec, _envs(spec))
    assert [(p.lane, p.target, p.upstream_host, p.upstream_port) for p in plans] == [
        ("solo", "api", "mock", 8000),
        ("solo", "broker", "broker", 6379),
        ("mine", "api", "mock", 8000),
        ("mine", "broker", "broker", 6379),
    ]
    ports = [p.port for p in plans]
    assert len(set(ports)) == len(ports)
    assert compose_proxies.CONTROL_PORT not in ports
    # What the service's command line says is what it starts.
    service = compose_proxies.service(plans, {"run": "abcd"})
    words = [w.removeprefix("--proxy=") for w in service["command"] if w.startswith("--proxy=")]
    assert [ProxyPlan.parse(word) for word in words] == plans


def test_the_replicas_lanes_reach_broker_and_api_through_the_proxy_and_their_store_directly() -> (
    None
):
    spec = _spec({"broker", "api"}, LaneSpec(name="solo", pool="solo"))
    envs = _envs(spec)
    plans = compose_proxies.plans(spec, envs)
    routed = {name: compose_proxies.routed_env(env, name, plans) for name, env in envs.items()}
    project = project_file(
        spec, routed, Path("/run/mock-config.json"), "stagger-abcd", {"run": "abcd"}, None, plans
    )
    services = project["services"]
    proxy = services["proxy"]
    assert proxy["image"].startswith("${STAGGER_IMAGE")
    assert proxy["ports"] == [f"127.0.0.1:0:{compose_proxies.CONTROL_PORT}"]
    assert proxy["labels"] == {"run": "abcd"}
    assert "healthcheck" in proxy  # `up --wait` waits for it
    by_target = {p.target: p.port for p in plans}
    for name in ("webhook-solo", "worker-solo"):
        env = services[name]["environment"]
        assert env["CELERY_BROKER_URL"] == f"redis://proxy:{by_target['broker']}/1"
        assert env["WHATSAPP_API_URL"] == f"http://proxy:{by_target['api']}"
        assert env["BOT_REDIS_URL"] == "redis://broker:6379/1"
        assert services[name]["depends_on"]["proxy"] == {"condition": "service_healthy"}


def test_a_teams_containers_and_their_placeholders_go_through_the_proxy() -> None:
    spec = _spec({"broker", "api"}, OWN)
    envs = _envs(spec)
    plans = compose_proxies.plans(spec, envs)
    env = compose_proxies.routed_env(envs["mine"], "mine", plans)
    own = plan(OWN, env)
    by_target = {p.target: p.port for p in plans}
    broker = f"redis://proxy:{by_target['broker']}/1"
    api = f"http://proxy:{by_target['api']}"
    worker = own.workers[0]
    assert worker.command[worker.command.index("-b") + 1] == broker  # {broker_url}
    for service in (own.webhook, worker):
        assert service.environment["CELERY_BROKER_URL"] == broker
        assert service.environment["WHATSAPP_API_URL"] == api
        assert service.environment["BOT_API"] == api  # {api_url}
    project = project_file(
        spec, {"mine": env}, Path("/m.json"), "stagger-abcd", {}, {"mine": own}, plans
    )
    assert project["services"]["worker-mine"]["depends_on"]["proxy"] == {
        "condition": "service_healthy"
    }


def test_only_the_proxied_target_is_routed_and_no_proxy_without_network_faults() -> None:
    spec = _spec({"api"}, LaneSpec(name="solo", pool="solo"))
    envs = _envs(spec)
    plans = compose_proxies.plans(spec, envs)
    env = compose_proxies.routed_env(envs["solo"], "solo", plans)
    assert env["CELERY_BROKER_URL"] == "redis://broker:6379/1"
    assert "BOT_REDIS_URL" not in env
    assert env["WHATSAPP_API_URL"].startswith("http://proxy:")
    plain = _spec(set(), LaneSpec(name="solo", pool="solo"))
    assert compose_proxies.plans(plain, _envs(plain)) == []
    project = project_file(plain, _envs(plain), Path("/m.json"), "stagger-abcd")
    assert "proxy" not in project["services"]
    assert "proxy" not in project["services"]["worker-solo"]["depends_on"]


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--control-port=9000", "--proxy=solo/db=7000:broker:6379"], "TARGET broker or api"),
        (["--control-port=9000", "--proxy=solo/api=9000:mock:8000"], "a port of its own"),
        (["--proxy=solo/api=7000:mock:8000"], "--control-port"),
    ],
)
def test_a_bad_command_line_is_one_line_and_exit_2(
    argv: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    assert said in capsys.readouterr().err
