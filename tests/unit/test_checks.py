"""The checks: a clean history always passes, and every injected fault is caught and named.

Histories are built directly as `MessageHistory` records of one request (`parts` parts
queued with countdown `seq * spacing`), with wall-clock times as a run records them.
Every bound comes from the `Tolerances` under test, never from a number written here.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, replace

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from harness.checks import (
    LaneVerdict,
    check_lane,
    delivery,
    lateness,
    order,
    percentile,
)
from harness.history import MessageHistory
from harness.scenario import (
    MIN_ON_TIME_S,
    MIN_SPACING_S,
    LaneScenario,
    Tolerances,
    load_scenario,
    shipped_names,
)

pytestmark = pytest.mark.unit

PROPERTY = settings(max_examples=150, deadline=None)
FAULTS = settings(max_examples=100, deadline=None)
LANE = LaneScenario(name="solo", pool="solo")
CORRELATION = "5f0c3a9e1b7d2c4a"
# Wall-clock floats near 1.7e9 resolve about 0.24 us: a part generated exactly on a bound
# could be measured a hair beyond it. Clean parts stay this far inside; faults go this far out.
CLOCK_SLACK_S = 1e-3
SHIPPED_TOLERANCES = [load_scenario(name)[0].tolerances for name in shipped_names()]
TOLERANCES = st.one_of(
    st.sampled_from(SHIPPED_TOLERANCES),
    st.builds(
        lambda on_time_s, early_s, extra_s, order_by: Tolerances(
            on_time_s=on_time_s,
            early_s=early_s,
            missing_after_s=on_time_s + extra_s,
            order_by=order_by,
        ),
        on_time_s=st.floats(min_value=MIN_ON_TIME_S, max_value=10.0),
        early_s=st.floats(min_value=0.0, max_value=1.0),
        extra_s=st.floats(min_value=0.0, max_value=60.0),
        order_by=st.sampled_from(["api_receipt", "api_response"]),
    ),
)


def message_id(seq: int, correlation: str = CORRELATION) -> str:
    return f"{correlation}-{seq:03d}"


def part_name(seq: int) -> re.Pattern[str]:
    """How a reason names a part of a single-request lane (`part 7`, not `part 70`)."""
    return re.compile(rf"\bpart {seq}\b")


@dataclass
class Run:
    """A clean history and what it was generated from."""

    tolerances: Tolerances
    spacing_s: float
    history: list[MessageHistory]

    @property
    def parts(self) -> int:
        return len(self.history)

    def check(self, history: list[MessageHistory] | None = None, **update: object) -> LaneVerdict:
        tolerances = self.tolerances.model_copy(update=update) if update else self.tolerances
        return check_lane(
            self.history if history is None else history, LANE, tolerances, self.parts
        )

    def replaced(self, seq: int, **update: object) -> list[MessageHistory]:
        """The history with part `seq` changed."""
        return [m.model_copy(update=update) if m.seq == seq else m for m in self.history]

    def shifted(self, seq: int, lateness_s: float) -> list[MessageHistory]:
        """The history with part `seq` reaching the API `lateness_s` after its due time."""
        m = self.history[seq]
        assert m.due is not None
        assert m.api_received_at is not None
        assert m.api_responded_at is not None
        latency = m.api_responded_at - m.api_received_at
        received = m.due + lateness_s
        return self.replaced(seq, api_received_at=received, api_responded_at=received + latency)


@st.composite
def clean_runs(draw: st.DrawFn, min_parts: int = 1) -> Run:
    """One request whose parts all arrive once, in order (by receipt and by response), on time.

    Lateness is anywhere from 0 to CLOCK_SLACK_S short of on_time_s, but never drops by more
    than half the spacing from one part to the next, so receipts stay at least spacing/2
    apart; API latency is at most spacing/4, so answers keep the order too.
    """
    tolerances = draw(TOLERANCES)
    parts = draw(st.integers(min_value=min_parts, max_value=40))
    spacing = draw(st.floats(min_value=MIN_SPACING_S, max_value=5.0))
    requested_at = draw(st.floats(min_value=1.6e9, max_value=1.8e9))
    on_time = st.floats(min_value=0.0, max_value=tolerances.on_time_s - CLOCK_SLACK_S)
    history: list[MessageHistory] = []
    queued_at = requested_at
    late = 0.0
    for seq in range(parts):
        queued_at += draw(st.floats(min_value=0.0, max_value=0.01))  # apply_async one by one
        late = draw(on_time) if seq == 0 else max(draw(on_time), late - spacing / 2)
        countdown = seq * spacing
        received = queued_at + countdown + late
        history.append(
            MessageHistory(
                lane=LANE.name,
                message_id=message_id(seq),
                correlation_id=CORRELATION,
                seq=seq,
                recipient="15550100200",
                queued_at=queued_at,
                countdown_s=countdown,
                eta=queued_at + countdown,
                api_received_at=received,
                api_responded_at=received + draw(st.floats(min_value=0.0, max_value=spacing / 4)),
                status="sent",
                attempts=1,
                accepted=1,
            )
        )
    return Run(tolerances=tolerances, spacing_s=spacing, history=history)


def reason(verdict: LaneVerdict, code: str) -> str:
    (text,) = [finding.text for finding in verdict.reasons if finding.code == code]
    return text


# -- a clean run passes --------------------------------------------------------------------------


@PROPERTY
@given(run=clean_runs())
def test_clean_history_passes(run: Run) -> None:
    """Every part once, in order, within on_time_s: no reason at all, every figure in bounds."""
    verdict = run.check()

    assert verdict.verdict == "pass", verdict.reasons
    assert verdict.reasons == []
    assert verdict.codes == []
    assert verdict.as_expected
    assert verdict.mismatch is None
    assert verdict.delivery.delivered == run.parts
    assert verdict.delivery.missing == []
    assert verdict.delivery.duplicated == []
    assert verdict.receipt_order.inversions == 0
    assert verdict.response_order.inversions == 0
    assert verdict.order.first is None
    assert verdict.lateness.late == []
    assert verdict.lateness.early == []
    figures = [verdict.lateness.p50_s, verdict.lateness.p95_s, verdict.lateness.max_s]
    assert all(value is not None for value in figures)
    p50, p95, worst = figures
    assert -run.tolerances.early_s <= p50 <= p95 <= worst <= run.tolerances.on_time_s


# -- every fault is caught and named -------------------------------------------------------------


@FAULTS
@given(run=clean_runs(), data=st.data())
def test_a_dropped_part_is_missing_and_named(run: Run, data: st.DataObject) -> None:
    """A part the API never accepted (its send failed for good) is missing, by seq."""
    seq = data.draw(st.integers(min_value=0, max_value=run.parts - 1))
    history = run.replaced(
        seq, accepted=0, api_received_at=None, api_responded_at=None, status="failed"
    )

    verdict = run.check(history)

    assert verdict.codes == ["missing"]
    assert verdict.delivery.missing == [message_id(seq)]
    assert verdict.delivery.delivered == run.parts - 1
    assert part_name(seq).search(reason(verdict, "missing"))
    assert f"1 of {run.parts} part" in reason(verdict, "missing")


@FAULTS
@given(run=clean_runs(), data=st.data())
def test_a_part_never_queued_is_missing(run: Run, data: st.DataObject) -> None:
    """A part absent from every source (never written to the outbox) is missing, by its seq."""
    assume(run.parts > 1)  # with one part, the whole request is unanswered (tested below)
    seq = data.draw(st.integers(min_value=0, max_value=run.parts - 1))
    history = [m for m in run.history if m.seq != seq]

    verdict = run.check(history)

    assert verdict.codes == ["missing"]
    assert verdict.delivery.delivered == run.parts - 1
    assert verdict.delivery.missing == [message_id(seq)]
    assert part_name(seq).search(reason(verdict, "missing"))


def test_a_stray_part_cannot_stand_in_for_a_missing_one() -> None:
    """Parts beyond the reply's length are unexpected, and the part they replace is missing."""
    history = example([0.1, 0.1, 0.1])
    history[2] = history[2].model_copy(update={"seq": 5, "message_id": message_id(5)})

    verdict = check_lane(history, LANE, INCIDENT.tolerances, expected_messages=3)

    assert verdict.codes == ["missing", "unexpected"]
    assert verdict.delivery.missing == [message_id(2)]
    assert verdict.delivery.unexpected == [message_id(5)]
    assert "part 5" in reason(verdict, "unexpected")


