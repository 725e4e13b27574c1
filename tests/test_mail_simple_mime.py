"""The direct writer of plain notes gives the very bytes the email package gives, or steps aside."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from mailsim.mail.message import (
    Attachment,
    compose,
    compose_with_email_package,
    format_date,
    synthetic_attachment,
)
from mailsim.mail.simple_mime import plain_body, simple_message

ATOM = st.text("abcxyzABC0123456789-_.+", min_size=1, max_size=12).filter(
    lambda s: not s.startswith(".") and not s.endswith(".") and ".." not in s
)
ADDRESS = st.builds(lambda a, b: f"{a}@{b}.com", ATOM, ATOM)
# Printable ASCII and spaces, with the characters header parsers care about.
HEADER_TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=90)
BODY = st.lists(
    st.sampled_from([*"abc XYZ.:-=?\t\n\r", "\r\n", "\u00e9", "\x0c", "\x00", "x" * 40]),
    max_size=60,
).map("".join)
FILES = st.lists(
    st.tuples(
        st.sampled_from(
            ["IMG_0001.jpg", "a.pdf", "my photo.jpg", "x" * 40 + ".bin", "r\u00e9.txt"]
        ),
        st.sampled_from(["image/jpeg", "application/pdf", "Image/JPEG", "text/plain"]),
        st.binary(max_size=200),
    ),
    max_size=2,
)


def both(sender, to, cc, subject, body, files, t=12.5):
    attachments = [Attachment(name, kind, data) for name, kind, data in files]
    mid = "<m1@india.com>"
    fast = compose(
        sender, to, subject, body, cc=cc, attachments=attachments, message_id=mid, date_t=t
    )
    slow = compose_with_email_package(
        sender,
        to,
        subject,
        body,
        cc=cc,
        html=None,
        attachments=attachments,
        message_id=mid,
        date=format_date(t),
        extra_headers=None,
    )
    return fast, slow


@settings(max_examples=400, deadline=None)
@given(
    sender=ADDRESS | st.just('"James" <james@india.com>'),
    to=st.lists(ADDRESS, min_size=1, max_size=4),
    cc=st.lists(ADDRESS, max_size=2),
    subject=HEADER_TEXT,
    body=BODY,
    files=FILES,
)
def test_composed_bytes_are_the_email_packages_whichever_road_is_taken(
    sender, to, cc, subject, body, files
) -> None:
    fast, slow = both(sender, to, cc, subject, body, files)
    assert fast == slow


def test_a_generated_note_with_a_photo_takes_the_direct_road() -> None:
    photo = synthetic_attachment("photo", 5000, random.Random(1))
    note = "Do you have a Grammar Book?\nWhat about Atlas?\n" * 20
    args = {
        "sender": "james@india.com",
        "to": ["steve@usa.com"],
        "cc": (),
        "subject": "Note 3 from james",
        "date": format_date(60),
        "message_id": "<m1@india.com>",
        "body": note,
        "boundary": "=_b",
    }
    assert simple_message(**args, attachments=[]) is not None
    assert simple_message(**args, attachments=[(photo.filename, photo.content_type, photo.data)])
    files = [(photo.filename, photo.content_type, photo.data)]
    fast, slow = both("james@india.com", ["steve@usa.com"], (), "Books", note, files)
    assert fast == slow


def test_what_the_email_package_would_rewrite_is_left_to_it() -> None:
    base = {
        "sender": "james@india.com",
        "to": ["steve@usa.com"],
        "cc": (),
        "subject": "Books",
        "date": format_date(0),
        "message_id": "<m1@india.com>",
        "body": "hello",
        "attachments": [],
        "boundary": "=_b",
    }
    assert simple_message(**base) is not None
    for change in (
        {"subject": "x" * 80},  # folded
        {"subject": "=?utf-8?q?hi?="},  # an encoded word, decoded and re-encoded
        {"subject": ""},
        {"sender": "James <james@india.com>"},  # a display name
        {"body": "caf\u00e9"},  # quoted-printable
        {"body": "y" * 79},  # a long line: quoted-printable
        {"attachments": [("my photo.jpg", "image/jpeg", b"")]},
    ):
        assert simple_message(**{**base, **change}) is None, change


def test_plain_body_ends_every_line_in_crlf_as_the_email_package_does() -> None:
    assert plain_body("") == b"\r\n"
    assert plain_body("a\nb") == b"a\r\nb\r\n"
    assert plain_body("a\r\nb\rc\n") == b"a\r\nb\r\nc\r\n"
