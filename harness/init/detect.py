"""What `harness init` reads from a team's repository: the facts a scenario needs.

Plain text search, never an import: the bot's code is not run to be inspected (its
settings may need secrets, a database, or a broker). Each fact is either found, with
where it was found, or missing; the writer marks what is missing.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..errors import InputError

# Folders that hold no code of the team's own (or too much of someone else's).
SKIPPED = {
    ".git", ".hg", ".venv", "venv", "env", ".env", ".tox", ".nox", "node_modules",
    "__pycache__", "build", "dist", "site-packages", ".mypy_cache", ".ruff_cache",
    ".pytest_cache", "reports", "tests", "test",
}  # fmt: skip
MAX_FILES = 5000  # a bounded walk: init reads a repository, not a disk
# The compose files `docker compose` reads by default, in its order of preference.
COMPOSE_FILES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
WEB_WORDS = ("runserver", "gunicorn", "uvicorn", "daphne", "uwsgi", "hypercorn")
PROJECT_FILES = ("manage.py", "pyproject.toml", "setup.py", "setup.cfg", "requirements.txt")

CELERY_APP = re.compile(
    r"^[ \t]*(?P<var>\w+)[ \t]*(?::[ \t]*[\w.]+[ \t]*)?=[ \t]*(?:celery\.)?Celery\(", re.MULTILINE
)
CONFIG_NAMESPACE = re.compile(
    r"config_from_object\([^)]*namespace\s*=\s*[\"'](?P<namespace>\w+)[\"']", re.DOTALL
)
SETTINGS_MODULE = re.compile(r"DJANGO_SETTINGS_MODULE[\"']\s*,\s*[\"'](?P<module>[\w.]+)[\"']")
ROOT_URLCONF = re.compile(r"^ROOT_URLCONF\s*=\s*[\"'](?P<module>[\w.]+)[\"']", re.MULTILINE)
ROUTE = re.compile(r"\b(?:re_)?path\(\s*r?[\"'](?P<route>[^\"']*)[\"']\s*,\s*(?P<target>[^)]*)")
INCLUDE = re.compile(r"include\(\s*[\"'](?P<module>[\w.]+)[\"']")
ENV_READ = re.compile(
    r"(?:environ(?:\.get)?|getenv|\benv(?:\.\w+)?|\bconfig)\s*[\(\[]\s*[\"'](?P<name>[A-Z][A-Z0-9_]*)[\"']"
)
DEFAULT_QUEUE = re.compile(
    r"^(?:CELERY_TASK_DEFAULT_QUEUE|task_default_queue)\s*=\s*(?P<value>.+)$", re.M
)
LITERAL = re.compile(r"^[\"'](?P<text>[\w.:-]+)[\"']\s*(?:#.*)?$")
COMMENT = re.compile(r"^[ \t]*#.*$", re.MULTILINE)
# A Cloud API setting's name says whose it is: no SENTRY_API_URL or GITHUB_TOKEN.
WHATSAPP_WORDS = ("WHATSAPP", "WA_", "META", "GRAPH", "FACEBOOK", "FB_")

# What the harness must reach in the bot's settings, and the variables it sets by default.
ROLES: dict[str, tuple[str, str]] = {
    # role: (the variable the harness sets, what it is)
    "broker_url": ("CELERY_BROKER_URL", "the Celery broker URL"),
    "api_url": ("WHATSAPP_API_URL", "the Cloud API's base URL (the mock's, in a run)"),
    "phone_number_id": ("WHATSAPP_PHONE_NUMBER_ID", "the business phone number id"),
    "token": ("WHATSAPP_ACCESS_TOKEN", "the Cloud API access token"),
    "app_secret": ("WHATSAPP_APP_SECRET", "the app secret that signs webhooks"),
    "verify_token": ("WHATSAPP_VERIFY_TOKEN", "the webhook's verify token"),
    "parts": ("FIXTURES_PARTS", "how many parts a fixtures reply has"),
    "spacing_s": ("FIXTURES_SPACING_S", "the seconds between parts"),
}


def _role(name: str) -> str | None:
    """Which role a settings variable plays, by its name (None: none of the harness's)."""
    upper = name.upper()
    whatsapp = any(word in upper for word in WHATSAPP_WORDS)
    checks = (
        ("broker_url", "BROKER" in upper),
        ("verify_token", whatsapp and "VERIFY" in upper),
        ("app_secret", whatsapp and "SECRET" in upper),
        ("phone_number_id", whatsapp and "PHONE" in upper and "ID" in upper),
        ("token", whatsapp and "TOKEN" in upper and "VERIFY" not in upper),
        ("api_url", whatsapp and "URL" in upper),
        ("parts", "FIXTURES" in upper and "PARTS" in upper),
        ("spacing_s", "FIXTURES" in upper and "SPACING" in upper),
    )
    return next((role for role, hit in checks if hit), None)


@dataclass(frozen=True)
class Found:
    """A fact and where it was read (a file relative to the root, and a line)."""

    value: str
    where: str


@dataclass(frozen=True)
class CeleryApp:
    module: str  # dotted, from the root
    variable: str
    where: str
    namespace: str | None  # config_from_object(..., namespace=...) in the same file

    @property
    def argument(self) -> str:
        """What `celery -A` takes for it."""
        return (
            self.module if self.variable in ("app", "celery") else f"{self.module}:{self.variable}"
        )


@dataclass(frozen=True)
class ComposeFound:
    """A compose file at the root, and the services init could tell apart in it."""

    file: str  # relative to the root
    webhook: str | None  # the service serving HTTP (runserver, gunicorn, ...)
    workers: list[str]  # services running `celery ... worker`, the default queue's first


@dataclass
class Project:
    """What was found in a repository; None where nothing was."""

    root: Path
    name: str
    django: bool
    celery_apps: list[CeleryApp] = field(default_factory=list)
    settings: Found | None = None  # the settings module
    webhook_path: Found | None = None
    env: dict[str, Found] = field(default_factory=dict)  # role -> the variable read
    pool_variable: Found | None = None  # CELERY_WORKER_POOL read from the environment
    queue: Found | None = None  # the queue the bot sends to, for the worker's -Q
    installs: str | None = None  # how CI installs the project
    compose: ComposeFound | None = None  # the team's own deployment, if it has one


class InitError(InputError):
    """The directory cannot be set up: one line saying what was found and what to do."""

    def __str__(self) -> str:
        return f"harness init: {super().__str__()}"


def python_files(root: Path) -> list[Path]:
    found: list[Path] = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED and not d.startswith("."))
        found += [Path(folder) / n for n in sorted(names) if n.endswith(".py")]
        if len(found) >= MAX_FILES:
            break
    return found[:MAX_FILES]