def test_a_request_never_answered_misses_every_part() -> None:
    """Two requests sent, one reply queued: the other reply's parts are all missing."""
    verdict = check_lane(example([0.1, 0.1]), LANE, INCIDENT.tolerances, 4, requests=2)

    assert verdict.codes == ["missing"]
    assert len(verdict.delivery.missing) == 2
    assert "request 2 never answered" in reason(verdict, "missing")


@FAULTS
@given(run=clean_runs(), data=st.data(), copies=st.integers(min_value=2, max_value=4))
def test_a_duplicated_part_is_named_with_its_count(
    run: Run, data: st.DataObject, copies: int
) -> None:
    """A part the API accepted more than once is delivered, and duplicated, by seq and count."""
    seq = data.draw(st.integers(min_value=0, max_value=run.parts - 1))

    verdict = run.check(run.replaced(seq, accepted=copies))

    assert verdict.codes == ["duplicated"]
    assert verdict.delivery.delivered == run.parts
    assert verdict.delivery.duplicated == [message_id(seq)]
    assert re.search(rf"\bpart {seq} x{copies}\b", reason(verdict, "duplicated"))


@FAULTS
@given(run=clean_runs(min_parts=2), data=st.data())
def test_swapped_receipts_are_out_of_order(run: Run, data: st.DataObject) -> None:
    """Parts i < j reaching the API in each other's place: 2(j - i) - 1 inversions, named."""
    i = data.draw(st.integers(min_value=0, max_value=run.parts - 2))
    j = data.draw(st.integers(min_value=i + 1, max_value=run.parts - 1))
    a, b = run.history[i], run.history[j]
    history = run.replaced(
        i, api_received_at=b.api_received_at, api_responded_at=b.api_responded_at
    )
    history[j] = b.model_copy(
        update={"api_received_at": a.api_received_at, "api_responded_at": a.api_responded_at}
    )

    verdict = run.check(history, order_by="api_receipt")

    assert "out-of-order" in verdict.codes
    # Swapped parts may also land outside the tolerances; nothing else can go wrong.
    assert set(verdict.codes) <= {"out-of-order", "late", "early"}
    assert verdict.order.by == "api_receipt"
    assert verdict.order.inversions == 2 * (j - i) - 1
    following = i + 1 if j > i + 1 else i  # part j now comes right before this one
    assert verdict.order.first is not None
    assert re.fullmatch(
        rf"part {j} reached the API \d+\.\d{{3}} s before part {following}", verdict.order.first
    )
    assert verdict.order.first in reason(verdict, "out-of-order")
    assert "by api receipt" in reason(verdict, "out-of-order")


