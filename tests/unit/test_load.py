"""The load test's pure parts: shapes, lanes, the delivery tracker, the journal cursor,
the `[load]` table and the figures in results.json.

The tracker is what turns the mock's journal into Locust statistics: whatever order,
repeats or gaps the parts arrive with, every expected part must end as exactly one of
delivered or missing, with repeats and inversions named.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.bot.flow import message_id_for
from harness.checks import delivery
from harness.history import MessageHistory
from harness.load.delivery import DeliveryTracker, JournalCursor
from harness.load.figures import LoadLaneResult, LoadResult, expected_requests, per_second
from harness.load.lanes import LoadLane, lanes_option, parse_lanes
from harness.results import LaneResult, Results
from harness.scenario import SHAPES, ScenarioError, load_scenario, parse_scenario, users_at

pytestmark = pytest.mark.unit
PROPERTY = settings(max_examples=150, deadline=None)


# -- shapes --------------------------------------------------------------------------------------


@PROPERTY
@given(
    shape=st.sampled_from(SHAPES),
    users=st.integers(1, 500),
    run_time=st.floats(1, 3600),
    share=st.floats(0, 0.999),
)
def test_a_shape_keeps_every_lane_busy_and_never_exceeds_its_users(
    shape: Any, users: int, run_time: float, share: float
) -> None:
    wanted = users_at(shape, share * run_time, users, run_time)
    assert wanted is not None
    assert 1 <= wanted <= users


@given(shape=st.sampled_from(SHAPES), users=st.integers(1, 500), run_time=st.floats(1, 3600))
def test_a_shape_ends_with_the_run(shape: Any, users: int, run_time: float) -> None:
    assert users_at(shape, run_time, users, run_time) is None


def test_step_rises_in_quarters_and_spike_peaks_in_the_middle_fifth() -> None:
    steps = [users_at("step", t, 8, 100) for t in (0, 25, 50, 75, 99)]
    assert steps == [2, 4, 6, 8, 8]
    spike = [users_at("spike", t, 8, 100) for t in (0, 39, 40, 59, 60, 99)]
    assert spike == [2, 2, 8, 8, 2, 2]
    assert {users_at("steady", t, 8, 100) for t in (0, 50, 99)} == {8}


# -- lanes ---------------------------------------------------------------------------------------


def test_lanes_travel_as_one_option_and_come_back_the_same() -> None:
    lanes = [
        LoadLane("solo", "106540352290000", "http://127.0.0.1:8001/webhook"),
        LoadLane("gevent", "106540352290001", "http://[::1]:8002/webhook"),
    ]
    assert parse_lanes(lanes_option(lanes)) == lanes


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("solo=abc@http://127.0.0.1:1/webhook", "'solo=abc@http://127.0.0.1:1/webhook'"),
        ("Solo=1@http://127.0.0.1:1/webhook", "name=PHONE_NUMBER_ID@WEBHOOK_URL"),
        ("solo=1@ftp://x", "http(s)://"),
        ("a=1@http://h/w,a=2@http://h/w", "unique"),
        (" , ", "no lane given"),
    ],
)
def test_a_bad_lane_list_is_named(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=re.escape(says)):
        parse_lanes(text)


# -- the delivery tracker ------------------------------------------------------------------------

SENT_AT = 1_700_000_000.0
SPACING = 2.0
GRACE = 30.0


def entry(correlation: str, seq: int, received_at: float, n: int = 0) -> dict[str, Any]:
    return {
        "seq": n,
        "outcome": "accepted",
        "biz_opaque_callback_data": message_id_for(correlation, seq),
        "received_at": received_at,
        "responded_at": received_at + 0.1,
    }


def on_time(correlation: str, parts: int) -> list[dict[str, Any]]:
    return [entry(correlation, seq, SENT_AT + seq * SPACING + 0.05) for seq in range(parts)]


def test_parts_on_time_are_lateness_rows_with_their_lateness_in_ms() -> None:
    tracker = DeliveryTracker(parts=3, spacing_s=SPACING, grace_s=GRACE)
    tracker.expect("solo", "c1", SENT_AT)
    events = tracker.observe(on_time("c1", 3))
    assert [(e.name, e.error) for e in events] == [("lateness [solo]", None)] * 3
    assert [round(e.response_time_ms) for e in events] == [50, 50, 50]
    assert tracker.outstanding() == 0
    assert tracker.expire(SENT_AT + 10_000) == []


def test_a_part_before_its_request_is_known_is_judged_once_the_request_is() -> None:
    """In distributed mode a worker's word can reach the master after part 0 did."""
    tracker = DeliveryTracker(parts=2, spacing_s=SPACING, grace_s=GRACE)
    assert tracker.observe(on_time("c1", 1)) == []
    events = tracker.expect("solo", "c1", SENT_AT)
    assert [e.message_id for e in events] == [message_id_for("c1", 0)]


