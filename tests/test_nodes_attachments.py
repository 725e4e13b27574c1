"""A 2 MB photo crosses the ocean as base64 and arrives as the same bytes, measurably later."""

from __future__ import annotations

import random

import pytest
from nodes_worlds import JAMES, OCEAN_RTT, STEVE, assert_balanced, first, of_type, tutorial_world

from mailsim.mail.message import extract_attachments, synthetic_attachment
from mailsim.nodes.world import World

PHOTO = synthetic_attachment("photo", "2MB", random.Random(12))


@pytest.fixture(scope="module")
def world() -> World:
    world = tutorial_world(seed=12)
    world.send(60, JAMES, [STEVE], "Note", "Short note", name="note")
    world.send(120, JAMES, [STEVE], "Photo", "The photo", attachments=[PHOTO], name="photo")
    world.run(until=700)
    return world


def _latency(world: World, name: str) -> float:
    msg = f"{name}@india.com"
    return float(
        first(world, "mail.deliver", msg=msg)["t"] - first(world, "mail.submit", msg=msg)["t"]
    )


def test_photo_takes_measurably_longer_than_a_note(world: World) -> None:
    size = first(world, "mail.submit", msg="photo@india.com")["size"]
    # base64 turns 2,000,000 octets into 2,666,668 characters in 76-character lines, plus CRLFs:
    # about 2.74 MB on the wire, 37 % more than the file (RFC 2045 6.8).
    assert 2_700_000 < size < 2_760_000
    # At 20 Mbit/s the bytes alone need 2.74e6 * 8 / 20e6 = 1.1 s, but the 64 KiB receive window
    # allows only 65536 octets per 220 ms round trip (2.4 Mbit/s): 2.74e6 / 65536 * 0.22 = 9.2 s
    # more than the note's 1.02 s, give or take slow start's first rounds.
    window_limited = size / 65536 * OCEAN_RTT
    assert _latency(world, "note") == pytest.approx(1.018, abs=2e-3)
    extra = _latency(world, "photo") - _latency(world, "note")
    assert window_limited - 0.5 < extra < window_limited + 1.5
    assert extra > size * 8 / 20e6  # more than serialisation alone


def test_steve_gets_the_original_bytes(world: World) -> None:
    inbox = world.agents[STEVE].inbox
    assert len(inbox) == 2
    # 7-bit on the wire (RFC 5321 without 8BITMIME use), decoded back at Steve's end.
    assert all(message.isascii() for message in inbox)
    (attachment,) = extract_attachments(inbox[1])
    assert attachment.filename == PHOTO.filename
    assert attachment.content_type == "image/jpeg"
    assert attachment.data == PHOTO.data


def test_trace_keeps_the_dialogue_short(world: World) -> None:
    # Thousands of base64 lines are summarised in the trace (the bytes on the wire are not).
    markers = [rec for rec in of_type(world, "smtp.line") if rec.get("elided")]
    assert markers and all(rec["elided"] > 30_000 for rec in markers)
    assert len(world.recorder.records) < 500
    assert_balanced(world)
