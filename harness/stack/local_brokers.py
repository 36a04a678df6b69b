"""The brokers of a local stack's lanes: the embedded Valkey (or --broker-url's Redis), a
RabbitMQ node the harness starts, and the brokers lanes name themselves.

Each is checked (or started) before any lane starts; a broker fault stops and starts
again those the harness owns. How a lane reaches its broker and its store is decided
here too (`connection`), since it depends on which broker it is on.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..processes import ServerProcess
from . import broker as brokers
from . import rabbitmq
from .core import key_prefix
from .envs import code_path
from .spec import LaneSpec, StackSpec

Own = Callable[[str, ServerProcess | None], None]  # remembers a process as soon as it exists


class LocalBrokers:
    """The brokers of one local stack; `own` gets every process started, by log name."""

    def __init__(self, spec: StackSpec, run_dir: Path, own: Own) -> None:
        self.spec = spec
        self.run_dir = run_dir
        self._own = own
        self.valkey: brokers.Broker | None = None  # the embedded Valkey (or --broker-url)
        self.rabbit: rabbitmq.RabbitNode | None = None

    def start(self) -> dict[str, str]:
        """Check or start every broker the lanes name; per lane, what its broker says it is."""
        lanes = self.spec.lanes
        timeout_s = self.spec.start_timeout_s
        versions: dict[str, str] = {}
        if any(lane.embedded_db for lane in lanes):
            if self.spec.broker_url is None:
                self.valkey = brokers.start_embedded(self.run_dir, timeout_s=timeout_s)
                self._own("broker", self.valkey.process)
            else:
                self.valkey = brokers.external(self.spec.broker_url)
            shared = self.valkey.version()
            versions |= {lane.name: shared for lane in lanes if lane.broker == "valkey"}
        if any(lane.broker == "rabbitmq" and lane.broker_url is None for lane in lanes):
            settings = self.spec.rabbitmq
            self.rabbit = rabbitmq.start_node(
                self.run_dir,
                consumer_timeout_s=settings.consumer_timeout_s,
                check_interval_s=settings.check_interval_s,
                timeout_s=timeout_s,
                on_start=self._own,
            )
        for lane in lanes:
            if lane.broker == "redis":
                assert lane.broker_url is not None
                versions[lane.name] = brokers.external(lane.broker_url).version()
            elif lane.broker == "rabbitmq":
                if lane.broker_url is None:
                    assert self.rabbit is not None
                    versions[lane.name] = self.rabbit.version
                else:
                    versions[lane.name] = rabbitmq.probe(lane.broker_url)
        return versions

    def store_url(self, index: int) -> str:
        """The lane's database of the embedded Valkey (its own, or the one its broker_db
        names), or the shared external Redis."""
        assert self.valkey is not None
        if self.spec.broker_url:
            return self.valkey.url
        return self.valkey.url_for_db(self.spec.database_of(index))

    def connection(self, index: int, lane: LaneSpec, run_id: str) -> tuple[dict[str, str], str]:
        """How the lane reaches its broker and store (environment), and its queue.

        Lanes sharing an external Redis database keep apart by key prefix (the bot's and
        kombu's); lanes sharing a database of the embedded Valkey by their broker_db keep
        apart by queue and the bot's prefix only, so kombu's own keys are shared;
        lanes sharing a RabbitMQ keep apart by queue (with the run in its name on a
        broker the harness does not own). On RabbitMQ the outbox and events stay in a
        Redis: the lane's database of the embedded Valkey.
        """
        prefix = key_prefix(run_id, lane.name)
        queue = f"stagger-{lane.name}"
        env: dict[str, str] = {}
        if lane.broker == "valkey":
            env["CELERY_BROKER_URL"] = self.store_url(index)
            if self.spec.broker_url:  # lanes share the database: keep Celery's keys apart too
                env["CELERY_BROKER_GLOBAL_KEYPREFIX"] = prefix
        elif lane.broker == "redis":
            assert lane.broker_url is not None
            env["CELERY_BROKER_URL"] = lane.broker_url
            env["CELERY_BROKER_GLOBAL_KEYPREFIX"] = prefix
        else:
            env["CELERY_BROKER_URL"] = lane.broker_url or (self.rabbit.url if self.rabbit else "")
            env["BOT_REDIS_URL"] = self.store_url(index)
            if lane.broker_url:
                queue = f"stagger-{run_id}-{lane.name}"
        if lane.python is not None:  # its own environment: the bot's code from the harness
            env["PYTHONPATH"] = str(code_path())
        return env, queue

    def owned(self) -> tuple[bool, bool]:
        """(a lane is on the embedded Valkey, a lane is on the RabbitMQ node started here)."""
        return any(lane.broker == "valkey" for lane in self.spec.lanes), self.rabbit is not None

    def stop(self, keep_data: bool) -> int:
        """Stop every broker the harness owns that a lane uses: the embedded Valkey (saved
        first with `keep_data`, else emptied) and its RabbitMQ node (with its database, or
        without). The PID of the Valkey, or of the node when no lane is on Valkey."""
        valkey, rabbit = self.owned()
        pids: list[int] = []
        if valkey:
            if self.valkey is None or self.valkey.process is None:
                raise brokers.BrokerError(
                    "the broker is external: only an embedded one is restarted"
                )
            pids.append(self.valkey.process.pid)
            brokers.shut_down(self.valkey, keep_data)
        if rabbit:
            assert self.rabbit is not None
            pids.append(self.rabbit.server.pid)
            rabbitmq.shut_down(self.rabbit, keep_data)
        if not pids:
            raise brokers.BrokerError("no lane runs on a broker the harness started")
        return pids[0]

    def start_again(self, count: int) -> int:
        """Start again what `stop` stopped, on the same ports, with what it kept, logged as
        broker.<count> and rabbitmq.<count>; the PID of the Valkey, or of the RabbitMQ
        node when no lane is on Valkey."""
        valkey, rabbit = self.owned()
        pids: list[int] = []
        if valkey:
            assert self.valkey is not None
            self._again(brokers.start_again, self.valkey, f"broker.{count}")
            assert self.valkey.process is not None
            pids.append(self.valkey.process.pid)
        if rabbit:
            assert self.rabbit is not None
            self._again(rabbitmq.start_again, self.rabbit, f"rabbitmq.{count}")
            pids.append(self.rabbit.server.pid)
        return pids[0]

    def _again(self, start: Callable[..., None], broker: object, name: str) -> None:
        """`start` (a module's `start_again`) on `broker`, logged and owned as `name`."""
        start(
            broker,
            self.run_dir / f"{name}.log",
            timeout_s=self.spec.start_timeout_s,
            on_start=lambda process: self._own(name, process),
        )
