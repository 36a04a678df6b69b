"""A Celery 5.7.0 worker on Redis exits when the broker goes away while it holds ETA tasks.

Starts a redis-server on a free port of 127.0.0.1, a worker (`--pool POOL`), queues five
tasks with a 60 s countdown (the worker receives them and holds them unacknowledged),
stops Redis for half a second and starts it again on the same port. On Celery 5.7.0 with
kombu 5.7.0 the solo, prefork and threads workers log `Unrecoverable error:
AttributeError("'NoneType' object has no attribute 'hostname'")` and exit; on 5.6.3 they
reconnect. Needs only `redis-server` on PATH and Celery with its Redis extra:

    uv run --no-project --with 'celery[redis]==5.7.0' python repro.py threads

Exit status: 1 if the worker exited with the AttributeError (reproduced), 0 if it kept
running, 2 if the set-up failed.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import celery
import kombu

HERE = Path(__file__).resolve().parent
TASKS = 5
DOWN_S = 0.5  # how long Redis stays away: the fault, not a wait


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check, timeout_s: float, what: str) -> None:
    """Poll `check` until it holds; exit 2 naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            sys.exit(f"set-up failed: {what} not within {timeout_s:g} s")
        time.sleep(0.05)


def start_redis(port: int) -> subprocess.Popen[bytes]:
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    server = subprocess.Popen([*argv, "--appendonly", "no"], stdout=subprocess.DEVNULL)

    def answers() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
        except OSError:
            return False
        return True

    try:
        wait_until(answers, 10, "redis-server answering")
    except SystemExit:
        server.kill()
        server.wait()
        raise
    return server


def main() -> int:
    pool = sys.argv[1] if len(sys.argv) > 1 else "threads"
    # SIGTERM (a timeout, a CI runner) ends the script through its `finally`: the worker and
    # redis-server it started go with it.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))
    if not shutil.which("redis-server"):
        sys.exit("set-up failed: redis-server is not on PATH")
    port = free_port()
    os.environ["BROKER_URL"] = f"redis://127.0.0.1:{port}/0"
    sys.path.insert(0, str(HERE))
    from tasks import part

    server = start_redis(port)
    log = Path(tempfile.mkdtemp(prefix="celery-repro-")) / f"worker-{pool}.log"
    argv = [sys.executable, "-m", "celery", "-A", "tasks", "worker", "--pool", pool]
    argv += ["--concurrency", "2", "--loglevel", "INFO", "--without-mingle", "--without-gossip"]
    with log.open("w") as out:
        worker = subprocess.Popen(argv, cwd=HERE, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: " ready." in log.read_text(), 30, "the worker ready")
        for n in range(TASKS):
            part.apply_async((n,), countdown=60)  # held by the worker, unacknowledged
        wait_until(lambda: log.read_text().count("] received") == TASKS, 10, "tasks received")
        server.terminate()
        server.wait()
        time.sleep(DOWN_S)
        server = start_redis(port)
        try:
            code = worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            code = None
        text = log.read_text()
        print(f"celery {celery.__version__}, kombu {kombu.__version__}, pool {pool}")
        if code is not None and "AttributeError" in text:
            print(f"reproduced: the worker exited ({code}) with the AttributeError; log: {log}")
            return 1
        print(f"not reproduced: the worker {'exited' if code is not None else 'kept running'}")
        return 0
    finally:
        worker.terminate()  # a warm stop, so a prefork worker takes its children with it
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        server.kill()
        server.wait()


if __name__ == "__main__":
    sys.exit(main())
