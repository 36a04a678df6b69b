"""External lanes on the compose backend: a team's bot in its own containers.

A lane names an image (or a build) and the commands of its webhook and worker, or services
of the team's own compose file. Either way it comes down to the same few services, which
the compose stack adds to its project beside its broker and mock: the team's image and
command, the team's environment under the harness's (broker URL, Cloud API base URL,
number, tokens, the pool when it is set in settings), and the lane's worker command given
the lane's pool and concurrency. Everything here is checked before anything starts: a
service the compose file lacks, an image that is missing, a worker command that cannot
take a pool is one line naming the lane and what to fix (exit 2).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker

from ..errors import InputError
from ..processes import run_command
from ..scenario.containers import ComposeServices
from ..scenario.external import External
from .compose_host import ComposeUnavailable, compose_command
from .external import command_argv, fill, placeholders, worker_argv
from .images import ImageError, _build, present
from .spec import LaneSpec

POOL_OPTIONS = ("-P", "--pool")
HEARTBEAT_OFF = "--without-heartbeat"
CONCURRENCY_OPTIONS = ("-c", "--concurrency")
OWN_REPOSITORY = "stagger/own"  # tags of the images built for lanes: stagger/own-<name>:<key>
# What the harness sets itself: the team's compose file keeps its queue (its topology).
POOL_VARIABLE = "CELERY_WORKER_POOL"  # where a settings pool is read (as the local lanes')
QUEUE_VARIABLE = "CELERY_TASK_QUEUE"
COMPOSE_CONFIG_S = 60.0  # `docker compose config` of a team's file: milliseconds, as a rule
TEAM_PREFIX = "STAGGER_TEAM_"  # the variables that carry a team's values to compose
READ_PROJECT = "stagger-read"  # a name for reading only: nothing is created under it


class OwnServiceError(InputError):
    """A lane whose containers cannot run; the message names the lane and what to fix."""


@dataclass(frozen=True)
class Source:
    """Where a service's image comes from: an image present on the engine, or a build."""

    image: str | None = None
    context: Path | None = None
    dockerfile: str = "Dockerfile"

    @property
    def tag(self) -> str:
        """The image the service runs (a build's tag names its context and Dockerfile)."""
        if self.image is not None:
            return self.image
        assert self.context is not None
        key = hashlib.sha256(f"{self.context}\0{self.dockerfile}".encode()).hexdigest()[:12]
        slug = re.sub(r"[^a-z0-9]+", "-", self.context.name.lower()).strip("-") or "bot"
        return f"{OWN_REPOSITORY}-{slug}:{key}"


@dataclass(frozen=True)
class OwnService:
    """One container of a lane: its image, command and environment (the harness's last)."""

    source: Source
    command: list[str]
    environment: dict[str, str] = field(default_factory=dict)
    entrypoint: list[str] | None = None
    working_dir: str | None = None
    # The team's values that `environment` names by reference (`by_reference`).
    passed: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OwnLane:
    """A lane's containers: the webhook, and its workers (the first is the lane's)."""

    webhook: OwnService
    workers: list[OwnService]
    port: int
    path: str

    @property
    def passed(self) -> dict[str, str]:
        """Every value its services name by reference, for `docker compose`'s environment."""
        return {k: v for one in [self.webhook, *self.workers] for k, v in one.passed.items()}


# -- the team's compose file ---------------------------------------------------------------


def read_compose(lane: str, path: str) -> dict[str, Any]:
    """The compose file's services as Docker Compose itself reads them (`docker compose
    config`): `env_file`, `extends`, anchors and `${VAR}` (from the environment and the
    file's `.env`) resolved, build contexts made absolute, the services of every profile;
    or one line saying why not. Values keep compose's `$$` escapes, as the file has them."""
    file = Path(path)
    if not file.is_file():
        raise OwnServiceError(f"lane {lane}: compose file {path}: No such file")
    try:
        compose = compose_command()
    except ComposeUnavailable as exc:
        raise OwnServiceError(f"lane {lane}: reading compose file {path}: {exc}") from None
    where = file.resolve()
    base = [*compose, "--file", str(where), "--project-directory", str(where.parent)]
    base += ["--project-name", READ_PROJECT]
    profiles = _compose_config(lane, path, [*base, "config", "--profiles"]).split()
    every = [word for profile in profiles for word in ("--profile", profile)]
    answer = _compose_config(lane, path, [*base, *every, "config", "--format", "json"])
    document = json.loads(answer)
    services = document.get("services") if isinstance(document, dict) else None
    if not isinstance(services, dict) or not services:
        raise OwnServiceError(f"lane {lane}: compose file {path} has no `services`")
    return services


