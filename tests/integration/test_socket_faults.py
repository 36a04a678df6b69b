"""Faults that only exist over a real socket: connection resets and hung requests."""

from __future__ import annotations

import time

import httpx
import pytest

from .mockapi import MockAPI, at_least

pytestmark = pytest.mark.integration


def scripted(first: int, answer: dict, last: int | None = None) -> dict:
    return {"failures": {"scripted": [{"first": first, "last": last, "answer": answer}]}}


def test_reset_breaks_the_connection_and_the_next_send_succeeds(mock: MockAPI) -> None:
    mock.behaviours(scripted(1, {"action": "reset"}))

    with pytest.raises(httpx.TransportError) as caught:
        mock.send()
    assert not isinstance(caught.value, httpx.TimeoutException), caught.value

    assert mock.send().status_code == 200
    first, second = mock.journal()
    assert (first["attempt"], first["outcome"], first["http_status"]) == (1, "reset", None)
    assert first["wamid"] is None
    assert (second["attempt"], second["outcome"], second["http_status"]) == (2, "accepted", 200)


def test_hang_without_hang_s_times_the_client_out(mock: MockAPI) -> None:
    read_timeout_s = 0.5
    mock.behaviours(scripted(1, {"action": "hang"}))

    with mock.client(timeout=httpx.Timeout(5, read=read_timeout_s)) as impatient:
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            mock.send(client=impatient)
        assert time.monotonic() - started >= read_timeout_s

    # The client gave up and closed its connection; the mock notices and closes the entry.
    [hung] = mock.wait_journal(lambda entries: entries and entries[0]["responded_at"] is not None)
    assert hung["outcome"] == "hang"
    assert hung["wamid"] is None
    assert hung["received_at"] <= hung["responded_at"]

    assert mock.send().status_code == 200


def test_hang_with_hang_s_resets_after_that_long(mock: MockAPI) -> None:
    hang_s = 0.6
    mock.behaviours(scripted(1, {"action": "hang", "hang_s": hang_s}))

    started = time.monotonic()
    with pytest.raises(httpx.TransportError) as caught:
        mock.send()
    assert time.monotonic() - started >= hang_s
    assert not isinstance(caught.value, httpx.TimeoutException), caught.value

    hung, *_ = mock.journal()
    assert hung["outcome"] == "hang"
    assert at_least(hung["responded_at"] - hung["received_at"], hang_s)
    assert mock.send().status_code == 200


def test_hang_outage_window_ends_and_sends_succeed_again(mock: MockAPI) -> None:
    duration_s = 1.0
    applied_before = time.time()
    mock.behaviours(
        {
            "failures": {
                "outages": [{"start_s": 0, "duration_s": duration_s, "answer": {"action": "hang"}}]
            }
        }
    )

    # During the window the send hangs until the window closes, then is cut off.
    started = time.monotonic()
    with pytest.raises(httpx.TransportError) as caught:
        mock.send()
    assert not isinstance(caught.value, httpx.TimeoutException), caught.value
    assert time.monotonic() - started <= duration_s + 1.0

    # The window is over: the very next send goes through.
    answer = mock.send()
    assert answer.status_code == 200, answer.text

    hung, accepted = mock.journal()
    assert hung["outcome"] == "hang"
    assert at_least(hung["responded_at"] - applied_before, duration_s)
    assert accepted["outcome"] == "accepted"
    assert at_least(accepted["received_at"] - applied_before, duration_s)


def test_error_outage_answers_503_then_recovers(mock: MockAPI) -> None:
    duration_s = 0.5
    mock.behaviours({"failures": {"outages": [{"duration_s": duration_s}]}})

    during = mock.send()
    assert during.status_code == 503
    assert during.json()["error"]["code"] == 131016

    deadline = time.monotonic() + duration_s + 5
    while (answer := mock.send()).status_code != 200:
        assert answer.status_code == 503
        assert time.monotonic() < deadline, "the outage never ended"
        time.sleep(0.05)
    outcomes = [entry["outcome"] for entry in mock.journal()]
    assert outcomes[0] == "error"
    assert outcomes[-1] == "accepted"
