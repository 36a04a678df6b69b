"""External lanes in containers, without an engine: the scenario's forms and their errors,
the worker's command given the lane's pool, a lane's services read from the team's compose
file, and the run's compose file with them (`harness.stack.own_services`)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import docker.errors
import pytest
from pydantic import ValidationError

from harness.scenario import ScenarioError, load_scenario
from harness.scenario.external import External
from harness.stack.compose import lane_env, project_file
from harness.stack.local import LocalStack
from harness.stack.own_services import (
    OwnService,
    OwnServiceError,
    check_lanes,
    plan,
    pool_command,
    project_services,
)
from harness.stack.spec import LaneSpec, StackSpec

pytestmark = pytest.mark.unit

DJANGO = Path(__file__).resolve().parents[2] / "examples" / "django-bot"
COMPOSE = {"file": str(DJANGO / "compose.yml"), "webhook": "web"}
INCIDENT = COMPOSE | {"workers": ["celery_io_worker", "celery_cpu_worker"]}
IMAGE_FORM = {
    "build": {"context": str(DJANGO)},
    "webhook": "{python} manage.py runserver 0.0.0.0:{port}",
    "worker": "{python} -m celery -A botsite worker -Q {queue} -P {pool} -c {concurrency}",
}


def lane(external: dict[str, Any], **fields: Any) -> LaneSpec:
    return LaneSpec(name="mine", external=External.model_validate(external), **fields)


def seen(service: OwnService) -> dict[str, str]:
    """The environment as the container gets it: references filled from `passed`."""
    return {
        name: service.passed.get(value[2:-1], value) if value.startswith("${") else value
        for name, value in service.environment.items()
    }


# -- the scenario's forms ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("external", "said"),
    [
        (
            {"compose": INCIDENT, "worker": "celery worker"},
            "drop worker (the commands come from the compose file)",
        ),
        ({"image": "bot", "build": {"context": "."}, "webhook": "w", "worker": "c"}, "not both"),
        ({"image": "bot", "worker": "celery worker"}, "give the webhook's command"),
        ({"image": "bot", "url": "http://127.0.0.1:8000/", "worker": "w"}, "not `url`"),
        ({"compose": COMPOSE | {"workers": []}}, "at least 1 item"),
        ({"compose": COMPOSE | {"workers": ["a", "a"]}}, "name a service twice"),
        ({"compose": COMPOSE | {"workers": ["a b"]}}, "should match pattern"),
        ({"webhook": "w"}, "give the worker's command (`worker`), or `compose` services"),
    ],
)
def test_a_form_that_does_not_fit_is_refused_with_what_to_give(
    external: dict[str, Any], said: str
) -> None:
    with pytest.raises(ValidationError, match=said.replace("(", r"\(").replace(")", r"\)")):
        External.model_validate(external)


def test_the_container_forms_are_told_apart_from_local_commands() -> None:
    assert External.model_validate({"compose": INCIDENT}).in_containers
    assert External.model_validate(IMAGE_FORM).in_containers
    local = External.model_validate({"webhook": "w {port}", "worker": "celery worker"})
    assert not local.in_containers


def test_paths_are_read_relative_to_the_scenario_file(tmp_path: Path) -> None:
    (tmp_path / "s.toml").write_text(
        (DJANGO / "scenarios" / "django-compose-incident.toml").read_text()
    )
    scenario, _ = load_scenario(str(tmp_path / "s.toml"))
    external = scenario.lanes[0].external
    assert external is not None
    assert external.compose is not None
    assert external.compose.file == str((tmp_path.parent / "compose.yml").resolve())
    pools, _ = load_scenario(str(DJANGO / "scenarios" / "django-compose-pools.toml"))
    build = pools.lanes[0].external.build  # type: ignore[union-attr]
    assert build is not None
    assert build.context == str(DJANGO)


def test_the_local_backend_refuses_a_lane_in_containers(tmp_path: Path) -> None:
    spec = StackSpec(lanes=[lane({"compose": INCIDENT}, pool="solo")])
    with pytest.raises(ScenarioError, match=r"lane mine: .* use --backend compose"):
        LocalStack(spec, tmp_path)


# -- the worker's command ------------------------------------------------------------------

TEAM = ["celery", "-A", "app", "worker", "-Q", "celery", "-P", "prefork", "--concurrency=20"]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"pool": "gevent", "concurrency": 20},
            [*TEAM[:6], "--pool=gevent", "--concurrency=20", "-E"],
        ),
        (
            {"pool": "gevent", "concurrency": 20, "pool_from_settings": True},
            [*TEAM[:6], "--concurrency=20", "-E"],
        ),
        # No concurrency of the lane's own: the team's stays.
        ({"pool": "solo"}, [*TEAM[:6], "--concurrency=20", "--pool=solo", "-E"]),
    ],
)
def test_the_lanes_worker_gets_its_pool_and_concurrency_in_place_of_the_teams(
    fields: dict[str, Any], expected: list[str]
) -> None:
    assert pool_command(lane({"compose": INCIDENT}, **fields), TEAM, "it") == expected


def test_every_spelling_of_pool_and_concurrency_is_replaced() -> None:
    argv = ["python", "-m", "celery", "-A", "a", "worker", "-Pthreads", "-c", "4", "--pool", "x"]
    argv += ["-E"]
    out = pool_command(lane({"compose": INCIDENT}, pool="threads", concurrency=8), argv, "it")
    kept = ["python", "-m", "celery", "-A", "a", "worker", "-E"]
    assert out == [*kept, "--pool=threads", "--concurrency=8"]


@pytest.mark.parametrize("argv", [None, ["sh", "-c", "celery -A a worker"], ["./start-worker"]])
def test_a_command_that_cannot_take_a_pool_is_said_with_the_lane(argv: list[str] | None) -> None:
    with pytest.raises(OwnServiceError, match=r"lane mine: it has .* cannot take a pool"):
        pool_command(lane({"compose": INCIDENT}, pool="solo"), argv, "it")


# -- a lane's services ---------------------------------------------------------------------


def _spec(*lanes: LaneSpec) -> StackSpec:
    return StackSpec(lanes=list(lanes), bot_env={"FIXTURES_PARTS": "8"})


def test_compose_services_run_the_teams_image_and_command_under_the_harness_environment() -> None:
    mine = lane({"compose": INCIDENT}, pool="gevent", concurrency=20, pool_from_settings=True)
    env = lane_env(_spec(mine), 0, mine, "abcd")
    own = plan(mine, env)
    io, cpu = own.workers
    assert io.command[-2:] == ["--concurrency=20", "-E"]
    assert "--pool=prefork" in cpu.command  # the other workers run as the file has them
    for service in (own.webhook, io, cpu):
        assert service.source.context == DJANGO
        environment = seen(service)
        assert environment["CELERY_BROKER_URL"] == env["CELERY_BROKER_URL"]
        assert environment["WHATSAPP_API_URL"] == "http://mock:8000"
        assert environment["CELERY_WORKER_POOL"] == "gevent"
        assert environment["DJANGO_ALLOWED_HOSTS"] == "*"  # the team's own stays
        assert "CELERY_TASK_QUEUE" not in environment  # the team's queues stay
    assert (own.port, own.path) == (8000, "/webhook/")


def test_an_image_lanes_placeholders_are_filled_as_seen_inside_the_stack() -> None:
    mine = lane(IMAGE_FORM | {"env": {"BOT_URL": "{api_url}"}}, pool="threads", concurrency=8)
    env = lane_env(_spec(mine), 0, mine, "abcd")
    own = plan(mine, env)
    assert own.webhook.command == ["python", "manage.py", "runserver", "0.0.0.0:8000"]
    worker = own.workers[0].command
    assert worker[-7:] == ["-Q", "stagger-mine", "-P", "threads", "-c", "8", "-E"]
    assert own.webhook.environment["BOT_URL"] == "http://mock:8000"


def test_the_run_compose_file_holds_the_lanes_own_services() -> None:
    mine = lane({"compose": INCIDENT}, pool="gevent", concurrency=20)
    spec = _spec(mine, LaneSpec(name="replica", pool="solo"))
    envs = {one.name: lane_env(spec, i, one, "abcd") for i, one in enumerate(spec.lanes)}
    own = {"mine": plan(mine, envs["mine"])}
    labels = {"run": "abcd"}
    project = project_file(spec, envs, Path("/m.json"), "stagger-abcd", labels, own)
    services = project["services"]
    assert set(services) == {
        "broker", "mock", "webhook-mine", "worker-mine", "worker-mine-2",
        "webhook-replica", "worker-replica",
    }  # fmt: skip
    web, worker = services["webhook-mine"], services["worker-mine"]
    assert web["ports"] == ["127.0.0.1:0:8000"]
    assert web["image"] == worker["image"] == own["mine"].webhook.source.tag
    assert web["image"].startswith("stagger/own-django-bot:")
    assert worker["pull_policy"] == "never"
    assert worker["labels"] == labels
    assert "--pool=gevent" in worker["command"]
    assert set(worker["depends_on"]) == {"broker", "mock"}


# -- checked before anything starts --------------------------------------------------------


class Images:
    def __init__(self, present: set[str]) -> None:
        self.present = present

    def get(self, tag: str) -> None:
        if tag not in self.present:
            raise docker.errors.ImageNotFound(tag)


def _client(*present: str) -> Any:
    return SimpleNamespace(images=Images(set(present)))


@pytest.mark.parametrize(
    ("external", "said"),
    [
        (
            {"compose": COMPOSE | {"workers": ["worker"]}},
            "lane mine: compose file .* has no service 'worker'; it has: celery_cpu_worker, "
            "celery_io_worker, redis, web",
        ),
        (
            {"compose": {"file": "/no/such.yml", "webhook": "w", "workers": ["w"]}},
            "lane mine: compose file /no/such.yml: No such file",
        ),
        (
            {"image": "team/bot:1", "webhook": "w", "worker": "celery worker"},
            "lane mine: image 'team/bot:1' is missing",
        ),
        (
            {"build": {"context": "/tmp", "dockerfile": "No.Dockerfile"}, "webhook": "w",
             "worker": "celery worker"},
            "lane mine: no Dockerfile 'No.Dockerfile' in /tmp",
        ),
        (
            {"webhook": "w {port}", "worker": "celery worker"},
            "lane mine: on the compose backend an external lane runs in containers",
        ),
    ],
)  # fmt: skip
def test_bad_input_names_the_lane_and_what_to_fix(external: dict[str, Any], said: str) -> None:
    with pytest.raises(OwnServiceError, match=said):
        check_lanes(_client(), {"mine": External.model_validate(external)})


def test_a_worker_service_whose_command_is_a_shell_is_refused(tmp_path: Path) -> None:
    (tmp_path / "compose.yml").write_text(
        "services:\n  web: {image: bot}\n  worker: {image: bot, command: sh -c 'celery worker'}\n"
    )
    compose = {"file": str(tmp_path / "compose.yml"), "webhook": "web", "workers": ["worker"]}
    with pytest.raises(OwnServiceError, match=r"service 'worker' .* cannot take a pool"):
        check_lanes(_client("bot"), {"mine": External.model_validate({"compose": compose})})
    check_lanes(_client("bot"), {"mine": External.model_validate({"compose": INCIDENT})})


def test_what_the_harness_writes_is_kept_from_compose_interpolation() -> None:
    """A `$` in the scenario's commands or env reaches the container as written; the
    team's own file was written for compose's interpolation and is kept as it is."""
    mine = lane(IMAGE_FORM | {"env": {"GREETING": "$HOME"}, "cwd": "/srv/bot"}, pool="solo")
    own = plan(mine, lane_env(_spec(mine), 0, mine, "abcd"))
    assert own.webhook.environment["GREETING"] == "$$HOME"
    assert own.webhook.working_dir == "/srv/bot"  # in the container, not on the host


def test_the_heartbeat_stays_on_so_the_worker_says_it_is_online() -> None:
    """Celery sends worker-online from its heartbeat step: `--without-heartbeat` goes."""
    spec = LaneSpec(name="mine", pool="threads", concurrency=4)
    argv = [*TEAM, "--without-gossip", "--without-heartbeat", "--without-mingle"]
    got = pool_command(spec, argv, "service 'worker'")
    assert "--without-heartbeat" not in got
    assert got == [*TEAM[:6], "--without-gossip", "--without-mingle", "--pool=threads",
                   "--concurrency=4", "-E"]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ("    command: celery -A app worker 'unclosed\n", "invalid command line string"),
        ("    command: 42\n", "services.worker.command must be a"),
        (
            "    command: celery -A app worker\n    environment: A=1\n",
            "services.worker.environment must be a mapping",
        ),
        ("    env_file: [missing.env]\n", "missing.env not found"),
        (
            '    environment: {X: "${STAGGER_UNSET_NEED:?set it}"}\n',
            "required variable STAGGER_UNSET_NEED is missing a value",
        ),
    ],
)
def test_a_file_compose_cannot_read_is_one_line_naming_the_lane_and_what_compose_said(
    tmp_path: Path, body: str, said: str
) -> None:
    compose = tmp_path / "compose.yml"
    compose.write_text("services:\n  web:\n    image: bot\n  worker:\n    image: bot\n" + body)
    external = External.model_validate(
        {"compose": {"file": str(compose), "webhook": "web", "workers": ["worker"]}}
    )
    with pytest.raises(OwnServiceError) as raised:
        check_lanes(None, {"mine": external})  # type: ignore[arg-type]  # fails before Docker
    message = str(raised.value)
    assert message.startswith(f"lane mine: compose file {compose}: "), message
    assert said in message
    assert "\n" not in message


def test_the_file_is_read_as_compose_reads_it(tmp_path: Path, monkeypatch: Any) -> None:
    """env_file, extends, `${VAR}` from the environment and the file's `.env`, services
    under a profile: what `docker compose up` would run."""
    (tmp_path / "base.yml").write_text(
        "services:\n  base:\n    image: bot\n    environment: [FROM_BASE=1]\n"
    )
    (tmp_path / "bot.env").write_text("FROM_ENV_FILE=yes\n")
    (tmp_path / ".env").write_text("QUEUE=from-dotenv\n")
    (tmp_path / "compose.yml").write_text(
        "services:\n"
        "  web:\n    build: .\n    env_file: [bot.env]\n    command: serve ${PORT_WORD}\n"
        "  worker:\n    extends: {file: base.yml, service: base}\n"
        "    command: celery -A app worker -Q ${QUEUE}\n"
        "  debug:\n    image: bot\n    profiles: [debug]\n"
        "    command: celery -A app worker -Q debug\n"
    )
    monkeypatch.setenv("PORT_WORD", "8000")
    compose = {"file": str(tmp_path / "compose.yml"), "webhook": "web"}
    mine = lane({"compose": compose | {"workers": ["worker", "debug"]}}, pool="solo")
    own = plan(mine, lane_env(_spec(mine), 0, mine, "abcd"))
    worker, debug = own.workers
    assert own.webhook.command == ["serve", "8000"]
    assert seen(own.webhook)["FROM_ENV_FILE"] == "yes"
    assert own.webhook.source.context == tmp_path
    assert worker.command[:6] == ["celery", "-A", "app", "worker", "-Q", "from-dotenv"]
    assert seen(worker)["FROM_BASE"] == "1"
    assert worker.source.image == "bot"
    assert debug.command[-2:] == ["-Q", "debug"]  # under a profile: read all the same


@pytest.mark.parametrize("pool", ["prefork", "solo"])
def test_a_pool_on_the_command_line_also_replaces_the_files_settings_pool(pool: str) -> None:
    """Celery takes `--pool=prefork` for its default and runs the configured worker_pool
    instead: the lane's worker gets its pool in CELERY_WORKER_POOL too; the file's other
    workers and web keep the file's."""
    mine = lane({"compose": INCIDENT}, pool=pool)
    own = plan(mine, lane_env(_spec(mine), 0, mine, "abcd"))
    io, cpu = own.workers
    assert f"--pool={pool}" in io.command
    assert io.environment["CELERY_WORKER_POOL"] == pool
    assert seen(cpu)["CELERY_WORKER_POOL"] == "gevent"  # as the file has it
    assert seen(own.webhook)["CELERY_WORKER_POOL"] == "gevent"


def test_the_teams_values_reach_compose_by_reference_not_in_the_run_directory(
    tmp_path: Path,
) -> None:
    """What the team's env_file and shell give (secrets, as a rule) is handed to
    `docker compose` in its environment; the run's compose file names it only."""
    (tmp_path / "secret.env").write_text("API_KEY=s3cr$$et-value\n")
    (tmp_path / "compose.yml").write_text(
        "services:\n  web:\n    image: bot\n    env_file: [secret.env]\n"
        "  worker:\n    image: bot\n    command: celery -A app worker\n"
    )
    compose = {"file": str(tmp_path / "compose.yml"), "webhook": "web", "workers": ["worker"]}
    mine = lane({"compose": compose}, pool="solo")
    own = plan(mine, lane_env(_spec(mine), 0, mine, "abcd"))
    written = str(project_services("mine", own, {}))
    assert "s3cr" not in written
    reference = own.webhook.environment["API_KEY"]
    assert reference.startswith("${STAGGER_TEAM_")
    assert own.passed[reference[2:-1]] == "s3cr$et-value"  # compose's `$$`, read once
    assert seen(own.webhook)["WHATSAPP_API_URL"] == "http://mock:8000"  # the harness's: as is
