"""Questions about a trace in a notebook's words: connections, lines, the reply to a command."""

from __future__ import annotations

import pytest

import mailsim
from mailsim.protocol.smtp import Envelope, ReplyTexts, SMTPClient, SMTPServer
from mailsim.teach import by_hand, lookup


@pytest.fixture(scope="module")
def result():  # type: ignore[no-untyped-def]
    return mailsim.load("james-to-steve").run()


def test_connection_finds_the_relay_and_says_when_there_is_none(result) -> None:  # type: ignore[no-untyped-def]
    conn = lookup.connection(result, client="india-mail", server="usa-mail", port=25)
    assert lookup.lines(result, conn, "S")[0].startswith("220 usa.com")
    with pytest.raises(lookup.NotInTrace, match="only 1 established connection"):
        lookup.connection(result, client="india-mail", server="usa-mail", nth=1)
    with pytest.raises(lookup.NotInTrace, match=r"no mail\.bounce record"):
        lookup.first(result, "mail.bounce")


def test_reply_to_pairs_pipelined_commands_with_their_replies_in_order(result) -> None:  # type: ignore[no-untyped-def]
    conn = lookup.connection(result, client="india-mail", server="usa-mail")
    assert lookup.reply_to(result, conn, "EHLO").startswith("250 ")
    assert lookup.reply_to(result, conn, "MAIL").startswith("250 2.1.0")
    assert lookup.reply_to(result, conn, "RCPT").startswith("250 2.1.5")
    assert lookup.reply_to(result, conn, "DATA").startswith("354")
    assert "queued as" in lookup.reply_to(result, conn, ".")
    assert lookup.reply_to(result, conn, "QUIT").startswith("221")
    with pytest.raises(lookup.NotInTrace):
        lookup.reply_to(result, conn, "VRFY")
    pairs = list(lookup.exchanges(result, conn))
    assert pairs[0][0] is None and pairs[0][1][0]["line"].startswith("220")


def test_by_hand_replays_the_tutorial_against_the_classic_server() -> None:
    server = SMTPServer(hostname="India.com", texts=ReplyTexts.CLASSIC)
    assert by_hand.greeting(server) == "220 India.com"
    assert by_hand.type_line(server, "HELO USA.com") == "250 Hello USA.com, Nice to meet you."
    by_hand.type_line(server, "MAIL FROM:<James@USA.com>")
    by_hand.type_line(server, "RCPT TO:<Steve@India.com>")
    assert by_hand.type_line(server, "DATA").startswith("354")
    assert by_hand.type_line(server, "What about Atlas?") == ""
    assert by_hand.type_line(server, ".") == "250 Message accepted for delivery."


def test_converse_carries_a_whole_dialogue_between_two_machines() -> None:
    client = SMTPClient("india.com")
    client.send_message(
        Envelope("james@india.com", ("steve@usa.com",), b"Subject: x\r\n\r\nhi\r\n")
    )
    client.quit()
    said, events = by_hand.converse(client, SMTPServer(hostname="usa.com"), show=False)
    assert said[0].startswith("S: 220") and said[-1].startswith("S: 221")
    assert events[0].outcomes[0].status == "accepted"
