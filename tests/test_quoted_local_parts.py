"""Quoted local parts (RFC 5321 4.1.2): ``"john smith"@usa.com`` is parsed, compared and delivered.

A local part is a dot-string or a quoted string, and two spellings of the same characters name
the same mailbox (``"ann"@a.org`` is ``ann@a.org``). The scenario language, the protocol
machines, the simulated and the live server must all agree, and a mailbox name taken from a
quoted local part (``../etc``, ``a/b``) must never lead outside the mail folder.
"""

from __future__ import annotations

import poplib
import smtplib
from pathlib import Path

import pytest

from mailsim.live.accounts import Accounts, parse_user
from mailsim.live.server import ServeConfig, ServerThread
from mailsim.live.storage import MaildirStore, check_mailbox_name
from mailsim.mail.mailbox import MailStore, mailbox_file_name
from mailsim.protocol.smtp import (
    NEED_DATA,
    RcptTo,
    SMTPServer,
    address_key,
    canonical_address,
    is_postmaster,
    local_part,
    quote_local_part,
)
from mailsim.scenario import load_scenario, validate_text

# --- the grammar --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "local", "canonical"),
    [
        ("steve@usa.com", "steve", "steve@usa.com"),
        ('"john smith"@usa.com', "john smith", '"john smith"@usa.com'),
        ('"ann"@A.ORG', "ann", "ann@a.org"),  # quotes only where they must be
        (r'"john\ smith"@usa.com', "john smith", '"john smith"@usa.com'),  # a quoted pair
        (r'"a\"b"@usa.com', 'a"b', r'"a\"b"@usa.com'),
        ('"a@b"@usa.com', "a@b", '"a@b"@usa.com'),  # the domain follows the last "@"
        ("postmaster", "postmaster", "postmaster"),
    ],
)
def test_a_local_part_is_its_characters_and_has_one_canonical_spelling(
    address: str, local: str, canonical: str
) -> None:
    assert local_part(address) == local
    assert canonical_address(address) == canonical
    assert quote_local_part(local) == canonical.rpartition("@")[0] or "@" not in canonical


def test_two_spellings_of_one_mailbox_have_one_key() -> None:
    assert address_key('"Ann"@A.org') == address_key("ann@a.org") == "ann@a.org"
    assert address_key('"john smith"@usa.com') != address_key("johnsmith@usa.com")
    assert is_postmaster('"Postmaster"@usa.com') and is_postmaster("postmaster")


def server_events(*commands: str) -> tuple[list[str], list[object]]:
    server = SMTPServer("mx.usa.com")
    server.data_to_send()
    server.receive_data("".join(c + "\r\n" for c in commands).encode())
    events = []
    while (event := server.next_event()) is not NEED_DATA:
        events.append(event)
    return server.data_to_send().decode().splitlines(), events


def test_the_server_takes_a_quoted_local_part_with_spaces_and_brackets() -> None:
    replies, events = server_events(
        "HELO c.example",
        'MAIL FROM:<"james q"@india.com>',
        'RCPT TO:<"john smith"@usa.com>',
        'RCPT TO:<"a>b"@usa.com> NOTIFY=NEVER',
        "RCPT TO:<john smith@usa.com>",  # unquoted, a space is a syntax error
    )
    assert [reply[:3] for reply in replies] == ["250", "250", "250", "250", "501"]
    rcpts = [event.address for event in events if isinstance(event, RcptTo)]
    assert rcpts == ['"john smith"@usa.com', '"a>b"@usa.com']


# --- the scenario language and the simulation -----------------------------------------------

WORLD = """\
name: quoted
duration: 1h
nodes:
  pc: {kind: host}
  india-mail: {kind: mailserver, domains: [india.com]}
  usa-mail: {kind: mailserver, domains: [usa.com]}
links:
  - {between: [pc, india-mail]}
  - {between: [india-mail, usa-mail], latency: 50ms}
users:
  - {address: '"james q"@india.com', password: pw, host: pc}
  - {address: '"john smith"@usa.com', password: pw, host: pc, check_mail_every: 10min}
  - {address: '"ann"@usa.com', password: pw, host: pc, check_mail_every: 10min}
messages:
  - {at: 1min, from: '"james q"@india.com', subject: hi,
     to: ['"john smith"@usa.com', ann@usa.com, '"John Smith"@USA.com', '"no one"@usa.com']}
"""


def test_the_scenario_language_accepts_quoted_local_parts_and_explains_bare_spaces() -> None:
    assert validate_text(WORLD) == []
    (line,) = validate_text(WORLD.replace("'\"no one\"@usa.com'", "no one@usa.com"))
    assert line.endswith(
        "messages[0].to[3]: a local part with spaces is written in double quotes (RFC 5321 "
        "4.1.2), like '\"no one\"@usa.com', got 'no one@usa.com'"
    )
    assert "must be an e-mail address" in validate_text(WORLD.replace('\'"ann"', '\'""'))[0]


