"""`harness init` in a team's repository: what it detects, what it writes, what it refuses.

The Django example is the repository a team has; copies of it are changed to take away
one fact at a time (the webhook route, the pool read from the environment), and each
missing fact must come back as a marked line that the harness refuses to run.
"""

from __future__ import annotations

import re
import shutil
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.init.detect import detect
from harness.scenario import UNFILLED_MARK, ScenarioError, load_scenario

pytestmark = pytest.mark.unit

DJANGO = Path(__file__).resolve().parents[2] / "examples" / "django-bot"
WRITTEN = ("stagger/pools.toml", "tests/test_stagger.py", ".github/workflows/stagger.yml")


@pytest.fixture
def bot(tmp_path: Path) -> Path:
    """A copy of the Django example without its scenarios, as a team's repository."""
    root = tmp_path / "my-bot"
    shutil.copytree(DJANGO, root, ignore=shutil.ignore_patterns("scenarios", "__pycache__"))
    return root


def init(root: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["init", str(root), *args])
    return result.exit_code, result.output


def test_the_django_example_is_detected_without_running_its_code(bot: Path) -> None:
    project = detect(bot)

    assert project.django
    assert project.name == "my-bot"
    assert [(a.argument, a.where, a.namespace) for a in project.celery_apps] == [
        ("botsite.celery", "botsite/celery.py:9", "CELERY")
    ]
    assert project.settings is not None
    assert project.settings.value == "botsite.settings"
    assert project.webhook_path is not None
    assert project.webhook_path.value == "/webhook/"
    assert project.pool_variable is not None
    assert {role: found.value for role, found in project.env.items()} == {
        "broker_url": "CELERY_BROKER_URL",
        "api_url": "WHATSAPP_API_URL",
        "phone_number_id": "WHATSAPP_PHONE_NUMBER_ID",
        "token": "WHATSAPP_ACCESS_TOKEN",
        "app_secret": "WHATSAPP_APP_SECRET",
        "verify_token": "WHATSAPP_VERIFY_TOKEN",
        "parts": "FIXTURES_PARTS",
        "spacing_s": "FIXTURES_SPACING_S",
    }


def test_init_writes_a_scenario_that_loads_a_test_and_a_workflow(bot: Path) -> None:
    code, output = init(bot)

    assert code == 0, output
    assert all((bot / name).is_file() for name in WRITTEN)
    scenario, _ = load_scenario(str(bot / "stagger" / "pools.toml"))
    assert [(lane.name, lane.pool, lane.pool_set_by, lane.expect) for lane in scenario.lanes] == [
        ("solo", "solo", "command-line", "pass"),
        ("prefork", "prefork", "command-line", "pass"),
        ("threads", "threads", "command-line", "pass"),
        ("gevent", "gevent", "command-line", "pass"),
        ("gevent-settings", "gevent", "settings", "fail"),
    ]
    workers = [lane.external.worker for lane in scenario.lanes if lane.external]
    assert all("-A botsite.celery " in worker for worker in workers)
    assert all(" -Q {queue} " in worker for worker in workers)  # the settings read it
    assert all(oct((bot / name).stat().st_mode & 0o777) == oct(0o644) for name in WRITTEN)
    assert [" -P {pool} " in worker for worker in workers] == [True] * 4 + [False]
    assert all(lane.external and lane.external.cwd == str(bot) for lane in scenario.lanes)
    compile((bot / "tests" / "test_stagger.py").read_text(), "test_stagger.py", "exec")
    # The example says everything init needs but where CI gets the harness from.
    assert [line for line in output.splitlines() if "fill in" in line] == [
        "  fill in .github/workflows/stagger.yml:20: where CI installs the harness from (a "
        "wheel, a git URL or your package index), with pytest; add `-c requirements.txt` to "
        "keep your pinned Celery"
    ]
    assert "- run: pip install -r requirements.txt" in (bot / WRITTEN[2]).read_text()
    assert output.rstrip().endswith(
        "git add stagger tests/test_stagger.py .github/workflows/stagger.yml"
    )


