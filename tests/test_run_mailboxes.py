"""Every simulated mailbox, written for mutt or Thunderbird (export_mailboxes, --mailboxes)."""

from __future__ import annotations

import mailbox
from email import message_from_bytes
from pathlib import Path

import pytest
from click.testing import CliRunner

import mailsim
from mailsim.cli import main
from mailsim.scenario.mailboxes import MailboxExportError


def subjects(folder: mailbox.Mailbox) -> list[str]:
    return [message_from_bytes(folder.get_bytes(key))["Subject"] for key in folder.iterkeys()]


def test_steves_fetched_mail_is_in_his_maildir(tmp_path: Path) -> None:
    result = mailsim.load("james-to-steve").run()
    written = result.export_mailboxes(tmp_path)
    assert set(written) == {"james@india.com", "steve@usa.com"}
    steve = mailbox.Maildir(written["steve@usa.com"], create=False)
    assert subjects(steve) == ["Books"]
    assert len(mailbox.Maildir(written["james@india.com"], create=False)) == 0


def test_mail_still_on_the_server_is_exported_too(tmp_path: Path) -> None:
    # Steve checks at 10 min; stopped at 5 min, the message waits in his mailbox on usa-mail.
    result = mailsim.load("james-to-steve").run(until=300)
    assert result.world.agents["steve@usa.com"].inbox == []
    written = result.export_mailboxes(tmp_path, format="mbox")
    assert written["steve@usa.com"] == tmp_path / "steve@usa.com.mbox"
    folder = mailbox.mbox(written["steve@usa.com"])
    assert subjects(folder) == ["Books"]
    (message,) = list(folder)
    assert message.get_from().startswith("james@india.com ")  # the envelope sender


def test_a_folder_of_real_mail_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "cur").mkdir()  # somebody's Maildir
    result = mailsim.load("james-to-steve").run(until=120)
    with pytest.raises(MailboxExportError, match="holds files that mailsim did not write"):
        result.export_mailboxes(tmp_path)
    with pytest.raises(MailboxExportError, match="maildir or mbox"):
        result.export_mailboxes(tmp_path / "new", format="pst")


def test_mailsim_run_mailboxes_writes_them_and_may_write_them_again(tmp_path: Path) -> None:
    out, boxes = tmp_path / "run", tmp_path / "boxes"
    for _ in range(2):  # the second export replaces the first
        result = CliRunner().invoke(
            main,
            ["run", "james-to-steve", "--out", str(out), "--no-figures", "--format", "table",
             "--mailboxes", str(boxes)],
            catch_exceptions=False,
        )  # fmt: skip
        assert result.exit_code == 0, result.output
    assert f"mutt -f {boxes / 'steve@usa.com'}" in " ".join(result.stdout.split())
    assert subjects(mailbox.Maildir(boxes / "steve@usa.com", create=False)) == ["Books"]


def test_mailsim_run_refuses_a_folder_it_did_not_write_with_exit_2(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    result = CliRunner().invoke(
        main,
        ["run", "james-to-steve", "--out", str(tmp_path / "run"), "--no-figures", "-q",
         "--mailboxes", str(tmp_path)],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 2
    assert result.stderr.startswith(f"--mailboxes: {tmp_path}: holds files")
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "mine"
