"""Locust users for the bot's webhook: signed Meta webhooks in, delivery figures out.

Run it against any running bot (web UI, or headless):

    uv run locust -f locustfile.py --host http://127.0.0.1:8001 \
        --mock-url http://127.0.0.1:8000 --headless -u 10 -r 2 -t 60s

Each user posts Meta-shaped inbound text messages, signed with the app secret
(`X-Hub-Signature-256`), every request from a new wa_id: mostly "fixtures" (each
answered by the bot with staggered parts), some other texts. With `--mock-url`, the
master (or the only process) follows the mock Cloud API's journal and adds rows to
Locust's statistics: `lateness [lane]` per part delivered (response time = how late it
reached the API, in ms; a failure if it came out of order), `missing [lane]` per part
not delivered `--missing-grace` seconds after its due time, `duplicated [lane]` per part
delivered again. When the run ends it waits until every part is delivered or missing.

`--lanes solo=106540352290000@http://127.0.0.1:8001/webhook,gevent=...` drives several
bots side by side (the harness uses it: every pool under the same load); each user's
requests go to the lanes in turn. `--shape steady|step|spike` shapes the users over
`--run-time`, `-u` users per lane. `--rates solo=0.1,gevent=1.5` gives each lane a rate
of its own instead (requests per second, shared by the lane's users, pinned to it; a
capacity step).
`--max-fail-ratio` and `--max-lateness-p95` make the exit status 1 when a lane exceeds
them. `--requests-log` and `--summary-file` write what the harness reads back.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import gevent
from locust import FastHttpUser, LoadTestShape, events, task
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner
from locust.stats import StatsEntry

from harness.bot.flow import correlation_for
from harness.load.delivery import DeliveryEvent, DeliveryTracker, JournalCursor
from harness.load.lanes import LoadLane, parse_lanes, parse_rates
from harness.mock_admin import MockAdmin
from harness.scenario import SHAPES, users_at
from harness.workload import inbound_text, new_inbound_id, signed
from mock_meta_api.config import DEFAULT_APP_SECRET, DEFAULT_PHONE_NUMBER_ID

SENT = "stagger_sent"  # worker -> master: a fixtures request the webhook answered
POLL_S = 0.5
REPORTS_SETTLE_S = 2.0  # after the users stop, workers' last reports reach the master
OTHER_TEXTS = ("hi", "menu", "results", "table", "thanks")
log = logging.getLogger("stagger")
logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per journal read


@events.init_command_line_parser.add_listener
def _arguments(parser: Any) -> None:
    group = parser  # Locust's own parser: its argument groups take no include_in_web_ui
    group.add_argument("--app-secret", default=DEFAULT_APP_SECRET, env_var="WHATSAPP_APP_SECRET",
                       help="Signs each webhook (X-Hub-Signature-256)")  # fmt: skip
    group.add_argument("--phone-number-id", default=DEFAULT_PHONE_NUMBER_ID,
                       help="The bot's business number, for --host")  # fmt: skip
    group.add_argument("--webhook-path", default="/webhook", help="Appended to --host")
    group.add_argument("--lanes", default="",
                       help="Several bots: name=PHONE_NUMBER_ID@WEBHOOK_URL,...")  # fmt: skip
    group.add_argument("--fixtures-share", type=float, default=0.9,
                       help="Share of requests that are 'fixtures' (0..1)")  # fmt: skip
    group.add_argument("--fixtures-keyword", default="fixtures")
    group.add_argument("--pace", type=float, default=5.0,
                       help="Seconds between one user's requests (0: no wait)")  # fmt: skip
    group.add_argument("--rates", default="",
                       help="A rate per lane, not --pace: name=REQUESTS_PER_S,...")  # fmt: skip
    group.add_argument("--shape", default="steady", choices=SHAPES,
                       help="Users over --run-time: steady, step or spike")  # fmt: skip
    group.add_argument("--mock-url", default="",
                       help="The mock Cloud API, to follow delivery (empty: don't)")  # fmt: skip
    group.add_argument("--parts", type=int, default=22, help="Parts per fixtures reply")
    group.add_argument("--spacing", type=float, default=2.0, help="Seconds between parts")
    group.add_argument("--missing-grace", type=float, default=30.0,
                       help="A part later than this after its due time is missing (s)")  # fmt: skip
    group.add_argument("--max-fail-ratio", type=float, default=None,
                       help="Exit 1 when a lane's failure ratio exceeds this (0..1)")  # fmt: skip
    group.add_argument("--max-lateness-p95", type=float, default=None,
                       help="Exit 1 above this lane delivery-lateness p95 (s)")  # fmt: skip
    group.add_argument("--requests-log", default="", include_in_web_ui=False,
                       help="Write each fixtures request (JSON lines) here")  # fmt: skip
    group.add_argument("--summary-file", default="", include_in_web_ui=False,
                       help="Write the per-lane figures and thresholds (JSON) here")  # fmt: skip


def _lanes(environment: Environment) -> list[LoadLane]:
    options = environment.parsed_options
    if options.lanes:
        return parse_lanes(options.lanes)
    host = (environment.host or "").rstrip("/")
    return [LoadLane("default", options.phone_number_id, host + options.webhook_path)]


@events.init.add_listener
def _check(environment: Environment, **_: Any) -> None:
    """Bad options stop the run before any request, with the option and what is allowed."""
    options = environment.parsed_options
    if options is None:
        return
    problems = []
    if not 0 <= options.fixtures_share <= 1:
        problems.append(f"--fixtures-share must be within 0..1, got {options.fixtures_share}")
    if options.pace < 0:
        problems.append(f"--pace must be 0 or more seconds, got {options.pace}")
    if options.parts < 1 or options.spacing < 0 or options.missing_grace <= 0:
        problems.append("--parts must be >= 1, --spacing >= 0 and --missing-grace > 0")
    try:
        rates = parse_rates(options.rates, _lanes(environment))
    except ValueError as exc:
        problems.append(str(exc))
    else:
        if rates and (options.shape != "steady" or isinstance(environment.runner, MasterRunner)):
            problems.append("--rates pins users to lanes: it needs --shape steady, one process")
    if (
        not options.lanes
        and not environment.host
        and not isinstance(environment.runner, WorkerRunner)
    ):
        problems.append("give --host (the bot's base URL) or --lanes")
    if problems:
        raise SystemExit("locustfile: " + "; ".join(problems))
    _Delivery.install(environment)


class WebhookUser(FastHttpUser):
    """One simulated user stream: a signed inbound text every `--pace` seconds."""

    host = "http://127.0.0.1"  # lanes carry absolute URLs; --host overrides for one bot
    _numbers = itertools.count()

    def on_start(self) -> None:
        options = self.environment.parsed_options
        runner = self.environment.runner
        worker = getattr(runner, "worker_index", 0) if runner is not None else 0
        self.number = next(self._numbers)
        self.lanes = _lanes(self.environment)
        self.worker = worker
        self.sent = 0
        self.share = options.fixtures_share
        self.pace = options.pace
        self.pinned: int | None = None
        # Users spread their requests over the pace, so a lane's load is a steady rate,
        # not a burst of every user at once: user n starts n x 0.618 paces in (mod 1).
        offset = (self.number * 0.618034) % 1
        rates = parse_rates(options.rates, self.lanes)
        if rates:  # users are started in turn, so each lane gets -u of them, evenly spaced:
            users = options.num_users or 1  # its requests come exactly 1 / rate apart
            self.pinned, order = self.number % len(self.lanes), self.number // len(self.lanes)
            self.pace = users / rates[self.lanes[self.pinned].name]
            offset = order / users
        gevent.sleep(self.pace * offset)
        self.next_at = time.monotonic()

    def wait_time(self) -> float:
        return max(0.0, self.next_at - time.monotonic())

    @task
    def post_inbound(self) -> None:
        options = self.environment.parsed_options
        self.next_at = max(self.next_at, time.monotonic() - self.pace) + self.pace
        n, self.sent = self.sent, self.sent + 1
        # Each request to the next lane in turn: every lane gets the same rate, whichever
        # users a shape starts or stops, in one process or across workers.
        index = (self.number + self.worker + n) % len(self.lanes)
        if self.pinned is not None:
            index = self.pinned
        lane = self.lanes[index]
        # An even mix, the same on every run, starting with fixtures: request n is fixtures
        # when (n + 1) x share passes a whole number (share 0.9: every tenth is another text).
        fixtures = math.ceil((n + 1) * self.share) > math.ceil(n * self.share)
        text = options.fixtures_keyword if fixtures else OTHER_TEXTS[n % len(OTHER_TEXTS)]
        inbound_id = new_inbound_id()
        payload = inbound_text(
            phone_number_id=lane.phone_number_id,
            # A new wa_id per request (15 digits): Meta's pair rate limit is per recipient.
            sender=f"44{index % 100:02d}{self.worker % 100:02d}{self.number % 10000:04d}"
            f"{n % 100000:05d}",
            text=text,
            message_id=inbound_id,
        )
        body, headers = signed(payload, options.app_secret)
        kind = "fixtures" if fixtures else "other"
        sent_at = time.time()
        with self.client.post(
            lane.webhook_url,
            data=body,
            headers=headers,
            name=f"webhook {kind} [{lane.name}]",
            catch_response=True,
        ) as answer:
            if answer.status_code != 200:  # 0: no answer at all (refused, reset, timed out)
                answer.failure(f"HTTP {answer.status_code}")
        if fixtures:
            record = {
                "lane": lane.name,
                "worker": self.worker,
                "correlation": correlation_for(inbound_id),
                "sent_at": sent_at,
                "answered_at": time.time(),
                "status": answer.status_code,
            }
            _Delivery.sent(self.environment, record)


class _Delivery:
    """Follows the journal in the master (or the only process) and fires the events."""

    instance: _Delivery | None = None

    def __init__(self, environment: Environment) -> None:
        options = environment.parsed_options
        self.environment = environment
        self.tracker = DeliveryTracker(options.parts, options.spacing, options.missing_grace)
        self.mock = MockAdmin(options.mock_url) if options.mock_url else None
        self.cursor = JournalCursor()
        self.log = open(options.requests_log, "a") if options.requests_log else None  # noqa: SIM115
        self.greenlet: gevent.Greenlet | None = None
        self.announced = False

    def outstanding(self) -> int:
        return self.tracker.outstanding()

    @classmethod
    def install(cls, environment: Environment) -> None:
        runner = environment.runner
        if isinstance(runner, WorkerRunner):
            return  # workers only send; the master follows
        cls.instance = cls(environment)
        if isinstance(runner, MasterRunner):
            runner.register_message(SENT, lambda msg, **_: cls.instance.record(msg.data))
        environment.events.test_start.add_listener(lambda **_: cls.instance.start())
        environment.events.test_stop.add_listener(lambda **_: cls.instance.stop())
        environment.events.quitting.add_listener(lambda **_: cls.instance.verdict())

    @classmethod
    def sent(cls, environment: Environment, record: dict[str, Any]) -> None:
        if isinstance(environment.runner, WorkerRunner):
            environment.runner.send_message(SENT, record)
        elif cls.instance is not None:
            cls.instance.record(record)

    def record(self, record: dict[str, Any]) -> None:
        if self.log is not None:
            self.log.write(json.dumps(record) + "\n")
            self.log.flush()
        if record["status"] == 200 and self.mock is not None:
            self.fire(self.tracker.expect(record["lane"], record["correlation"], record["sent_at"]))

    def fire(self, found: list[DeliveryEvent]) -> None:
        for event in found:
            self.environment.events.request.fire(
                request_type="DELIVERY",
                name=event.name,
                response_time=event.response_time_ms,
                response_length=0,
                exception=RuntimeError(event.error) if event.error else None,
                context={"message_id": event.message_id},
            )

    def start(self) -> None:
        if self.mock is not None and self.greenlet is None:
            self.greenlet = gevent.spawn(self._follow)

    def poll(self) -> None:
        try:
            page = self.mock.journal(after_seq=self.cursor.after, body=False)
        except Exception as exc:  # the mock gone for a moment must not end the test
            log.warning("cannot read the mock's journal: %s", exc)
            return
        self.fire(self.tracker.observe(self.cursor.take(page)))
        self.fire(self.tracker.expire(time.time()))

    def _follow(self) -> None:
        while True:
            self.poll()
            gevent.sleep(POLL_S)

    def draining(self, since_s: float) -> bool:
        """`since_s` after the users' run ended: are parts still due (within their grace)?

        The first seconds always count, so the last requests' reports reach the master.
        """
        if self.mock is None:
            return False
        if since_s < REPORTS_SETTLE_S:
            return True
        deadline = self.tracker.settled_by()
        return bool(self.tracker.outstanding()) and deadline is not None and time.time() < deadline

    def stop(self) -> None:
        """The test is over: read the journal once more, then stop following it."""
        if self.greenlet is not None:
            self.poll()
            self.greenlet.kill(block=False)
            self.greenlet = None

    def verdict(self) -> None:
        """Per lane: webhook and delivery figures; thresholds set the exit status."""
        options = self.environment.parsed_options
        summary = lane_summary(self.environment, [lane.name for lane in _lanes(self.environment)])
        exceeded = []
        for lane, figures in summary.items():
            ratio, p95 = figures["fail_ratio"], figures["lateness_p95_s"]
            if options.max_fail_ratio is not None and ratio > options.max_fail_ratio:
                exceeded.append(f"{lane}: failure ratio {ratio:.3f} > {options.max_fail_ratio:g}")
            limit = options.max_lateness_p95
            if limit is not None and p95 is not None and p95 > limit:
                exceeded.append(f"{lane}: delivery-lateness p95 {p95:.2f} s > {limit:g} s")
        for line in exceeded:
            log.error("threshold exceeded: %s", line)
        if options.max_fail_ratio is not None or options.max_lateness_p95 is not None:
            self.environment.process_exit_code = 1 if exceeded else 0
        if options.summary_file:
            data = {"lanes": summary, "exceeded": exceeded}
            Path(options.summary_file).write_text(json.dumps(data, indent=2))
        if self.log is not None:
            self.log.close()


def lane_summary(environment: Environment, lanes: list[str]) -> dict[str, dict[str, Any]]:
    """Per lane: webhook requests and failures, delivery counts and lateness percentiles."""
    stats = environment.stats
    summary: dict[str, dict[str, Any]] = {}
    for lane in lanes:
        mine = [e for (name, _), e in stats.entries.items() if name.endswith(f"[{lane}]")]
        webhook = _merged([e for e in mine if e.name.startswith("webhook ")])
        late = _merged([e for e in mine if e.name.startswith("lateness ")])
        requests = sum(e.num_requests for e in mine)
        failures = sum(e.num_failures for e in mine)
        late_p95 = _percentile(late, 0.95)
        summary[lane] = {
            "webhook_requests": webhook.num_requests,
            "webhook_failures": webhook.num_failures,
            "webhook_p50_ms": _percentile(webhook, 0.5),
            "webhook_p99_ms": _percentile(webhook, 0.99),
            "delivered": late.num_requests,
            "out_of_order": late.num_failures,
            "missing": sum(e.num_requests for e in mine if e.name.startswith("missing ")),
            "duplicated": sum(e.num_requests for e in mine if e.name.startswith("duplicated ")),
            "fail_ratio": failures / requests if requests else 0.0,
            "lateness_p95_s": None if late_p95 is None else late_p95 / 1000,
        }
    return summary


def _percentile(entry: StatsEntry, q: float) -> float | None:
    return entry.get_response_time_percentile(q) if entry.num_requests else None


def _merged(entries: list[StatsEntry]) -> StatsEntry:
    total = StatsEntry(None, "merged", "", use_response_times_cache=False)
    for entry in entries:
        total.extend(entry)
    return total


class StaggerShape(LoadTestShape):
    """Users over time by `--shape`, reading -u, -r and -t; `-u` users per lane."""

    use_common_options = True

    def tick(self) -> tuple[int, float] | None:
        options = self.runner.environment.parsed_options
        lanes = len(_lanes(self.runner.environment))
        per_lane = options.num_users or 1
        if not options.run_time:  # no --run-time: steady until stopped by hand
            return per_lane * lanes, options.spawn_rate * lanes
        elapsed = self.get_run_time()
        users = users_at(options.shape, elapsed, per_lane, options.run_time)
        if users is not None:
            return users * lanes, options.spawn_rate * lanes
        # The users' time is up. The test stays open, with no users, until every part is
        # delivered or missing, so Locust's statistics and reports include them all.
        delivery = _Delivery.instance
        if delivery is not None and delivery.draining(elapsed - options.run_time):
            if not delivery.announced:
                delivery.announced = True
                log.info("following delivery of %d parts still due", delivery.outstanding())
            return 0, options.spawn_rate * lanes
        return None