def test_what_init_cannot_tell_is_marked_and_the_scenario_refused_until_filled(
    bot: Path,
) -> None:
    urls = bot / "botsite" / "urls.py"
    urls.write_text(urls.read_text().replace('"webhook/", webhook', '"in/", receive'))
    settings = bot / "botsite" / "settings.py"
    settings.write_text(
        settings.read_text().replace('os.environ.get("FIXTURES_PARTS", "22")', '"22"')
    )

    (bot / "requirements.txt").unlink()

    code, output = init(bot)

    assert code == 0, output
    assert "fill in .github/workflows/stagger.yml:19: the command that installs" in output
    scenario_file = bot / "stagger" / "pools.toml"
    lines = scenario_file.read_text().splitlines()
    marked = [n for n, line in enumerate(lines, 1) if UNFILLED_MARK in line]
    assert len(marked) == 1 + 5  # messages, and each lane's webhook path
    assert f"fill in stagger/pools.toml:{marked[0] + 1}: how many parts" in output
    assert "webhook_path" in lines[marked[1]]  # the line after the mark
    with pytest.raises(ScenarioError, match=rf"pools.toml:{marked[0] + 1}, .*delete each mark"):
        load_scenario(str(scenario_file))
    # Filled in, it loads.
    filled = [
        line.replace('"?"', "22" if line.startswith("messages") else '"/in/"')
        for line in lines
        if UNFILLED_MARK not in line
    ]
    scenario_file.write_text("\n".join(filled) + "\n")
    scenario, _ = load_scenario(str(scenario_file))
    assert scenario.flow.messages == 22
    assert {lane.external.webhook_path for lane in scenario.lanes if lane.external} == {"/in/"}


def test_settings_that_do_not_read_the_pool_mark_the_trap_lane(bot: Path) -> None:
    settings = bot / "botsite" / "settings.py"
    text = settings.read_text()
    settings.write_text(
        text.replace('os.environ.get("CELERY_WORKER_POOL", "prefork")', '"prefork"')
    )

    code, output = init(bot)

    assert code == 0, output
    assert "fill in stagger/pools.toml:" in output
    assert "CELERY_WORKER_POOL" in output
    with pytest.raises(ScenarioError, match="still marked"):
        load_scenario(str(bot / "stagger" / "pools.toml"))
    # The compose form's trap lane too (the example has a compose file).
    assert "fill in stagger/compose.toml:" in output
    with pytest.raises(ScenarioError, match="still marked"):
        load_scenario(str(bot / "stagger" / "compose.toml"))


@pytest.mark.parametrize(
    ("arrange", "said"),
    [
        pytest.param(
            lambda root: shutil.rmtree(root) or root.mkdir(), "holds no Python project", id="empty"
        ),
        pytest.param(
            lambda root: (root / "worker2.py").write_text(
                "from celery import Celery\nother = Celery('x')\n"
            ),
            "2 Celery apps found: worker2 (worker2.py:2), botsite.celery (botsite/celery.py:9)",
            id="several-apps",
        ),
        pytest.param(
            lambda root: (
                (root / "tests").mkdir()
                or (root / "tests" / "test_stagger.py").write_text("# mine\n")
            ),
            "tests/test_stagger.py already exist(s)",
            id="exists",
        ),
    ],
)
def test_bad_directories_are_refused_in_one_line_and_nothing_is_written(
    bot: Path, arrange, said: str
) -> None:
    arrange(bot)
    before = sorted(str(p.relative_to(bot)) for p in bot.rglob("*"))

    code, output = init(bot)

    assert code == 2
    assert said in output
    assert output.startswith("harness init: ")
    assert len(output.strip().splitlines()) == 1
    assert sorted(str(p.relative_to(bot)) for p in bot.rglob("*")) == before


def test_several_apps_are_resolved_by_naming_one_and_force_overwrites(bot: Path) -> None:
    (bot / "worker2.py").write_text("from celery import Celery\nother = Celery('x')\n")
    assert init(bot, "--celery-app", "nope")[0] == 2

    code, output = init(bot, "--celery-app", "worker2")
    assert code == 0, output
    pools = (bot / "stagger" / "pools.toml").read_text()
    assert "-A worker2:other " in pools
    assert tomllib.loads(pools)["name"] == "my-bot-pools"

    assert init(bot)[0] == 2  # its own files now exist
    code, output = init(bot, "--force", "--celery-app", "botsite.celery")
    assert code == 0, output
    assert "-A botsite.celery " in (bot / "stagger" / "pools.toml").read_text()


def _settings(bot: Path, old: str, new: str) -> None:
    settings = bot / "botsite" / "settings.py"
    text = settings.read_text()
    assert old in text
    settings.write_text(text.replace(old, new))


@pytest.mark.parametrize(
    ("line", "queue"),
    [
        pytest.param('CELERY_TASK_DEFAULT_QUEUE = "io"', " -Q io ", id="named"),
        pytest.param("", " -Q celery ", id="celery-default"),
    ],
)
def test_the_worker_consumes_the_queue_the_settings_name(bot: Path, line: str, queue: str) -> None:
    _settings(
        bot, 'CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_TASK_QUEUE", "celery")', line
    )

    assert init(bot)[0] == 0
    scenario, _ = load_scenario(str(bot / "stagger" / "pools.toml"))
    assert all(queue in lane.external.worker for lane in scenario.lanes if lane.external)


def test_a_queue_init_cannot_read_is_marked(bot: Path) -> None:
    _settings(
        bot,
        'CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_TASK_QUEUE", "celery")',
        "CELERY_TASK_DEFAULT_QUEUE = QUEUES[0]",
    )
    code, output = init(bot)
    assert code == 0
    assert "the queue your tasks go to" in output