@FAULTS
@given(run=clean_runs(min_parts=2), data=st.data())
def test_overtaken_answers_are_out_of_order_by_response(run: Run, data: st.DataObject) -> None:
    """Part i answered after part j (slow API, concurrent pool): caught when order is by response.

    The parts reached the API in order and on time, so judged by receipt the lane passes.
    """
    i = data.draw(st.integers(min_value=0, max_value=run.parts - 2))
    j = data.draw(st.integers(min_value=i + 1, max_value=run.parts - 1))
    overtaken = run.history[j].api_responded_at
    assert overtaken is not None
    history = run.replaced(i, api_responded_at=overtaken + run.spacing_s / 8)

    by_response = run.check(history, order_by="api_response")
    by_receipt = run.check(history, order_by="api_receipt")

    assert by_response.codes == ["out-of-order"]
    assert by_response.order.by == "api_response"
    assert by_response.order.inversions == j - i
    assert by_response.order.first is not None
    # Part j is the last part answered before part i: that adjacent pair is the first inversion.
    assert re.fullmatch(
        rf"part {j} was answered \d+\.\d{{3}} s before part {i}", by_response.order.first
    )
    assert by_receipt.verdict == "pass"
    assert by_receipt.response_order.inversions == j - i  # still reported as a figure


@FAULTS
@given(run=clean_runs(), data=st.data())
def test_a_late_part_is_caught_and_the_worst_named(run: Run, data: st.DataObject) -> None:
    """A part reaching the API beyond on_time_s after its due time is late, and the worst."""
    on_time = run.tolerances.on_time_s
    seq = data.draw(st.integers(min_value=0, max_value=run.parts - 1))
    late_s = data.draw(st.floats(min_value=on_time + CLOCK_SLACK_S, max_value=4 * on_time))

    verdict = run.check(run.shifted(seq, late_s))

    assert "late" in verdict.codes
    assert set(verdict.codes) <= {"late", "out-of-order"}  # it may also overtake later parts
    ((name, measured),) = verdict.lateness.late
    assert name == f"part {seq}"
    assert measured == pytest.approx(late_s, abs=CLOCK_SLACK_S)
    assert verdict.lateness.max_s == measured
    text = reason(verdict, "late")
    assert f"more than {on_time:g} s" in text
    assert part_name(seq).search(text.split("worst:")[1])
    assert f"{measured:.2f} s late" in text


