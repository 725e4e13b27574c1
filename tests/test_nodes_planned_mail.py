"""Planned mail is written when it is sent, not before; user agents keep what they are told to."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest
from nodes_worlds import JAMES, STEVE, tutorial_world

from mailsim.nodes.useragent import Draft
from mailsim.nodes.world import World, WorldError
from mailsim.scenario.builder import _AllBut


@dataclass
class _Stream:
    """Planned drafts that note when each is written and when the next one is asked for."""

    world: World
    times: list[float]
    log: list[tuple[str, int, float]] = field(default_factory=list)

    def __iter__(self):
        for n, at in enumerate(self.times):
            self.log.append(("asked", n, self.world.env.now))
            yield _Note(self, n, at)


@dataclass(frozen=True)
class _Note:
    stream: _Stream
    n: int
    at: float

    def written(self) -> Draft:
        self.stream.log.append(("written", self.n, self.stream.world.env.now))
        return Draft(at=self.at, to=(STEVE,), subject=f"Note {self.n}", body="Atlas?")


def test_a_planned_message_is_written_when_sent_and_the_next_asked_for_only_then() -> None:
    world = tutorial_world()
    stream = _Stream(world, [60.0, 60.0, 900.0])
    world.plan(JAMES, iter(stream))
    world.run(until=1800)
    assert stream.log == [
        ("asked", 0, 0.0),
        ("written", 0, 60.0),
        ("asked", 1, 60.0),
        ("written", 1, 60.0),
        ("asked", 2, 60.0),
        ("written", 2, 900.0),
    ]
    assert world.books().totals()["delivered"] == 3


def test_planned_and_written_mail_go_out_in_order_of_time() -> None:
    world = tutorial_world()
    stream = _Stream(world, [120.0])
    world.plan(JAMES, iter(stream))
    world.send(60, JAMES, [STEVE], "First", "one", name="first")
    world.send(180, JAMES, [STEVE], "Third", "three", name="third")
    world.run(until=1800)
    submitted = [r["msg"] for r in world.recorder.records if r["type"] == "mail.submit"]
    assert submitted[0] == "first@india.com" and submitted[-1] == "third@india.com"


def test_only_users_can_plan_mail() -> None:
    world = tutorial_world()
    with pytest.raises(WorldError, match="not a user"):
        world.plan("nobody@india.com", iter([]))
    with pytest.raises(WorldError, match="already a user"):
        world.add_user(JAMES, "again", host="james-pc")


@pytest.mark.parametrize("kept", [0, 1, None])
def test_a_user_agent_keeps_the_latest_messages_it_read(kept: int | None) -> None:
    world = tutorial_world()
    world.inbox_kept = kept
    for n in range(3):
        world.send(60 + n, JAMES, [STEVE], f"Note {n}", f"body {n}")
    world.run(until=1800)
    inbox = list(world.agents[STEVE].inbox)
    assert len(inbox) == (3 if kept is None else kept)
    if kept == 1:
        assert b"body 2" in inbox[0]


@pytest.mark.parametrize("seed", range(200))
def test_sampling_from_everyone_but_the_sender_draws_as_from_the_list_without_them(
    seed: int,
) -> None:
    rng = random.Random(seed)
    everyone = [f"u{i}@x.com" for i in range(rng.randrange(2, 60))]
    skip = rng.randrange(len(everyone))
    without = everyone[:skip] + everyone[skip + 1 :]
    view = _AllBut(everyone, skip)
    assert list(view) == without and len(view) == len(without)
    k = rng.randrange(1, min(8, len(without)) + 1)
    assert random.Random(seed).sample(view, k) == random.Random(seed).sample(without, k)
