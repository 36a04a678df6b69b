"""The fault record: every fault a stored run holds reads into it, and says the same again."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.fault_record import FaultRecord
from harness.results import RESULTS

pytestmark = pytest.mark.unit

REPORTS = Path(__file__).resolve().parents[2] / "reports"
STORED = [
    pytest.param(fault, id=f"{path.parent.name}-{n}")
    for path in sorted(REPORTS.glob(f"*/{RESULTS}"))
    for n, fault in enumerate(json.loads(path.read_text(encoding="utf-8")).get("faults") or [])
]


def test_the_samples_hold_faults_to_read() -> None:
    assert len(STORED) >= 10


@pytest.mark.parametrize("stored", STORED)
def test_a_stored_fault_reads_into_a_record_that_says_the_same(stored: dict[str, Any]) -> None:
    """Schema 2's faults were free-form; the record keeps every key they held, unchanged."""
    record = FaultRecord.model_validate(stored).model_dump(mode="json")

    assert {key: record[key] for key in stored} == stored


def test_a_fault_struck_when_it_began_or_in_older_results_when_it_was_done() -> None:
    both = FaultRecord(action="kill-worker", begun_at=1.0, done_at=2.0)
    done_only = FaultRecord(action="kill-worker", done_at=2.0)

    assert (both.at, done_only.at) == (1.0, 2.0)
    assert not both.failed
    assert FaultRecord(action="start-worker", error="RuntimeError: no").failed