def _read(path: Path) -> str:
    """A file's text with its comment lines blanked (line numbers kept): a route or a
    setting that is commented out is not the bot's."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return COMMENT.sub("", text)


def _module_of(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _module_files(root: Path, module: str) -> list[Path]:
    """A dotted module's file, or a package's files (a settings package)."""
    base = root.joinpath(*module.split("."))
    if base.with_suffix(".py").is_file():
        return [base.with_suffix(".py")]
    if base.is_dir():
        return sorted(base.glob("*.py"))
    return []


def celery_apps(root: Path, files: list[Path]) -> list[CeleryApp]:
    apps = []
    for path in files:
        text = _read(path)
        for match in CELERY_APP.finditer(text):
            namespace = CONFIG_NAMESPACE.search(text)
            apps.append(
                CeleryApp(
                    module=_module_of(path, root),
                    variable=match["var"],
                    where=f"{path.relative_to(root)}:{_line_of(text, match.start())}",
                    namespace=namespace["namespace"] if namespace else None,
                )
            )
    return apps


def webhook_route(root: Path, urlconf: str) -> Found | None:
    """The first URL route whose path or view names a webhook, from the root urlconf down."""
    queue: list[tuple[str, str]] = [(urlconf, "/")]
    seen: set[str] = set()
    while queue:
        module, prefix = queue.pop(0)
        if module in seen:
            continue
        seen.add(module)
        for path in _module_files(root, module):
            text = _read(path)
            for match in ROUTE.finditer(text):
                route, target = match["route"].lstrip("^").rstrip("$"), match["target"]
                included = INCLUDE.search(target)
                if included:
                    queue.append((included["module"], prefix + route))
                elif "webhook" in (route + target).lower():
                    if any(sign in route for sign in "(<\\"):
                        return None  # a pattern, not a path: the person fills it in
                    where = f"{path.relative_to(root)}:{_line_of(text, match.start())}"
                    return Found(prefix + route, where)
    return None


def settings_queue(root: Path, module: str) -> Found | None:
    """The queue the bot's tasks go to: `{queue}` where the settings read it from the
    environment (the harness sets CELERY_TASK_QUEUE, or the variable named), the literal
    they name, or Celery's default `celery` where they name none; None: cannot tell."""
    for path in _module_files(root, module):
        text = _read(path)
        found = DEFAULT_QUEUE.search(text)
        if found is None:
            continue
        where = f"{path.relative_to(root)}:{_line_of(text, found.start())}"
        value = found["value"].strip()
        read = ENV_READ.search(value)
        if read is not None:
            return Found(read["name"], where)
        literal = LITERAL.match(value)
        return Found(f"={literal['text']}", where) if literal else None
    return Found("=celery", "Celery's default")


