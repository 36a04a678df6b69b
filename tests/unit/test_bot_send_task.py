"""The send task run eagerly against respx: what each Meta answer does to the outbox record.

The bot is built on the embedded broker's Redis (the store), the Cloud API is
respx, and the task runs with `apply()`: Celery then runs every retry inline,
recursively (`Retry.sig.apply(retries=n + 1)`), without waiting for the countdown.
Worker events come from Celery's signals, which fire on eager apply too.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import respx
from celery import Celery
from celery.result import EagerResult

from harness.bot.app import Bot, create_bot
from harness.bot.cloud_api import text_payload
from harness.bot.settings import BotSettings, load_settings
from harness.bot.store import OutboxRecord
from harness.bot.tasks import SEND_TASK, backoff_s
from mock_meta_api.errors import GraphError, invalid_parameter, invalid_token

pytestmark = pytest.mark.unit

PHONE_ID = "106540352242922"
MESSAGES_URL = f"http://graph.test/v21.0/{PHONE_ID}/messages"
RECIPIENT = "15550100200"
MESSAGE_ID = "0123456789abcdef-003"
BODY = "*Round 4: Cup*\nSat 22 Aug 15:00  Dover Town v Kendal United"
WAMID = "wamid.HBgLMTU1NTAxMDAyMDAVAgARGBIzQUJDMDEyMzQ1Njc4OUFCQwA="
TOKEN = "test-token-1"

MakeBot = Callable[..., Bot]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings come from the environment: start every test from the defaults."""
    for name in BotSettings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture
def make_bot(_clean_env: None, make_settings: Callable[..., BotSettings]) -> Iterator[MakeBot]:
    """`create_bot` on the emptied broker, no backoff; the stores' connections closed after."""
    bots: list[Bot] = []

    def make(**overrides: object) -> Bot:
        settings = make_settings(
            **({"send_retry_backoff_s": 0, "whatsapp_access_token": TOKEN} | overrides)
        )
        bots.append(create_bot(settings))
        return bots[-1]

    yield make
    for bot in bots:
        bot.store.redis.close()


@pytest.fixture
def graph() -> Iterator[respx.MockRouter]:
    """The Cloud API: respx, with nothing else reachable."""
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        yield router


def outbox_record(**fields: Any) -> OutboxRecord:
    now = time.time()
    defaults: dict[str, Any] = {
        "message_id": MESSAGE_ID,
        "correlation_id": "0123456789abcdef",
        "inbound_id": "wamid.inbound-1",
        "recipient": RECIPIENT,
        "seq": 3,
        "parts_total": 22,
        "body": BODY,
        "countdown_s": 6.0,
        "queued_at": now,
        "eta": now + 6.0,
        "task_id": "task-3",
    }
    return OutboxRecord(**(defaults | fields))


def accepted(wamid: str = WAMID) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "messaging_product": "whatsapp",
            "contacts": [{"input": RECIPIENT, "wa_id": RECIPIENT}],
            "messages": [{"id": wamid}],
        },
    )


def graph_error(error: GraphError) -> httpx.Response:
    return httpx.Response(error.http_status, json=error.body("TRACE"))


def send(bot: Bot, message_id: str = MESSAGE_ID) -> EagerResult:
    result = bot.send_task.apply(args=[message_id])
    assert result.successful(), result.traceback
    return result


def events(bot: Bot) -> list[tuple[str, Any]]:
    """(event, what) per worker event: retries when started, state when finished."""
    return [
        (event["event"], event.get("retries", event.get("state")))
        for event in bot.store.events()
        if event["event"] != "retry"
    ]


# -- success -------------------------------------------------------------------------------------


def test_success_marks_the_part_sent_and_clears_an_old_error(
    make_bot: MakeBot, graph: respx.MockRouter
) -> None:
    bot = make_bot()
    bot.store.add([outbox_record(last_error="HTTP 503", error_code=131016)])
    route = graph.post(MESSAGES_URL).mock(return_value=accepted())
    before = time.time()

    result = send(bot)

    assert result.get() == "sent"
    record = bot.store.get(MESSAGE_ID)
    assert record is not None
    assert (record.state, record.wamid, record.attempts) == ("sent", WAMID, 1)
    assert record.sent_at is not None
    assert before <= record.sent_at <= time.time()
    assert (record.last_error, record.error_code) == (None, None)
    assert (record.body, record.recipient, record.seq) == (BODY, RECIPIENT, 3)  # untouched
    assert route.call_count == 1


def test_request_carries_the_part_our_id_and_the_token(
    make_bot: MakeBot, graph: respx.MockRouter
) -> None:
    bot = make_bot()
    bot.store.add([outbox_record()])
    route = graph.post(MESSAGES_URL).mock(return_value=accepted())

    send(bot)

    (call,) = route.calls
    assert call.request.method == "POST"
    assert str(call.request.url) == MESSAGES_URL
    assert call.request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert call.request.headers["Content-Type"] == "application/json"
    body = json.loads(call.request.content)
    assert body == text_payload(RECIPIENT, BODY, MESSAGE_ID)
    assert body["biz_opaque_callback_data"] == MESSAGE_ID
    assert (body["to"], body["text"]["body"]) == (RECIPIENT, BODY)