def test_two_spellings_of_one_user_are_one_user() -> None:
    text = WORLD.replace(
        "messages:", "  - {address: ann@USA.com, password: pw, host: pc}\nmessages:"
    )
    (line,) = validate_text(text)
    assert "users[3].address: ann@USA.com is already the address of users[2]" in line
    assert load_scenario(WORLD).user("ANN@usa.com") is not None


def test_quoted_local_parts_are_delivered_to_their_mailboxes_and_fetched() -> None:
    result = load_scenario(WORLD).run()
    books = result.books
    assert books.balanced, books.problems
    outcome = {row.to: row.status for row in books.rows.values() if row.kind == "mail"}
    # One envelope recipient per mailbox: "John Smith"@USA.com is "john smith"@usa.com's.
    assert outcome == {
        '"john smith"@usa.com': "delivered",
        "ann@usa.com": "delivered",
        '"no one"@usa.com': "bounced",
    }
    agents = result.world.agents
    assert [len(agents[key].inbox) for key in ('"john smith"@usa.com', "ann@usa.com")] == [1, 1]
    # john smith logged in over POP3 with the characters of his local part, spaces and all.
    assert "C: USER john smith" in result.transcript()
    # The bounce went back to the quoted sender (a DSN, RFC 3464).
    assert '<"james q"@india.com>' in result.transcript()


# --- the live server and the mailbox files -------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "file_name"),
    [
        ("steve", "steve"),
        ("John.Smith", "John.Smith"),
        ("john smith", "=john=20smith"),
        ("../etc", "==2E=2E=2Fetc"),
        ("a/b", "=a=2Fb"),
        (".hidden", "==2Ehidden"),
        ("=x", "==3Dx"),
    ],
)
def test_a_mailbox_file_name_never_leaves_its_folder(name: str, file_name: str) -> None:
    assert mailbox_file_name(name) == file_name
    assert "/" not in file_name and file_name not in {".", ".."}


def test_an_export_of_quoted_mailboxes_stays_in_its_folder(tmp_path: Path) -> None:
    store = MailStore(["../escape", "john smith"])
    store.deliver("../escape", b"Subject: x\r\n\r\nhi\r\n")
    written = store.export(tmp_path / "out", fmt="mbox")
    assert written["../escape"] == tmp_path / "out" / "==2E=2E=2Fescape.mbox"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "==2E=2E=2Fescape.mbox",
        "=john=20smith.mbox",
    ]


def test_live_user_names_are_local_parts_and_their_maildirs_safe_names(tmp_path: Path) -> None:
    assert parse_user('"john smith":pw') == ("john smith", "pw")
    assert parse_user('"a:b":pw') == ("a:b", "pw")
    for bad in ["", " x", "x" * 65, "a\tb", "caf\u00e9", "_outgoing"]:
        with pytest.raises(ValueError, match="cannot be a mailbox"):
            check_mailbox_name(bad)
    store = MaildirStore(tmp_path / "mail", ["../etc"])
    assert store.path_of("../etc") == tmp_path / "mail" / "==2E=2E=2Fetc"
    assert not (tmp_path / "etc").exists()
    accounts = Accounts({"john smith": "pw"}, ["usa.com"])
    assert accounts.mailbox_for('"John Smith"@USA.com') == "john smith"
    assert accounts.user('"john smith"@usa.com') == "john smith"
    assert accounts.mailbox_for("johnsmith@usa.com") is None


@pytest.mark.live
def test_the_live_server_delivers_a_quoted_local_part_and_pop3_reads_it(tmp_path: Path) -> None:
    config = ServeConfig(
        domains=("usa.com",),
        users={"john smith": "pw", "ann": "pw"},
        maildir=tmp_path / "maildir",
        smtp_port=0,
        submission_port=0,
        pop3_port=0,
    )
    with ServerThread(config) as server:
        with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=10) as smtp:
            refused = smtp.sendmail(
                "james@india.com",
                ['"john smith"@usa.com', '"ann"@usa.com'],
                "Subject: hi\r\n\r\nquoted\r\n",
            )
            assert refused == {}
            with pytest.raises(smtplib.SMTPRecipientsRefused):
                smtp.sendmail("james@india.com", ['"no one"@usa.com'], "Subject: x\r\n\r\n")
        pop = poplib.POP3("127.0.0.1", server.ports["pop3"], timeout=10)
        pop.user("john smith")
        pop.pass_("pw")
        _, lines, _ = pop.retr(1)
        pop.quit()
    assert b"quoted" in lines
    maildirs = sorted(p.name for p in (tmp_path / "maildir").iterdir())
    assert "=john=20smith" in maildirs and "ann" in maildirs