@FAULTS
@given(run=clean_runs(), data=st.data())
def test_an_early_part_is_caught_and_named(run: Run, data: st.DataObject) -> None:
    """A part reaching the API more than early_s before its due time (a countdown lost) is early."""
    early = run.tolerances.early_s
    seq = data.draw(st.integers(min_value=0, max_value=run.parts - 1))
    ahead_s = data.draw(st.floats(min_value=early + CLOCK_SLACK_S, max_value=early + 10.0))

    verdict = run.check(run.shifted(seq, -ahead_s))

    assert "early" in verdict.codes
    assert set(verdict.codes) <= {"early", "out-of-order"}  # it may overtake earlier parts
    ((name, measured),) = verdict.lateness.early
    assert name == f"part {seq}"
    assert measured == pytest.approx(-ahead_s, abs=CLOCK_SLACK_S)
    assert part_name(seq).search(reason(verdict, "early").split("worst:")[1])


@FAULTS
@given(run=clean_runs(min_parts=4), data=st.data())
def test_faults_together_are_each_caught_and_named(run: Run, data: st.DataObject) -> None:
    """Drop, duplicate and delay on distinct parts: one reason each, naming its own part."""
    dropped, doubled, delayed = data.draw(
        st.lists(
            st.integers(min_value=0, max_value=run.parts - 1),
            min_size=3,
            max_size=3,
            unique=True,
        )
    )
    run = replace(run, history=run.shifted(delayed, run.tolerances.on_time_s + run.spacing_s))
    run = replace(run, history=run.replaced(doubled, accepted=2))
    history = run.replaced(dropped, accepted=0, api_received_at=None, api_responded_at=None)

    verdict = run.check(history)

    assert {"missing", "duplicated", "late"} <= set(verdict.codes)
    assert part_name(dropped).search(reason(verdict, "missing"))
    assert part_name(doubled).search(reason(verdict, "duplicated"))
    assert part_name(delayed).search(reason(verdict, "late"))


# -- worked examples -----------------------------------------------------------------------------

INCIDENT = load_scenario("incident")[0]


def example(
    latenesses: list[float | None],
    *,
    spacing_s: float = INCIDENT.flow.spacing_s,
    correlation: str = CORRELATION,
    requested_at: float = 1_700_000_000.0,
) -> list[MessageHistory]:
    """Parts of one request with the given lateness each (None: never accepted)."""
    history = []
    for seq, late in enumerate(latenesses):
        due = requested_at + seq * spacing_s
        history.append(
            MessageHistory(
                lane=LANE.name,
                message_id=message_id(seq, correlation),
                correlation_id=correlation,
                seq=seq,
                queued_at=requested_at,
                countdown_s=seq * spacing_s,
                api_received_at=None if late is None else due + late,
                api_responded_at=None if late is None else due + late + 0.3,
                accepted=0 if late is None else 1,
            )
        )
    return history


def test_example_one_late_part_of_three() -> None:
    """The incident's tolerances: the last part 0.5 s over on_time_s is late, by 0.50 s over."""
    on_time = INCIDENT.tolerances.on_time_s
    history = example([0.1, 0.3, on_time + 0.5])

    verdict = check_lane(history, LANE, INCIDENT.tolerances, expected_messages=3)

    assert verdict.codes == ["late"]
    assert verdict.reasons[0].text.endswith(
        f"reached the API more than {on_time:g} s after its due time "
        f"(worst: part 2, {on_time + 0.5:.2f} s late)"
    )
    assert verdict.lateness.p50_s == pytest.approx(0.3)
    assert verdict.lateness.max_s == pytest.approx(on_time + 0.5)


