"""The harness built and installed as a team installs it, for the sets that judge an
install (tests/install, tests/compose): its wheel built from this checkout, a fresh
virtual environment holding it, each command run with its output kept for the message."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from harness.stack.envs import uv_command


def run(
    argv: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 300.0
) -> subprocess.CompletedProcess[str]:
    """`argv` run to its end, its output captured; never raises for its exit code."""
    return subprocess.run(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def said(answer: subprocess.CompletedProcess[str]) -> str:
    """What a command said, for an assertion's message."""
    return f"exit {answer.returncode}\n{answer.stdout[-4000:]}\n{answer.stderr[-4000:]}"


def ran(argv: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 300.0):
    """`run`, asserted to have succeeded."""
    answer = run(argv, cwd, env, timeout)
    assert answer.returncode == 0, f"{argv}: {said(answer)}"
    return answer


def build(
    out: Path,
    checkout: Path,
    *,
    timeout: float,
    wheel_only: bool = False,
    env: dict[str, str] | None = None,
) -> Path:
    """The checkout's wheel (and sdist, unless `wheel_only`) built into `out`."""
    argv = [*uv_command(), "build", "--quiet", "--out-dir", str(out)]
    ran([*argv, "--wheel"] if wheel_only else argv, checkout, env, timeout)
    return out


def install(
    venv: Path,
    packages: list[str],
    *,
    constraints: Path,
    cwd: Path,
    timeout: float,
    env: dict[str, str] | None = None,
    compile_bytecode: bool = False,
) -> Path:
    """A fresh virtual environment at `venv` on this Python, holding `packages` within
    `constraints`; its interpreter."""
    ran(
        [*uv_command(), "venv", "--quiet", "--python", sys.executable, str(venv)], cwd, env, timeout
    )
    python = venv / "bin" / "python"
    argv = [*uv_command(), "pip", "install", "--quiet"]
    argv += ["--compile-bytecode"] if compile_bytecode else []
    argv += ["--python", str(python), "--constraint", str(constraints), *packages]
    ran(argv, cwd, env, timeout)
    return python