def _compose_config(lane: str, path: str, argv: list[str]) -> str:
    """A `docker compose config` command's output; its telling line if it fails."""
    answer = run_command(argv, timeout_s=COMPOSE_CONFIG_S)
    if answer is None:
        raise OwnServiceError(
            f"lane {lane}: docker compose config of {path} took over {COMPOSE_CONFIG_S:g} s"
        )
    if answer.returncode != 0:
        lines = [line.strip() for line in (answer.stderr or answer.stdout).splitlines()]
        said = next((line for line in reversed(lines) if line), "(no output)")
        said = said.split(": ", 1)[1] if said.startswith("validating ") else said
        raise OwnServiceError(f"lane {lane}: compose file {path}: {said}")
    return answer.stdout


def _service(lane: str, path: str, services: Mapping[str, Any], name: str) -> dict[str, Any]:
    if name not in services:
        raise OwnServiceError(
            f"lane {lane}: compose file {path} has no service {name!r}; it has: "
            f"{', '.join(sorted(services))}"
        )
    return dict(services[name])


def _parsed(raw: Mapping[str, Any]) -> tuple[list[str] | None, list[str] | None, dict[str, str]]:
    """A service's command, entrypoint and environment, as `docker compose config` writes
    them (lists, and a mapping whose value is null for a name passed from the shell)."""
    command, entrypoint = raw.get("command"), raw.get("entrypoint")
    environment = {
        str(key): "" if value is None else str(value)
        for key, value in (raw.get("environment") or {}).items()
    }
    return (
        None if command is None else [str(word) for word in command],
        None if entrypoint is None else [str(word) for word in entrypoint],
        environment,
    )


def _source(lane: str, path: str, name: str, service: Mapping[str, Any]) -> Source:
    """The service's build (relative to the compose file), else its image."""
    build = service.get("build")
    if build is not None:
        build = {"context": build} if isinstance(build, str) else dict(build)
        context = Path(path).parent / str(build.get("context", "."))
        return Source(
            context=context.resolve(), dockerfile=str(build.get("dockerfile", "Dockerfile"))
        )
    if service.get("image"):
        return Source(image=str(service["image"]))
    raise OwnServiceError(
        f"lane {lane}: service {name!r} of {path} has neither `build` nor `image`"
    )


def named_services(lane: str, compose: ComposeServices) -> dict[str, dict[str, Any]]:
    """The services the lane names, as the team's file has them (each must be there)."""
    services = read_compose(lane, compose.file)
    names = [compose.webhook, *compose.workers]
    return {name: _service(lane, compose.file, services, name) for name in names}


# -- the pool on the worker's command line -------------------------------------------------


def is_celery_worker(argv: list[str]) -> bool:
    """`celery ... worker ...` (or `python -m celery ... worker`): a command the harness can
    give a pool; a shell or a script around it is not."""
    words = [os.path.basename(word) for word in argv]
    return "worker" in words and any(word == "celery" for word in words)


def _without(argv: list[str], options: tuple[str, ...]) -> list[str]:
    """argv without the options (as `-P x`, `-Px`, `--pool x` or `--pool=x`); `options` is
    (short, long)."""
    short, long = options
    out: list[str] = []
    skip = False
    for word in argv:
        if skip:
            skip = False
            continue
        if word in options:
            skip = True
        elif not (word.startswith(f"{long}=") or (word.startswith(short) and len(word) > 2)):
            out.append(word)
    return out


def takes_pool(lane: str, argv: list[str] | None, what: str) -> list[str]:
    """The worker's command, if the harness can give it a pool; else one line saying so."""
    if not argv or not is_celery_worker(argv):
        shown = "no command" if not argv else repr(shlex.join(argv))
        raise OwnServiceError(
            f"lane {lane}: {what} has {shown}, which cannot take a pool: give it "
            "`command: celery -A <app> worker ...` (not a shell or script around it)"
        )
    return argv


