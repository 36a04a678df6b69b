"""The fault suite: shipped fault scenarios run on real stacks, a lane per pool beside
each fix, judged per message; the ledger must agree with what the checks found.

It reuses the pool suite's runner and helpers (one run per scenario and session).
"""

from __future__ import annotations

from harness.fault_record import FaultRecord
from harness.history import MessageHistory
from harness.results import LedgerCounts
from harness.run import RunOutcome
from tests.pools.conftest import (  # run_shipped is a fixture, used by name
    POOLS,
    RunScenario,
    assert_as_expected,
    assert_twice_only_where_the_ack_was_lost,
    each_pool,
    parts,
    run_shipped,
)

__all__ = [
    "POOLS",
    "RunScenario",
    "assert_as_expected",
    "assert_twice_only_where_the_ack_was_lost",
    "each_pool",
    "parts",
    "run_shipped",
]


def ledger(outcome: RunOutcome, lane: str) -> LedgerCounts:
    """The lane's ledger, checked against the checks' own figures and its history."""
    result = outcome.lane(lane)
    book = result.ledger
    assert book is not None
    assert book.total == result.expected_messages
    assert book.on_time + book.late + book.duplicated == result.delivered
    assert book.failed + book.lost == result.missing
    assert book.duplicated == result.duplicated
    assert sum(book.lost_at.values()) == book.lost
    assert sum(book.failed_codes.values()) == book.failed
    assert ("missing" in result.reason_codes) == bool(book.lost or book.failed), result.reasons
    history: list[MessageHistory] = parts(outcome, lane)
    assert book.duplicated == sum(1 for m in history if m.accepted > 1)
    assert book.failed == sum(1 for m in history if m.accepted == 0 and m.status == "failed")
    return book


def fault_of(outcome: RunOutcome, action: str, lane: str | None) -> FaultRecord:
    """The one fault `action` done on `lane` (None: on the stack), with no error."""
    (fault,) = [f for f in outcome.results.faults if (f.action, f.lane) == (action, lane)]
    assert fault.error is None, fault
    return fault
