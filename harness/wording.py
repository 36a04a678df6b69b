"""How a run's durations and faults read in text: one wording for the terminal's tables
and the reports (kept outside harness.report, which imports matplotlib)."""

from __future__ import annotations

from .fault_record import FaultRecord
from .scenario import STACK_ACTIONS


def seconds(value: float | None) -> str:
    """A duration in the tables and reports: `0.25`, or `-` when there is none."""
    return "-" if value is None else f"{value:.2f}"


def describe_fault(fault: FaultRecord, trigger_at: float | None) -> str:
    """`stop-worker solo (pid 41) at 1.30-2.10 s, scheduled 1.30 s`, or why it failed.

    Times count from the trigger.
    """
    begun_at = fault.at
    zero = trigger_at if trigger_at is not None else begun_at
    on_stack = "the stack" if fault.action in STACK_ACTIONS else "every lane"
    text = f"{fault.action} {fault.lane or on_stack}"
    if fault.worker_pid:  # kill-pool-process: a pool process of that worker
        running = "idle" if fault.part is None else f"running part {fault.part}"
        text += f" (pid {fault.pid} of worker {fault.worker_pid}, {running})"
    elif fault.pid:
        text += f" (pid {fault.pid}" + (f", then {fault.new_pid})" if fault.new_pid else ")")
    elif fault.new_pid:  # a worker restarted after the old one had exited
        text += f" (none running, then pid {fault.new_pid})"
    if zero is not None and begun_at is not None and fault.done_at is not None:
        text += f" at {begun_at - zero:.2f}-{fault.done_at - zero:.2f} s"
    if zero is not None and fault.scheduled_at is not None:
        text += f", scheduled {fault.scheduled_at - zero:.2f} s"
    if fault.cancelled:
        return text + ": cancelled, the run was stopping"
    if fault.error:
        return text + f": FAILED: {fault.error}"
    return text
