"""Mailboxes as POP3 needs them (sizes, uids, one session, deletions on commit) and their export."""

from __future__ import annotations

import email
import email.policy
import mailbox
import random
from pathlib import Path

import pytest

from mailsim.mail.mailbox import (
    Mailbox,
    MailboxLocked,
    MailStore,
    export_maildir,
    export_mbox,
)
from mailsim.mail.message import compose, make_message_id, synthetic_attachment


def _message(n: int, body: str = "Do you have a Grammar Book?\n", **kw: object) -> bytes:
    return compose(
        "James <james@india.com>",
        "steve@usa.com",
        f"Message {n}",
        body,
        message_id=make_message_id(f"m{n}", "india.com"),
        date_t=float(n),
        **kw,  # type: ignore[arg-type]
    )


def test_sizes_count_crlf_as_two_octets_and_bare_lf_is_normalised() -> None:
    box = Mailbox("steve")
    stored = box.deliver(b"Subject: hi\n\nline one\nline two\n", t=5.0, msg_id="m1")
    # 4 lines: "Subject: hi", "", "line one", "line two" = 11 + 0 + 8 + 8 = 27 characters,
    # plus 4 CRLFs = 8 octets: 35.
    assert stored.content == b"Subject: hi\r\n\r\nline one\r\nline two\r\n"
    assert stored.size == 35
    assert box.total_size == 35


def test_uids_are_stable_unique_and_never_reused() -> None:
    box = Mailbox("steve")
    first = box.deliver(_message(1))
    second = box.deliver(_message(2))
    assert first.uid != second.uid
    assert all(0x21 <= ord(ch) <= 0x7E for ch in first.uid) and len(first.uid) <= 70
    box.lock()
    box.commit_deletions([1])  # delete the second (index 1 = POP3 message 2)
    box.release()
    third = box.deliver(_message(3))
    assert third.uid not in (first.uid, second.uid)
    assert [m.uid for m in box.messages] == [first.uid, third.uid]


def test_only_one_session_at_a_time() -> None:
    store = MailStore(["steve"])
    session = store.open_maildrop("Steve")  # user names are case-insensitive
    assert isinstance(session, Mailbox)
    assert store.open_maildrop("steve") == (
        "[IN-USE] maildrop of steve is locked by another session"
    )
    with pytest.raises(MailboxLocked, match="already open"):
        session.lock()
    session.release()
    assert isinstance(store.open_maildrop("steve"), Mailbox)
    assert store.open_maildrop("nobody") == "[SYS/PERM] no mailbox for nobody"


def test_session_sees_a_fixed_list_while_new_mail_arrives() -> None:
    store = MailStore(["steve"])
    store.deliver("steve", _message(1))
    session = store.open_maildrop("steve")
    assert isinstance(session, Mailbox)
    store.deliver("steve", _message(2))  # arrives during the session
    assert len(session.messages) == 1
    session.commit_deletions([0])
    session.release()
    # Message 1 was deleted; message 2, delivered during the session, is kept for the next one.
    (left,) = store.mailbox("steve").messages
    assert b"Subject: Message 2" in left.content


def test_deletions_happen_only_on_commit() -> None:
    box = Mailbox("steve")
    for n in range(3):
        box.deliver(_message(n))
    box.lock()
    box.release()  # a dropped session: nothing deleted
    assert len(box) == 3
    box.lock()
    assert box.commit_deletions([0, 2, 2]) == 2
    box.release()
    assert [b"Message 1" in m.content for m in box.messages] == [True]


def test_commit_needs_a_session_and_valid_indices() -> None:
    box = Mailbox("steve")
    box.deliver(_message(1))
    with pytest.raises(MailboxLocked, match="not open"):
        box.commit_deletions([0])
    box.lock()
    with pytest.raises(IndexError, match=r"index 1 is outside 0\.\.0"):
        box.commit_deletions([1])
    assert len(box) == 1


def test_unknown_user_error_names_the_known_ones() -> None:
    store = MailStore(["steve", "anna"])
    with pytest.raises(KeyError, match="no mailbox for user 'bob'; known users: anna, steve"):
        store.mailbox("bob")
    assert "STEVE" in store and "bob" not in store


def test_maildir_export_is_readable_by_the_standard_library(tmp_path: Path) -> None:
    photo = synthetic_attachment("photo", 40_000, random.Random(2))
    box = Mailbox("steve")
    box.deliver(_message(1), t=10.0, sender="james@india.com")
    box.deliver(_message(2, attachments=[photo]), t=20.0, sender="james@india.com")
    target = export_maildir(box, tmp_path / "steve")
    folder = mailbox.Maildir(target, factory=None, create=False)
    messages = [
        email.message_from_bytes(folder.get_bytes(key), policy=email.policy.default)
        for key in folder.iterkeys()
    ]
    assert sorted(str(m["Subject"]) for m in messages) == ["Message 1", "Message 2"]
    with_photo = next(m for m in messages if m["Subject"] == "Message 2")
    (part,) = list(with_photo.iter_attachments())
    assert part.get_content() == photo.data
    assert all(b"\r\n" not in folder.get_bytes(key) for key in folder.iterkeys())  # local LF ends


def test_maildir_export_refuses_to_mix_into_existing_mail(tmp_path: Path) -> None:
    box = Mailbox("steve")
    box.deliver(_message(1))
    export_maildir(box, tmp_path / "md")
    with pytest.raises(FileExistsError, match="already holds 1 messages"):
        export_maildir(box, tmp_path / "md")
    export_maildir(box, tmp_path / "md", replace=True)
    assert len(mailbox.Maildir(tmp_path / "md", create=False)) == 1


def test_mbox_export_is_readable_and_quotes_from_lines(tmp_path: Path) -> None:
    box = Mailbox("steve")
    box.deliver(_message(1, body="From India with love\nbye\n"), t=0.0, sender="james@india.com")
    box.deliver(_message(2), t=3600.0, sender="")
    target = export_mbox(box, tmp_path / "steve.mbox")
    folder = mailbox.mbox(target, create=False)
    messages = list(folder)
    assert [m["Subject"] for m in messages] == ["Message 1", "Message 2"]
    assert messages[0].get_from() == "james@india.com Mon Jan  5 09:00:00 2026"
    assert messages[1].get_from() == "MAILER-DAEMON Mon Jan  5 10:00:00 2026"
    raw = target.read_bytes()
    assert b"\n>From India with love\n" in raw  # a body line starting "From " is quoted
    with pytest.raises(FileExistsError):
        export_mbox(box, target)


def test_store_exports_every_mailbox(tmp_path: Path) -> None:
    store = MailStore(["steve", "anna"])
    store.deliver("steve", _message(1))
    paths = store.export(tmp_path / "out", fmt="mbox")
    assert sorted(p.name for p in paths.values()) == ["anna.mbox", "steve.mbox"]
    assert len(mailbox.mbox(paths["steve"], create=False)) == 1
    with pytest.raises(ValueError, match="export format must be 'maildir' or 'mbox'"):
        store.export(tmp_path / "x", fmt="eml")
