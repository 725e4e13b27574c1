"""The live server's Maildir store: durable writes, POP3 sizes and UIDs, locks, deletions."""

from __future__ import annotations

import mailbox
import os
import smtplib
import threading
import time

import pytest

from mailsim.live import storage
from mailsim.live.server import ServeConfig, ServerThread
from mailsim.live.storage import OUTGOING, MaildirStore, check_mailbox_name, uid_of


def test_delivered_copy_is_a_standard_maildir_message_with_lf_line_ends(tmp_path):
    store = MaildirStore(tmp_path, ["Steve"])
    [key] = store.deliver([("Steve", b"Subject: hi\r\n\r\nline one\r\nline two\r\n")])
    folder = mailbox.Maildir(tmp_path / "Steve", create=False)
    assert list(folder.keys()) == [key]
    assert folder.get_bytes(key) == b"Subject: hi\n\nline one\nline two\n"
    assert (tmp_path / OUTGOING / "new").is_dir()


def test_pop3_view_gives_crlf_content_and_its_size_with_crlf_counted_as_two(tmp_path):
    store = MaildirStore(tmp_path, ["Steve"])
    content = b"Subject: hi\r\n\r\n.dot\r\nbare\rcr\r\n"
    store.deliver([("Steve", content)])
    [entry] = store.entries("Steve")
    assert entry.content == content
    assert entry.size == len(content) == 30  # 13 + 2 + 6 + 9: CRLF counts two octets
    fresh = MaildirStore(tmp_path, ["Steve"])  # a restarted server measures from the file
    assert fresh.entries("Steve")[0].size == 30


def test_messages_are_listed_oldest_first_with_their_maildir_key_as_uid(tmp_path):
    store = MaildirStore(tmp_path, ["Steve"])
    keys = [store.deliver([("Steve", f"Subject: {n}\r\n\r\n".encode())])[0] for n in range(12)]
    entries = store.entries("Steve")
    assert [e.key for e in entries] == keys
    assert [e.uid for e in entries] == keys  # short printable keys are their own UIDL


def test_uid_of_a_key_too_long_for_uidl_is_a_stable_digest():
    key = "1700000000.M1P2Q3." + "h" * 80
    assert uid_of(key) == uid_of(key)
    assert len(uid_of(key)) == 40 and uid_of(key) != key  # RFC 1939 7: at most 70 characters


def test_second_lock_is_refused_until_the_first_is_released(tmp_path):
    store = MaildirStore(tmp_path, ["Steve"], lock_wait=0.05)
    first = store.open_maildrop("Steve")
    assert not isinstance(first, str)
    assert store.open_maildrop("Steve") == "[IN-USE] maildrop already locked by another session"
    first.release()
    second = store.open_maildrop("Steve")
    assert not isinstance(second, str)
    second.release()


def test_commit_deletions_removes_only_the_marked_messages(tmp_path):
    store = MaildirStore(tmp_path, ["Steve"])
    for n in range(3):
        store.deliver([("Steve", f"Subject: {n}\r\n\r\n".encode())])
    drop = store.open_maildrop("Steve")
    assert not isinstance(drop, str)
    kept = drop.messages[1].key
    assert drop.commit_deletions([0, 2]) is None
    drop.release()
    assert [e.key for e in store.entries("Steve")] == [kept]


@pytest.mark.parametrize("name", ["", "_outgoing", "_OUTGOING", "x" * 65, " a", "a\tb", "\u00e9"])
def test_user_names_that_cannot_be_a_maildir_are_refused(name):
    with pytest.raises(ValueError, match="cannot be a mailbox"):
        check_mailbox_name(name)


@pytest.mark.parametrize("name", ["../etc", ".hidden", "a/b", "a b"])
def test_user_names_of_quoted_local_parts_get_a_maildir_inside_the_root(tmp_path, name):
    # The characters of "../etc"@india.com and the like (RFC 5321 4.1.2) are a user's name, and
    # the Maildir's name is made safe: one directory right under the root, not hidden.
    store = MaildirStore(tmp_path / "root", [check_mailbox_name(name)])
    store.deliver([(name, b"Subject: x\r\n\r\n")])
    (made,) = [p for p in (tmp_path / "root").iterdir() if p.name != OUTGOING]
    assert made.name.startswith("=") and len(store.entries(name)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["root"]


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to name fds")
def test_250_comes_only_after_the_file_and_its_directory_were_fsynced(tmp_path, monkeypatch):
    synced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        real_fsync(fd)
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))

    # Maildir.add fsyncs the file through mailbox's os module; the directory through ours.
    monkeypatch.setattr(mailbox.os, "fsync", recording_fsync)
    monkeypatch.setattr(storage.os, "fsync", recording_fsync)
    config = ServeConfig(
        domains=("India.com",), users={"Steve": "secret"}, maildir=tmp_path / "maildir",
        smtp_port=0, submission_port=0, pop3_port=0,
    )  # fmt: skip
    with (
        ServerThread(config) as running,
        smtplib.SMTP("127.0.0.1", running.ports["smtp"], timeout=10) as smtp,
    ):
        smtp.sendmail("a@USA.com", ["Steve@India.com"], "Subject: x\r\n\r\nx\r\n")
        acknowledged = list(synced)  # sendmail returned: the 250 has arrived
    [stored] = (tmp_path / "maildir" / "Steve" / "new").iterdir()
    new_dir = str(stored.parent)
    tmp_file = str(tmp_path / "maildir" / "Steve" / "tmp" / stored.name)
    assert tmp_file in acknowledged  # the file, fsynced before it was linked into new/
    assert new_dir in acknowledged  # the directory entry that names it
    assert acknowledged.index(tmp_file) < acknowledged.index(new_dir)


def test_a_login_waits_for_a_maildrop_released_meanwhile(tmp_path):
    # The [IN-USE] race: the old session's end is noticed a moment after the new login.
    store = MaildirStore(tmp_path, ["Steve"], lock_wait=5.0)
    first = store.open_maildrop("Steve")
    assert not isinstance(first, str)
    threading.Timer(0.2, first.release).start()
    started = time.monotonic()
    second = store.open_maildrop("Steve")
    waited = time.monotonic() - started
    assert not isinstance(second, str)
    assert 0.1 < waited < 4.0  # woken by the release, not by the end of the wait
    second.release()


def test_a_maildrop_still_held_after_the_wait_is_in_use(tmp_path):
    store = MaildirStore(tmp_path, ["Steve"], lock_wait=0.2)
    first = store.open_maildrop("Steve")
    started = time.monotonic()
    assert store.open_maildrop("Steve") == "[IN-USE] maildrop already locked by another session"
    assert time.monotonic() - started >= 0.2
    assert not isinstance(first, str)
    first.release()


def test_the_size_cache_is_bounded_and_sizes_stay_right(tmp_path):
    store = MaildirStore(tmp_path, ["Steve"], size_cache=3)
    contents = [b"Subject: %d\r\n\r\n" % n + b"x\r\n" * n for n in range(10)]
    store.deliver([("Steve", content) for content in contents])
    assert store.cached_sizes() == 3
    entries = store.entries("Steve")
    assert store.cached_sizes() == 3  # measured again from the files, still bounded
    assert sorted(entry.size for entry in entries) == sorted(len(c) for c in contents)
