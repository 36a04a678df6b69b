"""Network faults on the compose backend: the run's `proxy` service and the lanes through it.

When a scenario has a network fault (`StackSpec.proxied`), each lane reaches its broker
and the mock Cloud API, as the scenario asks, through a proxy of its own in one `proxy`
container of the run's project (`harness.proxy_service`, from the project image): its
Celery broker URL becomes `redis://proxy:<port>/<db>` and its API URL
`http://proxy:<port>`, for the replica's containers and a team's own alike (what
`own_services` puts in their environment, `{broker_url}` and `{api_url}` included). The
bot's own store stays direct, as on the local backend, so the evidence survives the
fault. The host switches the proxies through the control port Docker publishes on
127.0.0.1 (`RemoteProxy`, the local `Proxy`'s interface for the nemesis).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from ..proxy_service import ProxyPlan, RemoteProxy
from .core import URL_VARIABLE, through_proxies
from .spec import StackSpec

SERVICE = "proxy"
CONTROL_PORT = 9000  # the control API, inside the container
FIRST_PORT = 7000  # the proxies, one port each from here, inside the container
DEFAULT_PORTS = {"redis": 6379, "http": 80, "https": 443}
# Every lane waits for it: checked as often as the broker is, its start is quick.
HEALTHCHECK = {
    "test": [
        "CMD",
        "bash",
        "-c",
        f"exec 3<>/dev/tcp/127.0.0.1/{CONTROL_PORT} && printf 'GET /health HTTP/1.0\\r\\n\\r\\n'"
        " >&3 && grep -q '^HTTP/1.1 200' <&3",
    ],
    "interval": "1s",
    "timeout": "2s",
    "retries": 5,
    "start_period": "30s",
}


def plans(spec: StackSpec, envs: Mapping[str, Mapping[str, str]]) -> list[ProxyPlan]:
    """One proxy per lane and proxied target, each on a port of its own, forwarding to
    where the lane's environment points (the broker's and the mock's service names)."""
    found: list[ProxyPlan] = []
    for lane in spec.lanes:
        for target in sorted(spec.proxied):
            url = urlsplit(envs[lane.name][URL_VARIABLE[target]])
            found.append(
                ProxyPlan(
                    lane=lane.name,
                    target=target,
                    port=FIRST_PORT + len(found),
                    upstream_host=url.hostname or target,
                    upstream_port=url.port or DEFAULT_PORTS.get(url.scheme, 80),
                )
            )
    return found


def routed_env(env: Mapping[str, str], lane: str, routes: Sequence[ProxyPlan]) -> dict[str, str]:
    """The lane's environment with its broker connection and API through its proxies in
    the `proxy` service (`core.through_proxies`, as on the local backend)."""
    hosts = {plan.target: f"{SERVICE}:{plan.port}" for plan in routes if plan.lane == lane}
    return through_proxies(env, hosts)


def service(
    routes: Sequence[ProxyPlan],
    labels: Mapping[str, str],
    image: str = "${STAGGER_IMAGE:-stagger/harness:local}",
) -> dict[str, Any]:
    """The `proxy` service of the run's compose file: the project image running
    `harness.proxy_service` with every lane's proxies; its control port published on
    127.0.0.1 (a port Docker chooses)."""
    command = ["python", "-m", "harness.proxy_service", f"--control-port={CONTROL_PORT}"]
    command += [f"--proxy={plan.argument()}" for plan in routes]
    return {
        "image": image,
        "pull_policy": "never",
        "command": command,
        "ports": [f"127.0.0.1:0:{CONTROL_PORT}"],
        "healthcheck": HEALTHCHECK,
        "labels": dict(labels),
        "stop_grace_period": "5s",
    }


def remote_proxies(
    control_url: str, lane: str, routes: Sequence[ProxyPlan]
) -> dict[str, RemoteProxy]:
    """The lane's proxies as the nemesis switches them ("broker", "api")."""
    return {
        plan.target: RemoteProxy(control_url, lane, plan.target)
        for plan in routes
        if plan.lane == lane
    }
