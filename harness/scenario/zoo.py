"""A scenario's `[zoo]` table: the publicly reported bug it reproduces, and where.

A zoo entry is a scenario whose lanes show a known Celery, kombu or broker bug by its
real mechanism (a fault, a timer, a setting, a release) beside lanes that show it fixed
(a later release, or a setting). The table names the bug (trackers, mechanism, what it
affects), which lanes show it and which show the fix, and says honestly what came out
of the runs tried: an entry whose bug did not show says so, with what was tried.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, model_validator

from ..bot.settings import Pool
from .brokers import BrokerKind
from .lanes import LaneScenario, Reason
from .strict import Strict

ZooStatus = Literal["reproduced", "not reproduced"]
Text = Annotated[str, Field(min_length=1)]


class ZooAffects(Strict):
    """Where the bug exists, as its trackers and the entry's runs tell."""

    releases: Annotated[list[Text], Field(min_length=1)] = Field(
        description="The releases affected, as free text per item, e.g. 'celery 5.7.0' or "
        "'kombu >= 5.3, every release so far'. At least one."
    )
    pools: Annotated[list[Pool], Field(min_length=1)] = Field(
        description="The worker pools affected (solo, prefork, threads, gevent, eventlet). "
        "At least one."
    )
    brokers: Annotated[list[BrokerKind], Field(min_length=1)] = Field(
        description="The brokers affected (valkey and redis alike for a Redis transport bug; "
        "rabbitmq). At least one."
    )


class Zoo(Strict):
    """The bug a zoo scenario reproduces: its trackers, mechanism, lanes and outcome."""

    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,40}$")] = Field(
        description="The entry's id, as `harness zoo run ID` takes it: lower-case letters, "
        "digits and dashes, at most 41 characters, unique in the zoo."
    )
    title: Text = Field(description="The bug in one line.")
    trackers: Annotated[
        list[Annotated[str, Field(pattern=r"^https://\S+$")]], Field(min_length=1)
    ] = Field(
        description="Links to the public reports and fixes (https:// URLs): issues, pull "
        "requests, release notes. At least one."
    )
    mechanism: Text = Field(
        description="How the bug happens, in a few sentences: the code path, the timer or "
        "the setting, as read in the releases' source."
    )
    affects: ZooAffects = Field(description="The releases, pools and brokers the bug affects.")
    reasons: Annotated[list[Reason], Field(min_length=1)] = Field(
        description="The reason codes the bug shows as (missing, duplicated, late, ...): each "
        "bug lane of a reproduced entry expects to fail with all of them, and no fix lane "
        "may expect any of them."
    )
    bug_lanes: Annotated[list[str], Field(min_length=1)] = Field(
        description="The lanes that show the bug (an affected release, pool, broker or "
        "setting). At least one; each a lane of the scenario."
    )
    fix_lanes: list[str] = Field(
        default_factory=list,
        description="The lanes that show it fixed (a later release, or the setting that "
        "mitigates it): expected to pass, or to fail only for another stated reason. Each a "
        "lane of the scenario, none also a bug lane.",
    )
    varies: dict[str, Text] = Field(
        default_factory=dict,
        description="Bug lanes whose bug did not show in every run tried, each with how "
        "often it did and what came instead (lane name = 'text'). Such a lane shows the "
        "bug or recovers (every part sent exactly once, late allowed); the zoo test "
        "accepts either, and at least one bug lane must stay outside `varies`.",
    )
    fixed_by: Text | None = Field(
        default=None,
        description="What fixes it: a release ('celery 5.6.3 (celery/celery#10151)') or a "
        "setting ('visibility_timeout above the longest countdown'); unset: nothing known.",
    )
    status: ZooStatus = Field(
        description="`reproduced`: the bug lanes showed it in the runs tried; `not "
        "reproduced`: they did not, and `tried` says what was tried."
    )
    tried: Text = Field(
        description="What was run and what came out: how many runs, at which time scale, "
        "under what load, and how often each outcome came. Honest, not tuned."
    )

    @model_validator(mode="after")
    def _lanes_apart(self) -> Zoo:
        both = sorted(set(self.bug_lanes) & set(self.fix_lanes))
        if both:
            raise ValueError(f"lanes {both} are both bug_lanes and fix_lanes")
        if self.varies and self.status != "reproduced":
            raise ValueError(
                "zoo.varies: only a reproduced entry names bug lanes that showed the bug in "
                "some runs; this one is 'not reproduced' (say what came in `tried`)"
            )
        stray = sorted(set(self.varies) - set(self.bug_lanes))
        if stray:
            raise ValueError(f"zoo.varies: {stray} are not bug_lanes; bug_lanes: {self.bug_lanes}")
        if self.varies and set(self.bug_lanes) <= set(self.varies):
            raise ValueError(
                "zoo.varies names every bug lane: at least one must show the bug in every run"
            )
        return self

    def only(self, names: set[str]) -> Zoo | None:
        """The table with only the named lanes (a run of some of the scenario's lanes);
        None when no bug lane is left: such a run shows no bug."""
        bug = [lane for lane in self.bug_lanes if lane in names]
        if not bug:
            return None
        fix = [lane for lane in self.fix_lanes if lane in names]
        varies = {lane: text for lane, text in self.varies.items() if lane in names}
        return self.model_copy(update={"bug_lanes": bug, "fix_lanes": fix, "varies": varies})

    def role(self, lane: str) -> Literal["bug", "fix"] | None:
        """Whether the lane shows the bug, the fix, or neither."""
        if lane in self.bug_lanes:
            return "bug"
        return "fix" if lane in self.fix_lanes else None


def check_zoo_lanes(zoo: Zoo, lanes: list[LaneScenario]) -> None:
    """The lanes the table names exist, and expect what their role says.

    A bug lane of a reproduced entry expects to fail with the bug's reasons; a fix lane
    expects to pass, or to fail for other reasons only.
    """
    by_name = {lane.name: lane for lane in lanes}
    for key, named in (("bug_lanes", zoo.bug_lanes), ("fix_lanes", zoo.fix_lanes)):
        unknown = [name for name in named if name not in by_name]
        if unknown:
            raise ValueError(f"zoo.{key}: {unknown} are not lanes; lanes: {list(by_name)}")
    if zoo.status == "reproduced":
        for name in zoo.bug_lanes:
            lane = by_name[name]
            absent = [code for code in zoo.reasons if code not in lane.because]
            if lane.expect != "fail" or absent:
                raise ValueError(
                    f"zoo.bug_lanes: lane {name} must expect = 'fail' with because "
                    f"including {list(zoo.reasons)} (the bug's reasons): the entry is "
                    "reproduced"
                )
    for name in zoo.fix_lanes:
        shared = [code for code in by_name[name].because if code in zoo.reasons]
        if shared:
            raise ValueError(
                f"zoo.fix_lanes: lane {name} expects the bug's own reasons {shared}: a fix "
                "lane passes, or fails for another reason"
            )


_GITHUB = re.compile(r"^https://github\.com/([^/]+)/([^/]+)/(issues|pull)/(\d+)")


def tracker_label(url: str) -> str:
    """A GitHub link said short, by its repository: `celery#1454`, `kombu PR #2561`,
    `rabbitmq-server#11948`; any other link as it is."""
    found = _GITHUB.match(url)
    if found is None:
        return url
    _, repo, kind, number = found.groups()
    return f"{repo} PR #{number}" if kind == "pull" else f"{repo}#{number}"