def pool_command(lane: LaneSpec, argv: list[str] | None, what: str) -> list[str]:
    """The lane's worker command with the lane's pool (on argv, unless the lane sets it in
    settings), its concurrency (if the lane sets one; else the file's) and task events;
    what the team's file says of them goes."""
    argv = takes_pool(lane.name, argv, what)
    out = _without(argv, POOL_OPTIONS)
    if not lane.pool_from_settings:
        out.append(f"--pool={lane.pool}")
    if lane.concurrency is not None:
        out = [*_without(out, CONCURRENCY_OPTIONS), f"--concurrency={lane.concurrency}"]
    if not {"-E", "--task-events"} & set(out):
        out.append("-E")
    return with_heartbeat(out)


def by_reference(
    lane: str, service: str, environment: Mapping[str, str]
) -> tuple[dict[str, str], dict[str, str]]:
    """The team's environment as references (`NAME: ${STAGGER_TEAM_...}`) and the values
    they stand for, which the harness hands to `docker compose` in its own environment:
    what the team's `env_file` and shell gave (secrets, as a rule) stays out of the run's
    compose file, as `docker compose up` keeps it out of any file. The values lose
    compose's `$$` escapes: a value put in place of a reference is not read again."""
    references: dict[str, str] = {}
    passed: dict[str, str] = {}
    for name, value in environment.items():
        key = hashlib.sha256(f"{lane}\0{service}\0{name}".encode()).hexdigest()[:16]
        variable = f"{TEAM_PREFIX}{key.upper()}"
        references[name] = "${" + variable + "}"
        passed[variable] = value.replace("$$", "$")
    return references, passed


def argv_pool(lane: LaneSpec, environment: Mapping[str, str]) -> dict[str, str]:
    """Where the lane's pool goes on the command line and the service's environment names
    another in CELERY_WORKER_POOL, that too: Celery takes `--pool=prefork` for its own
    default and lets a configured `worker_pool` win (`WorkersPool.convert` in
    celery/bin/worker.py, since celery/celery#6711), so a prefork lane would run the
    file's pool instead."""
    if lane.pool_from_settings or POOL_VARIABLE not in environment:
        return {}
    return {POOL_VARIABLE: lane.pool}


def with_heartbeat(argv: list[str]) -> list[str]:
    """A worker command without `--without-heartbeat`: Celery sends `worker-online` from
    its heartbeat step, and the harness knows a worker is ready by that event."""
    return [word for word in argv if word != HEARTBEAT_OFF]


# -- a lane's services ---------------------------------------------------------------------


def container_placeholders(lane: LaneSpec, env: Mapping[str, str]) -> dict[str, str]:
    """The placeholders inside the stack: the image's `python`, the mock at `mock:8000`
    (or the lane's proxy to it, for network faults: `compose_proxies`), the webhook's port
    in its container."""
    assert lane.external is not None
    api_url = env.get("WHATSAPP_API_URL", "http://mock:8000")
    return placeholders(lane, env, python="python", api_url=api_url, port=lane.external.port)


def plan(lane: LaneSpec, env: Mapping[str, str]) -> OwnLane:
    """The lane's containers; `env` is the harness's environment for the lane (inside
    the stack), its placeholders filled as the local external lanes fill theirs."""
    external = lane.external
    assert external is not None
    values = container_placeholders(lane, env)
    extra = {name: fill(value, dict(values)) for name, value in external.env.items()}
    if external.compose is None:
        return _from_image(lane, external, _literal(dict(env) | extra), values)
    ours = _literal({k: v for k, v in env.items() if k != QUEUE_VARIABLE} | extra)
    compose = external.compose
    services = named_services(lane.name, compose)

    def one(name: str, first_worker: bool = False) -> OwnService:
        raw = services[name]
        command, entrypoint, environment = _parsed(raw)
        team, passed = by_reference(lane.name, name, environment)
        if first_worker:
            command = pool_command(lane, command, f"service {name!r} of {compose.file}")
            team |= argv_pool(lane, environment)
        else:
            command = with_heartbeat(command or [])
        return OwnService(
            source=_source(lane.name, compose.file, name, raw),
            command=command,
            environment=team | ours,
            entrypoint=entrypoint,
            working_dir=raw.get("working_dir"),
            passed=passed,
        )

    workers = [one(name, first_worker=i == 0) for i, name in enumerate(compose.workers)]
    return OwnLane(one(compose.webhook), workers, external.port, external.webhook_path)


