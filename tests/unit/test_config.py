"""Config files and the CLI: errors name the file, the field and the value."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mock_meta_api import cli as cli_module
from mock_meta_api.config import (
    DEFAULT_ACCESS_TOKEN,
    DEFAULT_PHONE_NUMBER_ID,
    ConfigError,
    ErrorAnswer,
    HangAnswer,
    MockConfig,
    ResetAnswer,
    build_config,
    load_config,
)

pytestmark = [pytest.mark.unit, pytest.mark.anyio]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "mock-meta-api.toml"


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def config_error(path: Path) -> str:
    """The ConfigError message for loading and building `path`."""
    with pytest.raises(ConfigError) as caught:
        build_config(load_config(path), str(path))
    return str(caught.value)


def test_defaults() -> None:
    config = MockConfig()

    assert config.access_token == DEFAULT_ACCESS_TOKEN
    assert config.phone_number_ids == [DEFAULT_PHONE_NUMBER_ID]
    assert config.admin_allow_remote is False
    assert config.behaviours.webhooks.url is None
    assert config.behaviours.throughput.messages_per_second == 80
    assert (config.behaviours.pair_rate.period_s, config.behaviours.pair_rate.burst) == (6, 45)


def test_toml_file_loads_into_a_config(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "mock.toml",
        """
access_token = "t"
phone_number_ids = ["1", "2"]

[behaviours.latency]
seed = 3
default = { model = "lognormal", median_s = 0.2, sigma = 0.5, max_s = 2 }