def test_task_is_registered_under_its_name_with_the_settings_retries(make_bot: MakeBot) -> None:
    bot = make_bot(send_max_retries=7, send_rate_limit="20/s")

    # The decorator hands back a lazy proxy; using it first binds this bot's own task.
    assert bot.send_task.name == SEND_TASK
    assert (bot.send_task.max_retries, bot.send_task.rate_limit) == (7, "20/s")
    assert bot.send_task.ignore_result is True
    assert bot.celery.tasks[SEND_TASK] is bot.send_task._get_current_object()


def test_send_task_stays_on_its_own_app(make_bot: MakeBot) -> None:
    make_bot()
    other = Celery("other", set_as_current=False)
    other.finalize()

    assert SEND_TASK not in other.tasks


# -- retried answers -----------------------------------------------------------------------------

RETRIED: list[Any] = [
    pytest.param(graph_error(GraphError(130429, 429)), 130429, id="429-130429"),
    pytest.param(graph_error(GraphError(131056, 400)), 131056, id="400-131056"),
    pytest.param(graph_error(GraphError(131000, 500)), 131000, id="500-131000"),
    pytest.param(httpx.Response(503), None, id="503-empty"),
    pytest.param(httpx.ConnectTimeout("connect timed out"), None, id="connect-timeout"),
    pytest.param(httpx.ReadTimeout("read timed out"), None, id="read-timeout"),
]


@pytest.mark.parametrize(("first", "code"), RETRIED)
def test_retried_answer_then_success_is_sent_on_the_second_attempt(
    make_bot: MakeBot,
    graph: respx.MockRouter,
    first: httpx.Response | Exception,
    code: int | None,
) -> None:
    bot = make_bot(send_max_retries=3)
    bot.store.add([outbox_record()])
    seen: list[OutboxRecord | None] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(bot.store.get(MESSAGE_ID))  # the record as each attempt saw it
        if len(seen) == 1:
            if isinstance(first, Exception):
                raise first
            return first
        return accepted()

    route = graph.post(MESSAGES_URL).mock(side_effect=answer)

    result = send(bot)

    assert result.get() == "sent"
    assert route.call_count == 2
    record = bot.store.get(MESSAGE_ID)
    assert record is not None
    assert (record.state, record.attempts, record.wamid) == ("sent", 2, WAMID)
    assert (record.last_error, record.error_code) == (None, None)
    # Between the attempts the part went back to queued, with the first answer recorded.
    first_seen, second_seen = seen
    assert first_seen is not None
    assert second_seen is not None
    assert (first_seen.state, first_seen.attempts, first_seen.last_error) == ("sending", 1, None)
    assert (second_seen.state, second_seen.attempts) == ("sending", 2)
    assert second_seen.error_code == code
    assert second_seen.last_error is not None
    if isinstance(first, Exception):
        assert second_seen.last_error == f"{type(first).__name__}: {first}"
    else:
        assert second_seen.last_error.startswith(f"HTTP {first.status_code}")
    # The retry is visible: a second run of the same task with retries == 1.
    assert events(bot) == [
        ("started", 0),
        ("finished", "RETRY"),
        ("started", 1),
        ("finished", "SUCCESS"),
    ]


@pytest.mark.parametrize("max_retries", [0, 1, 3])
def test_5xx_every_time_fails_after_the_last_retry(
    make_bot: MakeBot, graph: respx.MockRouter, max_retries: int
) -> None:
    bot = make_bot(send_max_retries=max_retries)
    bot.store.add([outbox_record()])
    route = graph.post(MESSAGES_URL).mock(return_value=graph_error(GraphError(131000, 500)))

    assert send(bot).get() == "failed"

    assert route.call_count == max_retries + 1
    record = bot.store.get(MESSAGE_ID)
    assert record is not None
    assert (record.state, record.attempts) == ("failed", max_retries + 1)
    assert record.last_error == "HTTP 500 code 131000: (#131000) Something went wrong"
    assert record.error_code == 131000
    assert (record.wamid, record.sent_at) == (None, None)
    assert [retries for event, retries in events(bot) if event == "started"] == list(
        range(max_retries + 1)
    )


@pytest.mark.parametrize(
    "error", [httpx.ConnectTimeout("connect timed out"), httpx.ReadTimeout("read timed out")]
)
def test_transport_errors_every_time_fail_after_the_last_retry(
    make_bot: MakeBot, graph: respx.MockRouter, error: Exception
) -> None:
    bot = make_bot(send_max_retries=2)
    bot.store.add([outbox_record()])
    route = graph.post(MESSAGES_URL).mock(side_effect=error)

    assert send(bot).get() == "failed"

    assert route.call_count == 3
    record = bot.store.get(MESSAGE_ID)
    assert record is not None
    assert (record.state, record.attempts) == ("failed", 3)
    assert record.last_error == f"{type(error).__name__}: {error}"
    assert record.error_code is None