def test_late_repeated_reordered_and_missing_parts_are_failures_named_by_part() -> None:
    tracker = DeliveryTracker(parts=4, spacing_s=SPACING, grace_s=GRACE)
    tracker.expect("gevent", "c1", SENT_AT)
    arrivals = [
        entry("c1", 0, SENT_AT + 0.1),
        entry("c1", 2, SENT_AT + 2 * SPACING + 0.1),
        entry("c1", 1, SENT_AT + 2 * SPACING + 0.2),  # after part 2: out of order
        entry("c1", 2, SENT_AT + 2 * SPACING + 0.3),  # part 2 again
    ]
    events = tracker.observe(arrivals)
    assert [(e.kind, e.error is None) for e in events] == [
        ("lateness", True),
        ("lateness", True),
        ("lateness", False),
        ("duplicated", False),
    ]
    assert "reached the API after part 2" in (events[2].error or "")
    assert tracker.expire(SENT_AT + 3 * SPACING + GRACE - 0.001) == []
    missing = tracker.expire(SENT_AT + 3 * SPACING + GRACE)
    assert [(e.name, e.message_id) for e in missing] == [
        ("missing [gevent]", message_id_for("c1", 3))
    ]
    assert tracker.outstanding() == 0


def test_refused_sends_and_foreign_messages_are_not_deliveries() -> None:
    tracker = DeliveryTracker(parts=1, spacing_s=SPACING, grace_s=GRACE)
    tracker.expect("solo", "c1", SENT_AT)
    refused = entry("c1", 0, SENT_AT) | {"outcome": "error"}
    foreign = entry("c1", 0, SENT_AT) | {"biz_opaque_callback_data": None}
    assert tracker.observe([refused, foreign]) == []
    assert tracker.outstanding() == 1
    assert tracker.settled_by() == pytest.approx(SENT_AT + GRACE)


@PROPERTY
@given(data=st.data(), parts=st.integers(1, 12), requests=st.integers(1, 4))
def test_every_expected_part_ends_delivered_or_missing_exactly_once(
    data: st.DataObject, parts: int, requests: int
) -> None:
    """Drops, repeats and reorders of arbitrary journals: the counts always add up."""
    tracker = DeliveryTracker(parts=parts, spacing_s=SPACING, grace_s=GRACE)
    wanted = [(f"c{r}", seq) for r in range(requests) for seq in range(parts)]
    arrived = data.draw(st.lists(st.sampled_from(wanted), max_size=3 * len(wanted)))
    events = []
    for r in range(requests):
        events += tracker.expect("solo", f"c{r}", SENT_AT)
    entries = [entry(c, seq, SENT_AT + seq * SPACING) for c, seq in arrived]
    events += tracker.observe(entries) + tracker.expire(SENT_AT + 1e6)
    kinds = [e.kind for e in events]
    distinct = set(arrived)
    assert kinds.count("lateness") == len(distinct)
    assert kinds.count("missing") == len(wanted) - len(distinct)
    assert kinds.count("duplicated") == len(arrived) - len(distinct)
    assert tracker.outstanding() == 0
    # An inversion is flagged exactly when a lower part comes first after a higher one.
    flagged = sum(1 for e in events if e.kind == "lateness" and e.error)
    highest: dict[str, int] = {}
    inversions = 0
    seen: set[tuple[str, int]] = set()
    for c, seq in arrived:
        if (c, seq) in seen:
            continue
        seen.add((c, seq))
        inversions += seq < highest.get(c, -1)
        highest[c] = max(highest.get(c, -1), seq)
    assert flagged == inversions


def test_the_cursor_yields_each_entry_once_after_it_is_answered() -> None:
    cursor = JournalCursor()
    page = [
        {"seq": 1, "responded_at": 1.0},
        {"seq": 2, "responded_at": None},
        {"seq": 3, "responded_at": 3.0},
    ]
    assert [e["seq"] for e in cursor.take(page)] == [1, 3]
    assert cursor.after == 1
    page = [{"seq": 2, "responded_at": 2.0}, {"seq": 3, "responded_at": 3.0}]
    assert [e["seq"] for e in cursor.take(page)] == [2]
    assert cursor.after == 3


# -- the [load] table ----------------------------------------------------------------------------

LOAD_SCENARIO = """
name = "load-x"
description = "x"
[tolerances]
on_time_s = 2.0
[[lanes]]
name = "solo"
pool = "solo"
[load]
users = 4
run_time_s = 60
pace_s = 20
spawn_rate = 2
[load.thresholds]
max_lateness_p95_s = 2.0
"""


