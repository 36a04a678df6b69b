"""No secret is committed: secrets come from the environment or from flags.

Every file git tracks is scanned for credentials in the shapes Meta and others issue them,
and every value given to a setting named like a secret (token, secret, password, key)
outside the tests must be empty, prose, or a placeholder that says what it is. The bot reads
its secrets from the environment only; the mock from its flags (or a config file named on
the command line).
"""

from __future__ import annotations

import inspect
import re
import subprocess
from pathlib import Path

import pytest

from harness.bot.settings import BotSettings, load_settings
from mock_meta_api import cli as mock_cli

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
# Credentials as issued: Meta access tokens (EAA...), app secrets (32 hex digits, quoted),
# private keys, AWS and GitHub tokens.
ISSUED = re.compile(
    r"EAA[A-Za-z0-9]{30,}"
    r"|[\"'][0-9a-f]{32}[\"']"
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----"
    r"|AKIA[0-9A-Z]{16}"
    r"|gh[pousr]_[A-Za-z0-9]{30,}"
)
WORDS = ("secret", "token", "password", "passwd", "apikey", "api_key")
NAME = r"[A-Za-z_.-]*(?:secret|token|password|passwd|api_?key)[A-Za-z_]*"
# A value given to a secret-named setting: in code or JSON, in an env file, as a compose
# default, as a command-line flag.
ASSIGNED = [
    re.compile(rf"(?i)\b{NAME}[\"']?\s*[:=]\s*[\"']([^\"'\n]*)[\"']"),
    re.compile(rf"(?m)^(?:export\s+)?{NAME.upper()}=([^\s\"'#]*)\s*$"),
    re.compile(rf"(?i)\$\{{{NAME}:-([^}}]*)\}}"),
    re.compile(rf"(?i)--{NAME}[ =]([^\s\"'`]+)"),
]
# Placeholders say what they are; the local stack's verify token names the project.
PLACEHOLDER = re.compile(r"(?i)mock|test|example|dummy|fake|placeholder|^stagger-verify-token$")


def tracked_texts() -> dict[str, str]:
    """Every file git tracks that is text, by path; but the sample reports' page and history
    (generated from a run: base64 plots and thousands of records; the run's settings are in
    the results.json, report.md and scenario.toml beside them, which are scanned)."""
    listing = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    texts = {}
    for name in filter(None, listing.stdout.split("\0")):
        if name.startswith("reports/") and name.endswith((".html", ".jsonl")):
            continue
        try:
            texts[name] = (ROOT / name).read_text(encoding="utf-8")
        except (UnicodeDecodeError, IsADirectoryError, FileNotFoundError):
            continue  # binary files (a git-annexed wheel, an image), or deleted but not staged
    return texts


@pytest.fixture(scope="module")
def texts() -> dict[str, str]:
    found = tracked_texts()
    assert len(found) > 100, "git ls-files listed too few files: not the project's checkout?"
    return found


def is_placeholder(value: str) -> bool:
    """Too short for any issued credential (a one-letter token in an example), prose (a help
    text), a reference to another name, or a placeholder saying it is one."""
    return (
        len(value) < 8
        or " " in value
        or value.startswith(("$", "{"))
        or bool(PLACEHOLDER.search(value))
    )


def test_no_issued_credential_is_committed(texts: dict[str, str]) -> None:
    found = {
        f"{name}:{text.count(chr(10), 0, match.start()) + 1}": match.group()[:12] + "..."
        for name, text in texts.items()
        for match in ISSUED.finditer(text)
    }
    assert not found, found


def test_secret_settings_outside_the_tests_hold_placeholders_only(texts: dict[str, str]) -> None:
    values = [
        (name, match.group(1))
        for name, text in texts.items()
        if not name.startswith("tests/")
        for line in text.splitlines()
        if any(word in line.lower() for word in WORDS)
        for pattern in ASSIGNED
        for match in pattern.finditer(line)
    ]
    found = {(Path(name).name, value) for name, value in values}
    assert (".env.example", "mock-app-secret") in found  # the scan sees them
    assert not [(name, value) for name, value in values if not is_placeholder(value)]


def test_scan_flags_a_real_looking_secret() -> None:
    """The patterns catch what they are for (a check that cannot fail proves nothing)."""
    secret = "9f2c" * 8
    assert ISSUED.search(f'APP_SECRET = "{secret}"')
    assert ISSUED.search("token = EAA" + "Bx7" * 20)
    line = "WHATSAPP_APP_SECRET=s3cr3tV4lu3FromProd"
    (value,) = [m.group(1) for pattern in ASSIGNED for m in pattern.finditer(line)]
    assert not is_placeholder(value)


def test_the_bot_reads_its_secrets_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert BotSettings.model_config.get("env_file") is None, "no settings file is read"
    monkeypatch.setenv("WHATSAPP_APP_SECRET", "from-the-environment")
    monkeypatch.setenv("WHATSAPP_ACCESS_TOKEN", "token-from-the-environment")
    monkeypatch.setenv("WHATSAPP_VERIFY_TOKEN", "verify-from-the-environment")
    settings = load_settings()
    assert settings.whatsapp_app_secret == "from-the-environment"
    assert settings.whatsapp_access_token == "token-from-the-environment"
    assert settings.whatsapp_verify_token == "verify-from-the-environment"


def test_the_mock_takes_its_secrets_as_flags() -> None:
    parameters = inspect.signature(mock_cli.run).parameters
    assert {"access_token", "app_secret", "config"} <= set(parameters)
    assert parameters["access_token"].default is None  # unset: the mock's own placeholder
    assert parameters["app_secret"].default is None
