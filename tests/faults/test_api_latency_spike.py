"""A latency spike on the API: the answers take the window's latency on every pool; solo
and 2 prefork processes fall behind; 8 threads and 20 greenlets keep the schedule."""

from __future__ import annotations

import pytest

from harness.run import RunOutcome

from .conftest import RunScenario, assert_as_expected, each_pool, fault_of, ledger, parts

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def spike(run_shipped: RunScenario) -> RunOutcome:
    return run_shipped("api-latency-spike", 0.5)  # part 0 within 0.5 s is noise-prone here


@each_pool
def test_answers_in_the_window_take_its_latency(spike: RunOutcome, pool: str) -> None:
    window = fault_of(spike, "api-latency", None)
    assert window.latency is not None
    assert window.latency.model == "fixed"
    latency_s = window.latency.value_s
    book = ledger(spike, pool)
    assert (book.failed, book.lost, book.duplicated) == (0, 0, 0)
    slow = [
        m
        for m in parts(spike, pool)
        if m.api_responded_at is not None
        and m.api_received_at is not None
        and m.api_responded_at - m.api_received_at >= latency_s
    ]
    assert slow, "no answer took the spike's latency"
    for m in slow:  # and only sends that reached the API while the spike was on
        assert m.api_received_at is not None
        assert window.begun_at <= m.api_received_at <= window.done_at, f"part {m.seq}"
    if pool in ("solo", "prefork"):  # 1 and 2 sends in flight: fewer than the spike needs
        assert book.late >= 1
    else:
        assert book.late == 0
    assert_as_expected(spike, pool)