[behaviours.pair_rate]
http_status = 429
""",
    )

    config = build_config(load_config(path), str(path))

    assert config.access_token == "t"
    assert config.phone_number_ids == ["1", "2"]
    assert config.behaviours.latency.default.model == "lognormal"
    assert config.behaviours.latency.seed == 3
    assert config.behaviours.pair_rate.http_status == 429


def test_json_file_loads_into_a_config(tmp_path: Path) -> None:
    data = {"access_token": "j", "behaviours": {"webhooks": {"url": "http://127.0.0.1:1/h"}}}
    path = write(tmp_path, "mock.json", json.dumps(data))

    config = build_config(load_config(path), str(path))

    assert config.access_token == "j"
    assert config.behaviours.webhooks.url == "http://127.0.0.1:1/h"


def test_the_example_config_is_valid() -> None:
    config = build_config(load_config(EXAMPLE), str(EXAMPLE))

    scripted = config.behaviours.failures.scripted[0]
    assert isinstance(scripted.answer, ErrorAnswer)
    assert isinstance(config.behaviours.failures.outages[0].answer, HangAnswer)


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        ({"code": 131000, "http_status": 500}, ErrorAnswer),
        ({"action": "error"}, ErrorAnswer),
        ({"action": "reset"}, ResetAnswer),
        ({"action": "hang", "hang_s": 1}, HangAnswer),
    ],
)
def test_fault_answer_kind_follows_action_and_defaults_to_error(
    answer: dict[str, Any], kind: type
) -> None:
    config = build_config(
        {"behaviours": {"failures": {"scripted": [{"first": 1, "answer": answer}]}}}, "test"
    )

    assert isinstance(config.behaviours.failures.scripted[0].answer, kind)


def test_bad_toml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "mock.toml", "access_token = \n")

    message = config_error(path)

    assert message.startswith(f"{path}: not valid TOML")


def test_toml_that_is_not_utf8_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "mock.toml", b'access_token = "\xff"\n')

    assert config_error(path).startswith(f"{path}: not valid TOML")


def test_bad_json_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "mock.json", "{")

    assert config_error(path).startswith(f"{path}: not valid JSON")


def test_json_top_level_must_be_an_object(tmp_path: Path) -> None:
    path = write(tmp_path, "mock.json", "[1, 2]")

    assert config_error(path) == f"{path}: the top level must be a table/object"


@pytest.mark.parametrize("name", ["mock.yaml", "mock.ini", "mock"])
def test_unknown_extension_names_the_file_and_the_formats(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, name, "access_token = 't'\n")

    message = config_error(path)

    assert message.startswith(f"{path}: unknown config format")
    assert repr(path.suffix) in message
    assert ".toml or .json" in message


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"

    assert config_error(path) == f"{path}: cannot read config file: No such file or directory"


def test_directory_is_not_a_config_file(tmp_path: Path) -> None:
    path = tmp_path / "dir.toml"
    path.mkdir()

    message = config_error(path)

    assert message.startswith(f"{path}: cannot read config file")


def test_unknown_key_names_file_field_and_value(tmp_path: Path) -> None:
    path = write(tmp_path, "mock.toml", "[behaviours.latency]\nsede = 7\n")

    message = config_error(path)

    assert message.splitlines() == [
        f"{path}: 1 invalid setting(s)",
        "  behaviours.latency.sede: Extra inputs are not permitted (got 7)",
    ]


def test_bad_phone_number_id_names_file_field_and_value(tmp_path: Path) -> None:
    path = write(tmp_path, "mock.toml", 'phone_number_ids = ["106540352242922", "12a"]\n')

    message = config_error(path)

    assert message.startswith(f"{path}: 1 invalid setting(s)")
    assert "phone_number_ids.1" in message
    assert "(got '12a')" in message
    assert "pattern" in message


def test_empty_phone_number_id_list_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"phone_number_ids: .*at least 1"):
        build_config({"phone_number_ids": []}, "test")


def test_unknown_latency_model_names_the_field_and_allowed_models(tmp_path: Path) -> None:
    path = write(tmp_path, "mock.toml", '[behaviours.latency.default]\nmodel = "gamma"\n')

    message = config_error(path)

    assert "behaviours.latency.default" in message
    assert "'gamma'" in message
    for model in ("none", "fixed", "uniform", "normal", "lognormal"):
        assert f"'{model}'" in message


def test_unknown_fault_action_names_the_field_and_value() -> None:
    data = {"behaviours": {"failures": {"scripted": [{"first": 1, "answer": {"action": "boom"}}]}}}

    with pytest.raises(ConfigError) as caught:
        build_config(data, "mock.toml")

    message = str(caught.value)
    assert message.startswith("mock.toml: 1 invalid setting(s)")
    assert "behaviours.failures.scripted.0.answer" in message
    assert "boom" in message


def test_missing_field_is_named_without_a_value() -> None:
    data = {"behaviours": {"latency": {"default": {"model": "fixed"}}}}

    with pytest.raises(ConfigError) as caught:
        build_config(data, "test")

    (line,) = str(caught.value).splitlines()[1:]
    assert "behaviours.latency.default.fixed.value_s: Field required" in line
    assert "(got" not in line


def test_every_problem_is_listed() -> None:
    data = {
        "access_token": "",
        "journal_max_entries": 0,
        "behaviours": {"latency": {"default": {"model": "uniform", "low_s": 1, "high_s": 0}}},
    }

    with pytest.raises(ConfigError) as caught:
        build_config(data, "test")

    message = str(caught.value)
    assert message.startswith("test: 3 invalid setting(s)")
    assert "access_token" in message
    assert "journal_max_entries" in message
    assert "high_s (0.0) must be >= low_s (1.0)" in message


# -- the command line --------------------------------------------------------------------


def run_cli(*args: str):
    return CliRunner().invoke(cli_module.cli, list(args))


def test_cli_bad_config_exits_2_naming_file_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, "mock.toml", 'phone_number_ids = ["x"]\n')

    result = run_cli("--config", str(path), "--print-openapi")

    assert result.exit_code == 2
    assert f"mock-meta-api: {path}: 1 invalid setting(s)" in result.stderr
    assert "phone_number_ids.0" in result.stderr
    assert result.stdout == ""


def test_cli_bad_flag_value_is_reported_as_command_line() -> None:
    result = run_cli("--phone-number-id", "abc", "--print-openapi")

    assert result.exit_code == 2
    assert "mock-meta-api: command line: 1 invalid setting(s)" in result.stderr
    assert "(got 'abc')" in result.stderr


def test_cli_missing_config_file_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"

    result = run_cli("--config", str(path), "--print-openapi")

    assert result.exit_code == 2
    assert f"{path}: cannot read config file" in result.stderr


def test_cli_print_openapi(tmp_path: Path) -> None:
    result = run_cli("--print-openapi")

    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert "/{version}/{phone_number_id}/messages" in document["paths"]


def test_cli_flags_override_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(
        tmp_path,
        "mock.toml",
        'access_token = "from-file"\napp_secret = "file-secret"\n'
        "[behaviours.webhooks]\nmax_attempts = 5\n",
    )
    built: list[MockConfig] = []
    real_create_app = cli_module.create_app

    def capture(config: MockConfig, **kwargs: Any):
        built.append(config)
        return real_create_app(config, **kwargs)

    monkeypatch.setattr(cli_module, "create_app", capture)

    result = run_cli(
        "--config",
        str(path),
        "--access-token",
        "from-flag",
        "--phone-number-id",
        "111",
        "--phone-number-id",
        "222",
        "--webhook-url",
        "http://127.0.0.1:9/hook",
        "--allow-remote-admin",
        "--print-openapi",
    )

    assert result.exit_code == 0, result.output
    (config,) = built
    assert config.access_token == "from-flag"
    assert config.app_secret == "file-secret"
    assert config.phone_number_ids == ["111", "222"]
    assert config.admin_allow_remote is True
    assert config.behaviours.webhooks.url == "http://127.0.0.1:9/hook"
    assert config.behaviours.webhooks.max_attempts == 5


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://127.0.0.1/hook", "must start with http:// or https://"),
        ("http://[::1/hook", "is not a valid URL"),
        ("http://", "has no host"),
    ],
)
def test_webhook_url_is_checked_up_front(url: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build_config({"behaviours": {"webhooks": {"url": url}}}, "mock.toml")

    message = str(caught.value)
    assert "behaviours.webhooks" in message
    assert problem in message
    assert repr(url) in message


def test_the_annotated_example_config_is_valid() -> None:
    """examples/mock-meta-api.toml is documentation: it must load as it stands."""
    example = Path(__file__).parents[2] / "examples" / "mock-meta-api.toml"
    config = MockConfig.model_validate(load_config(example))
    webhooks = config.behaviours.webhooks
    assert webhooks.url_for("106540352242922") == "http://127.0.0.1:8002/webhook"
    assert webhooks.url_for("999") == webhooks.url