def test_eager_retries_ignore_the_countdown(make_bot: MakeBot, graph: respx.MockRouter) -> None:
    """An hour's backoff is computed and handed to Celery, but eager apply does not wait."""
    bot = make_bot(send_retry_backoff_s=3600, send_retry_backoff_max_s=3600, send_max_retries=1)
    bot.store.add([outbox_record()])
    graph.post(MESSAGES_URL).mock(side_effect=[httpx.Response(503), accepted()])
    started = time.monotonic()

    assert send(bot).get() == "sent"

    assert time.monotonic() - started < bot.settings.send_retry_backoff_s  # it did not wait
    (retry,) = [event for event in bot.store.events() if event["event"] == "retry"]
    assert retry["reason"] == "Retry in 3600.0s"
    assert retry["message_id"] == MESSAGE_ID


# -- failed at once ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(invalid_parameter("Param text['body'] is required"), id="400-100"),
        pytest.param(invalid_token(), id="401-190"),
        pytest.param(GraphError(131026, 400), id="400-131026"),
        pytest.param(GraphError(131047, 400), id="400-131047"),
    ],
)
def test_permanent_error_fails_at_once(
    make_bot: MakeBot, graph: respx.MockRouter, error: GraphError
) -> None:
    bot = make_bot(send_max_retries=5)
    bot.store.add([outbox_record()])
    answer = graph_error(error)
    route = graph.post(MESSAGES_URL).mock(return_value=answer)

    assert send(bot).get() == "failed"

    assert route.call_count == 1
    record = bot.store.get(MESSAGE_ID)
    assert record is not None
    assert (record.state, record.attempts, record.error_code) == ("failed", 1, error.code)
    message = answer.json()["error"]["message"]
    assert record.last_error == f"HTTP {error.http_status} code {error.code}: {message}"
    assert events(bot) == [("started", 0), ("finished", "SUCCESS")]


def test_missing_record_is_reported_and_nothing_is_sent(
    make_bot: MakeBot, graph: respx.MockRouter
) -> None:
    bot = make_bot()
    bot.store.add([outbox_record(message_id="other-001")])
    route = graph.post(MESSAGES_URL).mock(return_value=accepted())

    assert send(bot, "no-such-part").get() == "missing"

    assert route.call_count == 0
    assert bot.store.get("no-such-part") is None  # not created by counting an attempt
    other = bot.store.get("other-001")
    assert other is not None
    assert (other.state, other.attempts) == ("queued", 0)


# -- worker events -------------------------------------------------------------------------------


def test_eager_apply_records_started_and_finished_events(
    make_bot: MakeBot, graph: respx.MockRouter
) -> None:
    bot = make_bot()
    bot.store.add([outbox_record()])
    graph.post(MESSAGES_URL).mock(return_value=accepted())
    before = time.time()

    result = send(bot)

    started, finished = bot.store.events()
    assert (started["event"], finished["event"]) == ("started", "finished")
    for event in (started, finished):
        assert event["task_id"] == result.id
        assert event["message_id"] == MESSAGE_ID
        assert before <= event["at"] <= time.time()
        assert event["pool"] == "unknown"  # no worker: no worker_init
    assert started["retries"] == 0
    assert finished["state"] == "SUCCESS"
    assert started["at"] <= finished["at"]


def test_events_of_another_bot_are_not_recorded(make_bot: MakeBot, graph: respx.MockRouter) -> None:
    ours = make_bot()
    other = make_bot(bot_key_prefix="other:")
    other.store.add([outbox_record()])
    graph.post(MESSAGES_URL).mock(return_value=accepted())

    send(other)

    assert [event["event"] for event in other.store.events()] == ["started", "finished"]
    assert ours.store.events() == []


# -- backoff -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "cap", "retries", "expected"),
    [
        (1.0, 60.0, 0, 1.0),
        (1.0, 60.0, 1, 2.0),
        (1.0, 60.0, 2, 4.0),
        (1.0, 60.0, 5, 32.0),
        (1.0, 60.0, 6, 60.0),
        (1.0, 60.0, 100, 60.0),
        (0.5, 60.0, 3, 4.0),
        (2.0, 10.0, 2, 8.0),
        (2.0, 10.0, 3, 10.0),
        (0.0, 60.0, 10, 0.0),
        (5.0, 0.0, 0, 0.0),
    ],
)
def test_backoff_is_exponential_and_capped(
    base: float, cap: float, retries: int, expected: float
) -> None:
    settings = load_settings(send_retry_backoff_s=base, send_retry_backoff_max_s=cap)

    assert backoff_s(retries, settings) == expected


def test_default_backoff_doubles_from_one_second_up_to_a_minute() -> None:
    settings = load_settings()

    delays = [backoff_s(retries, settings) for retries in range(10)]

    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0, 60.0]