def test_a_load_scales_its_times_and_rates() -> None:
    scenario = parse_scenario(LOAD_SCENARIO, "x.toml").scaled(0.25)
    assert scenario.load is not None
    assert scenario.load.run_time_s == 15
    assert scenario.load.pace_s == 5
    assert scenario.load.spawn_rate == 8
    assert scenario.load.thresholds.max_lateness_p95_s == 0.5
    assert scenario.load.users == 4


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ("spawn_rate = -1", "load.spawn_rate: Input should be greater than 0"),
        ('shape = "wave"', "load.shape: Input should be 'steady', 'step' or 'spike'"),
        ("users = 0", "load.users: Input should be greater than or equal to 1"),
        ("fixtures_share = 1.5", "load.fixtures_share"),
        ("rate = 3", "load.rate: Extra inputs are not permitted"),
    ],
)
def test_a_bad_load_table_is_one_error_naming_the_field(change: str, says: str) -> None:
    key = change.split(" =")[0]
    line = re.compile(rf"^{key} = .*$", re.MULTILINE)
    text = (
        line.sub(change, LOAD_SCENARIO)
        if line.search(LOAD_SCENARIO)
        else (LOAD_SCENARIO.replace("spawn_rate = 2", f"spawn_rate = 2\n{change}"))
    )
    with pytest.raises(ScenarioError) as error:
        parse_scenario(text, "x.toml")
    assert "x.toml" in str(error.value)
    assert says in str(error.value)


def test_recipients_and_a_load_do_not_mix() -> None:
    text = LOAD_SCENARIO.replace("[[lanes]]", "[flow]\nrecipients = 3\n[[lanes]]", 1)
    with pytest.raises(ScenarioError, match=r"flow.recipients: a load test's users"):
        parse_scenario(text, "x.toml")


def test_command_line_thresholds_override_the_table_and_need_a_load() -> None:
    scenario = parse_scenario(LOAD_SCENARIO, "x.toml")
    changed = scenario.with_load_options(max_fail_ratio=0.05, workers=2)
    assert changed.load is not None
    assert changed.load.thresholds.max_fail_ratio == 0.05
    assert changed.load.thresholds.max_lateness_p95_s == 2.0
    assert changed.load.workers == 2
    with pytest.raises(ScenarioError, match="max_fail_ratio"):
        scenario.with_load_options(max_fail_ratio=2)
    with pytest.raises(ScenarioError, match="no \\[load\\] table"):
        load_scenario("incident")[0].with_load_options(workers=1)


@pytest.mark.parametrize("name", ["load-steady", "load-spike"])
def test_the_shipped_load_scenarios_load_and_scale(name: str) -> None:
    scenario = load_scenario(name)[0].scaled(0.25)
    assert scenario.load is not None
    assert {lane.pool for lane in scenario.lanes} == {"solo", "prefork", "threads", "gevent"}


# -- the figures -----------------------------------------------------------------------------


def test_requests_judged_are_those_accepted_or_queued_anyway_in_sent_order() -> None:
    log = [
        {"lane": "solo", "correlation": "b", "sent_at": 2.0, "status": 200},
        {"lane": "solo", "correlation": "a", "sent_at": 1.0, "status": 200},
        {"lane": "solo", "correlation": "timeout", "sent_at": 3.0, "status": 0},
        {"lane": "solo", "correlation": "refused", "sent_at": 4.0, "status": 500},
    ]
    expected = expected_requests(log, {"solo": {"a", "timeout"}, "gevent": set()})
    assert expected == {"solo": ["a", "b", "timeout"], "gevent": []}


def test_a_request_that_queued_nothing_counts_every_part_missing() -> None:
    history = [
        MessageHistory(
            lane="solo",
            message_id=message_id_for("a", seq),
            correlation_id="a",
            seq=seq,
            accepted=1,
        )
        for seq in range(2)
    ]
    found = delivery(history, expected=6, requests=3, correlations=["a", "never", "lost"])
    assert found.delivered == 2
    assert len(found.missing) == 4


def test_the_offered_rate_is_counted_per_second_from_the_origin() -> None:
    assert per_second([10.2, 10.9, 12.5], origin=10.0) == [2, 0, 1]
    assert per_second([], origin=10.0) == []


@pytest.mark.parametrize("model", [LoadResult, LoadLaneResult])
def test_the_readme_documents_every_load_field(model: type[LoadResult]) -> None:
    from tests.unit.test_results import contract_section

    documented = set(re.findall(r"`(\w+)`", contract_section()))
    assert set(model.model_fields) - documented == set()
    assert "load" in Results.model_fields
    assert "lane" in LaneResult.model_fields