def test_cloud_api_settings_must_name_whatsapp_and_a_missing_url_is_marked(bot: Path) -> None:
    _settings(bot, 'os.environ.get("WHATSAPP_API_URL", "https://graph.facebook.com")', '"x"')
    settings = bot / "botsite" / "settings.py"
    settings.write_text(
        settings.read_text() + 'SENTRY_API_URL = os.environ.get("SENTRY_API_URL")\n'
    )

    code, output = init(bot)

    assert code == 0
    text = (bot / "stagger" / "pools.toml").read_text()
    assert "SENTRY_API_URL" not in text
    assert "no environment variable for the Cloud API's base URL" in output


def test_other_names_are_mapped_through_the_lane_environment(bot: Path) -> None:
    _settings(bot, 'os.environ.get("WHATSAPP_APP_SECRET", "")', 'config("META_APP_SECRET")')

    assert init(bot)[0] == 0
    scenario, _ = load_scenario(str(bot / "stagger" / "pools.toml"))
    assert all(
        lane.external.env == {"META_APP_SECRET": "{app_secret}"}
        for lane in scenario.lanes
        if lane.external
    )


@pytest.mark.parametrize(
    "urls",
    [
        pytest.param(
            'urlpatterns = [\n    # path("old-webhook/", webhook),\n    path("in/", webhook)]\n',
            id="commented-route-ignored",
        ),
        pytest.param(
            'urlpatterns = [re_path(r"^wa/(?P<account>\\w+)/webhook/$", webhook)]\n',
            id="pattern-left-to-fill",
        ),
    ],
)
def test_only_a_plain_live_route_is_taken(bot: Path, urls: str) -> None:
    (bot / "botsite" / "urls.py").write_text(
        "from django.urls import path, re_path\nfrom replies.views import webhook\n" + urls
    )
    code, output = init(bot)
    assert code == 0
    text = (bot / "stagger" / "pools.toml").read_text()
    assert "old-webhook" not in text
    assert ('webhook_path = "/in/"' in text) != ("the URL path of the bot's" in output)


def test_manage_py_in_a_subfolder_names_it(bot: Path, tmp_path: Path) -> None:
    monorepo = tmp_path / "mono"
    monorepo.mkdir()
    bot.rename(monorepo / "backend")

    code, output = init(monorepo)

    assert code == 2
    assert "backend/ has one: run `harness init backend`" in output
    assert not (monorepo / "stagger").exists()


def test_a_failed_write_puts_back_what_it_replaced(bot: Path) -> None:
    (bot / "tests").mkdir()
    (bot / "tests" / "test_stagger.py").write_text("# mine\n")
    (bot / ".github" / "workflows" / "stagger.yml").mkdir(parents=True)  # cannot be replaced

    code, output = init(bot, "--force")

    assert code == 2
    assert "cannot write" in output
    assert "nothing was changed" in output
    assert (bot / "tests" / "test_stagger.py").read_text() == "# mine\n"
    assert not (bot / "stagger" / "pools.toml").exists()


def test_a_compose_file_is_offered_as_the_compose_form(bot: Path) -> None:
    """The example's compose.yml: a second scenario runs its own services on containers,
    the web service as the webhook and the I/O worker (queue `celery`) as the lane's."""
    code, output = init(bot)

    assert code == 0, output
    assert "wrote stagger/compose.toml" in output
    assert "harness run stagger/compose.toml --backend compose" in output
    scenario, _ = load_scenario(str(bot / "stagger" / "compose.toml"))
    assert [(lane.name, lane.pool_set_by) for lane in scenario.lanes][-1] == (
        "gevent-settings",
        "settings",
    )
    for lane in scenario.lanes:
        assert lane.external is not None
        compose = lane.external.compose
        assert compose is not None
        assert compose.file == str(bot / "compose.yml")
        assert (compose.webhook, compose.workers) == (
            "web",
            ["celery_io_worker", "celery_cpu_worker"],
        )
        assert lane.external.webhook_path == "/webhook/"


def test_a_compose_file_without_a_worker_marks_the_services(bot: Path) -> None:
    (bot / "compose.yml").unlink()
    (bot / "docker-compose.yml").write_text("services:\n  web:\n    command: gunicorn app\n")
    code, output = init(bot)

    assert code == 0, output
    assert "fill in stagger/compose.toml" in output
    with pytest.raises(ScenarioError, match=re.escape(UNFILLED_MARK)):
        load_scenario(str(bot / "stagger" / "compose.toml"))


def test_no_compose_file_no_compose_scenario(bot: Path) -> None:
    (bot / "compose.yml").unlink()
    code, output = init(bot)

    assert code == 0, output
    assert not (bot / "stagger" / "compose.toml").exists()
    assert "--backend compose" not in output