def test_example_two_requests_name_parts_by_message_id() -> None:
    """With two recipients, `part 1` would be ambiguous: reasons name message ids."""
    first = example([0.1, None])
    second = example([0.1, 0.2], correlation="0123456789abcdef")

    verdict = check_lane(first + second, LANE, INCIDENT.tolerances, 4, requests=2)

    assert verdict.codes == ["missing"]
    assert message_id(1) in reason(verdict, "missing")
    assert "part 1" not in reason(verdict, "missing")


def test_example_inversions_count_within_each_request_only() -> None:
    """Two requests interleave in time by design; only a request's own parts are ordered."""
    first = example([0.1, 0.1, 0.1])
    second = example([0.1, 0.1, 0.1], requested_at=1_700_000_000.0 + INCIDENT.flow.spacing_s / 2)

    assert order(first + second, "api_receipt").inversions == 0
    assert order(first + second, "api_response").inversions == 0


def test_example_the_first_inversion_is_the_earliest_of_all_requests() -> None:
    """Each request's first adjacent inversion is a candidate; the one that happened first wins."""
    spacing = INCIDENT.flow.spacing_s
    earlier = example(
        [0.1, 0.1, 0.1, 0.1], correlation="aaaaaaaaaaaaaaaa", requested_at=1_700_000_000.0 - 0.5
    )
    later = example([0.1, 0.1, 0.1, 0.1], correlation="bbbbbbbbbbbbbbbb")
    # In each request part 1 overtakes part 0; in the earlier one, part 3 also overtakes part 2.
    for history, pairs in ((earlier, [(0, 1), (2, 3)]), (later, [(0, 1)])):
        for i, j in pairs:
            a, b = history[i], history[j]
            assert b.api_received_at is not None
            history[i] = a.model_copy(update={"api_received_at": b.api_received_at + spacing / 4})

    found = order(earlier + later, "api_receipt")

    assert found.inversions == 3
    assert found.first == (
        f"{message_id(1, 'aaaaaaaaaaaaaaaa')} reached the API {spacing / 4:.3f} s before "
        f"{message_id(0, 'aaaaaaaaaaaaaaaa')}"
    )


def test_example_the_worst_late_and_early_parts_are_named() -> None:
    """Of several late (early) parts, the reason names the latest (earliest)."""
    tolerances = INCIDENT.tolerances
    on_time, early = tolerances.on_time_s, tolerances.early_s
    latenesses = [on_time + 1.0, on_time + 3.0, on_time + 2.0, -early - 0.2, -early - 0.7, 0.0]

    verdict = check_lane(example(latenesses), LANE, tolerances, len(latenesses))

    assert reason(verdict, "late").startswith("3 parts")
    assert f"(worst: part 1, {on_time + 3.0:.2f} s late)" in reason(verdict, "late")
    assert reason(verdict, "early").startswith("2 parts")
    assert f"(worst: part 4, {early + 0.7:.2f} s early)" in reason(verdict, "early")


def test_example_a_tie_is_not_an_inversion() -> None:
    """Two parts received at the same instant are in order: ties go by seq."""
    history = example([0.0, 0.0])
    history[1] = history[1].model_copy(update={"api_received_at": history[0].api_received_at})

    assert order(history, "api_receipt").inversions == 0


def test_example_more_than_five_missing_are_summarised() -> None:
    """A lane that lost everything names five parts and counts the rest."""
    history = example([None] * 8)

    verdict = check_lane(history, LANE, INCIDENT.tolerances, expected_messages=8)

    assert reason(verdict, "missing") == (
        "8 of 8 parts never reached the API (part 0, part 1, part 2, part 3, part 4 and 3 more)"
        ": 8 queued, never received by a worker"
    )


def test_example_missing_parts_say_how_far_they_got() -> None:
    """Received and never started (a stuck pool) reads differently from never received."""
    history = example([0.1, None, None, None])
    history[2] = history[2].model_copy(update={"received": 1.0})
    history[3] = history[3].model_copy(update={"received": 1.0, "started": 1.1})

    verdict = check_lane(history, LANE, INCIDENT.tolerances, expected_messages=5)

    assert reason(verdict, "missing").endswith(
        ": 1 never queued; 1 queued, never received by a worker; "
        "1 received by a worker, never started; 1 started, never sent to the API"
    )


def test_example_an_empty_history_misses_everything() -> None:
    """No record at all (the lane never queued anything): every expected part is missing."""
    verdict = check_lane([], LANE, INCIDENT.tolerances, INCIDENT.expected_messages)

    assert verdict.codes == ["missing"]
    assert verdict.delivery.delivered == 0
    assert len(verdict.delivery.missing) == INCIDENT.expected_messages
    assert verdict.lateness.p50_s is None
    assert verdict.lateness.max_s is None


