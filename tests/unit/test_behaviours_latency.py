"""Latency models: bounds and determinism of the sampler, and the delay the route really adds."""

from __future__ import annotations

import random
import time
from types import SimpleNamespace

import pytest

from mock_meta_api import graph
from mock_meta_api.config import (
    FixedLatency,
    Latency,
    LognormalLatency,
    NoLatency,
    NormalLatency,
    UniformLatency,
)
from mock_meta_api.latency import LatencySampler, draw

from .conftest import PHONE_ID, assert_accepted, make_config, running_mock, unlimited

pytestmark = [pytest.mark.unit, pytest.mark.anyio]

SAMPLES = 2000
SLOW_PHONE_ID = "222333444555666"


def samples(model, seed: int = 1, n: int = SAMPLES) -> list[float]:
    rng = random.Random(seed)
    return [draw(model, rng) for _ in range(n)]


def test_none_is_always_zero() -> None:
    assert set(samples(NoLatency())) == {0.0}


def test_fixed_is_always_the_value() -> None:
    model = FixedLatency(model="fixed", value_s=0.25)

    assert set(samples(model)) == {model.value_s}


def test_uniform_stays_within_low_high_and_spreads() -> None:
    model = UniformLatency(model="uniform", low_s=0.2, high_s=0.5)
    values = samples(model)

    assert all(model.low_s <= value <= model.high_s for value in values)
    assert min(values) < model.low_s + (model.high_s - model.low_s) / 4
    assert max(values) > model.high_s - (model.high_s - model.low_s) / 4


def test_uniform_with_equal_bounds_is_that_value() -> None:
    model = UniformLatency(model="uniform", low_s=0.3, high_s=0.3)

    assert set(samples(model)) == {model.low_s}


def test_normal_is_clipped_to_zero_and_max() -> None:
    # mean 0.1, stddev 0.2: about a third of raw draws are negative, some exceed max_s
    model = NormalLatency(model="normal", mean_s=0.1, stddev_s=0.2, max_s=0.3)
    values = samples(model)

    assert all(0.0 <= value <= model.max_s for value in values)
    assert values.count(0.0) > 0
    assert values.count(model.max_s) > 0
    assert len(set(values)) > 2  # and values in between


def test_normal_without_max_is_only_clipped_at_zero() -> None:
    model = NormalLatency(model="normal", mean_s=0.0, stddev_s=1.0)
    values = samples(model)

    assert min(values) == 0.0
    assert max(values) > 1.0


def test_lognormal_is_positive_and_clipped_to_max() -> None:
    model = LognormalLatency(model="lognormal", median_s=0.4, sigma=1.0, max_s=2.0)
    values = samples(model)

    assert all(0.0 < value <= model.max_s for value in values)
    assert values.count(model.max_s) > 0
    below = sum(value < model.median_s for value in values)
    assert 0 < below < len(values)  # the median lies inside the samples


def test_lognormal_with_sigma_zero_is_the_median() -> None:
    model = LognormalLatency(model="lognormal", median_s=0.4, sigma=0.0)

    assert all(value == pytest.approx(model.median_s) for value in samples(model))


RANDOM_MODELS = [
    UniformLatency(model="uniform", low_s=0.0, high_s=1.0),
    NormalLatency(model="normal", mean_s=0.5, stddev_s=0.2),
    LognormalLatency(model="lognormal", median_s=0.3, sigma=0.5),
]


@pytest.mark.parametrize("model", RANDOM_MODELS, ids=lambda m: m.model)
def test_sampler_with_same_seed_replays_the_same_delays(model) -> None:
    first = LatencySampler(Latency(default=model, seed=42))
    second = LatencySampler(Latency(default=model, seed=42))
    other = LatencySampler(Latency(default=model, seed=43))

    one = [first.sample(PHONE_ID) for _ in range(50)]
    two = [second.sample(PHONE_ID) for _ in range(50)]
    three = [other.sample(PHONE_ID) for _ in range(50)]

    assert one == two
    assert one != three


def test_each_number_replays_the_seeded_delays_whatever_the_others_do() -> None:
    """Lanes share the mock: each lane's number sees the same delays, in any interleaving."""
    model = UniformLatency(model="uniform", low_s=0.2, high_s=5.0)
    alone = LatencySampler(Latency(default=model, seed=7))
    shared = LatencySampler(Latency(default=model, seed=7))

    solo = [alone.sample(PHONE_ID) for _ in range(20)]
    interleaved = [(shared.sample(PHONE_ID), shared.sample(SLOW_PHONE_ID)) for _ in range(20)]

    assert [first for first, _ in interleaved] == solo
    assert [second for _, second in interleaved] == solo