def _from_image(
    lane: LaneSpec, external: External, env: dict[str, str], values: Mapping[str, str]
) -> OwnLane:
    assert external.webhook is not None
    assert external.worker is not None
    if external.build is not None:
        source = Source(context=Path(external.build.context), dockerfile=external.build.dockerfile)
    else:
        source = Source(image=external.image)
    filled = dict(values)
    webhook_argv = _literal_words(command_argv(external.webhook, filled))
    worker_words = _literal_words(worker_argv(external.worker, filled))
    webhook = OwnService(source, webhook_argv, env, None, external.cwd)
    worker = OwnService(source, worker_words, env, None, external.cwd)
    return OwnLane(webhook, [worker], external.port, external.webhook_path)


def _literal(env: Mapping[str, str]) -> dict[str, str]:
    """Values the harness writes into the run's compose file, kept from compose's `$`
    interpolation (the team's own go by reference: `by_reference`)."""
    return {name: _escaped(value) for name, value in env.items()}


def _literal_words(argv: list[str]) -> list[str]:
    """A command the harness writes into the run's compose file, kept as `_literal` keeps
    values."""
    return [_escaped(word) for word in argv]


def _escaped(text: str) -> str:
    return text.replace("$", "$$")


def check_lanes(client: docker.DockerClient, lanes: Mapping[str, External]) -> None:
    """Before anything starts or is built: the services each lane names are in its compose
    file, its worker's command can take a pool, every image it names is present and every
    Dockerfile it builds is there (one line naming the lane and what to fix, if not)."""
    for name, external in lanes.items():
        sources: list[Source] = []
        if not external.in_containers:
            raise OwnServiceError(
                f"lane {name}: on the compose backend an external lane runs in containers: "
                "give it `image` or `build` (with its commands), or `compose` services; "
                "its local commands are for the local backend"
            )
        if external.compose is not None:
            path = external.compose.file
            services = named_services(name, external.compose)
            first = external.compose.workers[0]
            takes_pool(name, _parsed(services[first])[0], f"service {first!r} of {path}")
            sources = [_source(name, external.compose.file, n, raw) for n, raw in services.items()]
        elif external.build is not None:
            sources = [
                Source(context=Path(external.build.context), dockerfile=external.build.dockerfile)
            ]
        elif external.image is not None:
            sources = [Source(image=external.image)]
        for source in sources:
            _check_source(client, name, source)


def _check_source(client: docker.DockerClient, lane: str, source: Source) -> None:
    if source.image is not None and not present(client, source.image):
        raise OwnServiceError(
            f"lane {lane}: image {source.image!r} is missing on this engine: "
            "build or load it (no registry is reached), or give the lane `build`"
        )
    if source.context is not None and not (source.context / source.dockerfile).is_file():
        raise OwnServiceError(
            f"lane {lane}: no Dockerfile {source.dockerfile!r} in {source.context}"
        )


def make_images(client: docker.DockerClient, lanes: Mapping[str, OwnLane], base: str) -> None:
    """Build every lane's build (its `BASE` argument the harness's offline base, so no
    registry is needed); check every named image is present. Each build once, from the
    engine's cache when its context did not change."""
    built: set[str] = set()
    for name, own in lanes.items():
        for service in [own.webhook, *own.workers]:
            source = service.source
            _check_source(client, name, source)
            if source.image is not None or source.tag in built:
                continue
            assert source.context is not None
            try:
                _build(
                    client,
                    source.tag,
                    False,
                    path=str(source.context),
                    dockerfile=source.dockerfile,
                    buildargs={"BASE": base},
                )
            except ImageError as exc:
                raise OwnServiceError(f"lane {name}: {exc}") from None
            built.add(source.tag)


def project_services(
    lane: str, own: OwnLane, common: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """The lane's services in the run's compose file: `webhook-<lane>` (its port published
    on 127.0.0.1), `worker-<lane>` (the lane's worker), `worker-<lane>-<n>` (the others)."""

    def service(one: OwnService) -> dict[str, Any]:
        entry: dict[str, Any] = dict(common) | {
            "image": one.source.tag,
            "pull_policy": "never",
            "environment": one.environment,
            "stop_grace_period": "10s",
        }
        if one.command:
            entry["command"] = one.command
        if one.entrypoint is not None:
            entry["entrypoint"] = one.entrypoint
        if one.working_dir:
            entry["working_dir"] = one.working_dir
        return entry

    services = {f"webhook-{lane}": service(own.webhook) | {"ports": [f"127.0.0.1:0:{own.port}"]}}
    for index, worker in enumerate(own.workers):
        suffix = "" if index == 0 else f"-{index + 1}"
        services[f"worker-{lane}{suffix}"] = service(worker)
    return services