def test_example_figures_ignore_parts_without_times() -> None:
    """Lateness figures come from the parts the API saw; delivery counts the rest."""
    history = example([0.2, None, 0.4])

    assert delivery(history, 3).missing == [message_id(1)]
    assert lateness(history, INCIDENT.tolerances).max_s == pytest.approx(0.4)


# -- expectations --------------------------------------------------------------------------------

LATE_S = 4 * INCIDENT.tolerances.on_time_s
EXPECT_LATE = LaneScenario(name="solo", pool="solo", expect="fail", because=["late"])
EXPECT_PASS = LaneScenario(name="solo", pool="solo")
EXPECT_EITHER = LaneScenario(
    name="solo", pool="solo", expect="fail", because=["missing"], or_because=["late"]
)


@pytest.mark.parametrize(
    ("lane", "latenesses", "as_expected", "mismatch"),
    [
        (EXPECT_LATE, [0.1, LATE_S], True, None),
        (EXPECT_LATE, [LATE_S, None], True, None),  # late and missing: late is among the codes
        (EXPECT_LATE, [0.1, None], False, "expected fail (late), got fail (missing)"),
        (EXPECT_LATE, [0.1, 0.2], False, "expected fail (late), got pass"),
        (EXPECT_PASS, [0.1, 0.2], True, None),
        (EXPECT_PASS, [0.1, LATE_S], False, "expected pass, got fail (late)"),
        (EXPECT_EITHER, [0.1, None], True, None),  # the first outcome
        (EXPECT_EITHER, [0.1, LATE_S], True, None),  # the second
        (EXPECT_EITHER, [0.1, 0.2], False, "expected fail (missing | late), got pass"),
        (
            LaneScenario(name="solo", pool="solo", expect="fail"),  # any failure will do
            [None, 0.1],
            True,
            None,
        ),
    ],
)
def test_verdict_is_compared_with_the_lanes_expectation(
    lane: LaneScenario, latenesses: list[float | None], as_expected: bool, mismatch: str | None
) -> None:
    """A lane expected to fail `because` late is as expected only when late is among its codes."""
    verdict = check_lane(example(latenesses), lane, INCIDENT.tolerances, len(latenesses))

    assert verdict.as_expected is as_expected
    assert verdict.mismatch == mismatch


# -- percentile ----------------------------------------------------------------------------------

VALUES = st.lists(
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False), min_size=1
)


def close(a: float, b: float, values: list[float]) -> bool:
    scale = max(abs(v) for v in values) or 1.0
    return abs(a - b) <= 1e-9 * scale


@PROPERTY
@given(values=VALUES.filter(lambda v: len(v) >= 2), q=st.integers(min_value=1, max_value=99))
def test_percentile_matches_statistics_inclusive(values: list[float], q: int) -> None:
    """numpy's default (linear) percentile is statistics' inclusive quantile."""
    reference = statistics.quantiles(values, n=100, method="inclusive")[q - 1]
    got = percentile(values, q)

    assert got is not None
    assert close(got, reference, values)


@PROPERTY
@given(values=VALUES, q=st.floats(min_value=0, max_value=100))
def test_percentile_is_within_the_values_and_monotone(values: list[float], q: float) -> None:
    low, high = percentile(values, 0), percentile(values, 100)
    got = percentile(values, q)

    above = percentile(values, min(100.0, q + 1))
    assert low == min(values)
    assert high == max(values)
    assert got is not None
    assert above is not None
    # Interpolation may round a last-place digit past a neighbour, never more.
    assert min(values) <= got or close(got, min(values), values)
    assert got <= max(values) or close(got, max(values), values)
    assert above >= got or close(above, got, values)
    assert percentile(list(reversed(values)), q) == got  # order of the input does not matter


def test_percentile_of_nothing_is_none() -> None:
    assert percentile([], 50) is None


@pytest.mark.parametrize(("q", "expected"), [(0, 1.0), (25, 1.75), (50, 2.5), (95, 3.85)])
def test_percentile_examples(q: float, expected: float) -> None:
    assert percentile([4.0, 1.0, 3.0, 2.0], q) == pytest.approx(expected)