def settings_env(root: Path, module: str) -> tuple[dict[str, Found], Found | None]:
    """The environment variables the settings read, by role; and the pool's, if read."""
    roles: dict[str, Found] = {}
    pool = None
    for path in _module_files(root, module):
        text = _read(path)
        for match in ENV_READ.finditer(text):
            name = match["name"]
            where = f"{path.relative_to(root)}:{_line_of(text, match.start())}"
            if name == "CELERY_WORKER_POOL":
                pool = Found(name, where)
                continue
            role = _role(name)
            if role is not None and (role not in roles or name == ROLES[role][0]):
                roles[role] = Found(name, where)
    return roles, pool


def detect(root: Path) -> Project:
    """Everything init can tell from the files under `root`; InitError where it cannot start."""
    if not root.is_dir():
        raise InitError(f"{root}: no such directory")
    files = python_files(root)
    markers = [name for name in PROJECT_FILES if (root / name).is_file()]
    if not files and not markers:
        raise InitError(
            f"{root} holds no Python project (no {', '.join(PROJECT_FILES)} and no .py "
            "file): run `harness init` in your bot's repository"
        )
    manage = root / "manage.py"
    if not manage.is_file():
        nested = sorted(path.parent for path in files if path.name == "manage.py")
        if nested:
            where = nested[0].relative_to(root)
            raise InitError(
                f"{root} has no manage.py, {where}/ has one: run `harness init {where}` "
                "(the scenario's commands run where manage.py is)"
            )
    project = Project(root=root, name=_project_name(root), django=manage.is_file())
    project.celery_apps = celery_apps(root, files)
    if project.django:
        found = SETTINGS_MODULE.search(_read(manage))
        if found:
            project.settings = Found(found["module"], "manage.py")
    if project.settings is not None:
        project.env, project.pool_variable = settings_env(root, project.settings.value)
        project.queue = settings_queue(root, project.settings.value)
        for path in _module_files(root, project.settings.value):
            urlconf = ROOT_URLCONF.search(_read(path))
            if urlconf:
                project.webhook_path = webhook_route(root, urlconf["module"])
                break
    project.installs = _installs(root)
    project.compose = compose_services(root)
    return project


def compose_services(root: Path) -> ComposeFound | None:
    """The root's compose file and its web and worker services, by their commands (read
    as YAML, never run); None without one, or one that is not a compose file."""
    name = next((name for name in COMPOSE_FILES if (root / name).is_file()), None)
    if name is None:
        return None
    try:
        document = yaml.safe_load(_read(root / name))
    except yaml.YAMLError:
        return None
    services = document.get("services") if isinstance(document, dict) else None
    if not isinstance(services, dict):
        return None
    commands = {
        service: " ".join(map(str, raw)) if isinstance(raw, list) else str(raw)
        for service, body in services.items()
        if isinstance(body, dict) and (raw := body.get("command")) is not None
    }
    workers = [s for s, command in commands.items() if "celery" in command and " worker" in command]
    # The lane's worker first: the one consuming the default queue (or naming none).
    workers.sort(key=lambda s: not re.search(r"-Q\s*celery\b|^(?!.*(-Q|--queues))", commands[s]))
    web = [s for s, command in commands.items() if any(w in command for w in WEB_WORDS)]
    return ComposeFound(name, web[0] if web else None, workers)


def _project_name(root: Path) -> str:
    name = re.sub(r"[^a-z0-9-]+", "-", root.resolve().name.lower()).strip("-")
    return name or "bot"


def _installs(root: Path) -> str | None:
    """The command that installs the team's project in CI, from the files it has."""
    if (root / "requirements.txt").is_file():
        return "pip install -r requirements.txt"
    if (root / "pyproject.toml").is_file() or (root / "setup.py").is_file():
        return "pip install -e ."
    return None