def test_per_phone_number_model_overrides_the_default() -> None:
    latency = Latency(
        default=FixedLatency(model="fixed", value_s=0.1),
        per_phone_number={SLOW_PHONE_ID: FixedLatency(model="fixed", value_s=2.5)},
    )
    sampler = LatencySampler(latency)

    assert sampler.sample(SLOW_PHONE_ID) == 2.5
    assert sampler.sample(PHONE_ID) == 0.1
    assert sampler.sample("unknown") == 0.1


# -- through the route --------------------------------------------------------


async def test_fixed_latency_delays_the_answer_by_at_least_the_value() -> None:
    config = make_config(behaviours={"latency": {"default": {"model": "fixed", "value_s": 0.05}}})
    value_s = config.behaviours.latency.default.value_s
    async with running_mock(config) as mock:
        started = time.monotonic()
        assert_accepted(await mock.send())
        elapsed = time.monotonic() - started
        (entry,) = await mock.journal()

    assert elapsed >= value_s
    assert entry["latency_s"] == value_s
    assert entry["responded_at"] - entry["received_at"] >= value_s


async def test_the_journal_shows_the_latency_while_the_wall_clock_runs_slow(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The loop's timer keeps the monotonic clock, the journal the wall clock, which the
    kernel may slew: a send journalled 69 us short of a 4 s spike failed a check. Here the
    wall clock runs 20 % slow and the journal must still show the whole delay."""
    origin = time.time()
    slow_clock = SimpleNamespace(
        time=lambda: origin + (time.time() - origin) * 0.8, monotonic=time.monotonic
    )
    monkeypatch.setattr(graph, "time", slow_clock)
    config = make_config(behaviours={"latency": {"default": {"model": "fixed", "value_s": 0.05}}})
    value_s = config.behaviours.latency.default.value_s
    async with running_mock(config) as mock:
        for _ in range(5):
            assert_accepted(await mock.send())
        entries = await mock.journal()

    assert len(entries) == 5
    assert min(e["responded_at"] - e["received_at"] for e in entries) >= value_s


async def test_latency_applies_to_error_answers_too() -> None:
    config = make_config(behaviours={"latency": {"default": {"model": "fixed", "value_s": 0.03}}})
    value_s = config.behaviours.latency.default.value_s
    async with running_mock(config) as mock:
        answer = await mock.send(headers={"Authorization": "Bearer wrong"})
        (entry,) = await mock.journal()

    assert answer.status_code == 401
    assert entry["latency_s"] == value_s
    assert entry["responded_at"] - entry["received_at"] >= value_s


async def test_no_latency_records_zero() -> None:
    async with running_mock() as mock:
        assert_accepted(await mock.send())
        (entry,) = await mock.journal()

    assert entry["latency_s"] == 0.0


async def test_per_phone_number_latency_through_the_route() -> None:
    config = make_config(
        phone_number_ids=[PHONE_ID, SLOW_PHONE_ID],
        behaviours={
            "latency": {"per_phone_number": {SLOW_PHONE_ID: {"model": "fixed", "value_s": 0.04}}}
        },
    )
    slow_s = config.behaviours.latency.per_phone_number[SLOW_PHONE_ID].value_s
    async with running_mock(config) as mock:
        assert_accepted(await mock.send(path=f"/v21.0/{SLOW_PHONE_ID}/messages"))
        assert_accepted(await mock.send())
        slow, fast = await mock.journal()

    assert slow["phone_number_id"] == SLOW_PHONE_ID
    assert slow["latency_s"] == slow_s
    assert slow["responded_at"] - slow["received_at"] >= slow_s
    assert fast["latency_s"] == 0.0


async def test_seeded_latency_replays_across_app_instances() -> None:
    behaviours = unlimited(
        latency={"seed": 9, "default": {"model": "uniform", "low_s": 0.0, "high_s": 0.004}}
    )

    async def delays() -> list[float]:
        async with running_mock(make_config(behaviours=behaviours)) as mock:
            for _ in range(8):
                await mock.send()
            return [entry["latency_s"] for entry in await mock.journal()]

    first, second = await delays(), await delays()
    assert first == second
    assert len(set(first)) == len(first)


async def test_latency_changed_at_run_time_applies_to_the_next_send() -> None:
    async with running_mock() as mock:
        sections = await mock.patch_behaviours(
            {"latency": {"default": {"model": "fixed", "value_s": 0.02}}}
        )
        value_s = sections["latency"]["default"]["value_s"]
        assert_accepted(await mock.send())
        (entry,) = await mock.journal()

    assert entry["latency_s"] == value_s
    assert entry["responded_at"] - entry["received_at"] >= value_s
