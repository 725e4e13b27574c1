"""Our SMTP client and server talking to each other through a fake wire (ConnectionPair)."""

from __future__ import annotations

import pytest
from smtp_pair import ConnectionPair

from mailsim.protocol.smtp import (
    Accept,
    ClientState,
    Closed,
    ConnectionClosed,
    ConnectionFailed,
    Envelope,
    Idle,
    MailFrom,
    MessageReceived,
    Quit,
    RcptParams,
    Reject,
    Reply,
    ReplyTexts,
    ServerLimits,
    ServerPolicy,
    ServerState,
    Session,
    SMTPClient,
    SMTPServer,
    TransactionResult,
)

LETTER = b"From: James <james@usa.example>\nTo: Steve <steve@india.example>\nSubject: Books\n\n"


def envelope(
    *rcpts: str, body: bytes = b"Do you have a Grammar Book?\nWhat about Atlas?\n"
) -> Envelope:
    return Envelope("james@usa.example", rcpts or ("steve@india.example",), LETTER + body)


class IndiaMX(ServerPolicy):
    """An MX for india.example that knows two users."""

    def check_recipient(self, session: Session, address: str, params: RcptParams) -> Reply | None:
        if address.lower() in ("steve@india.example", "ann@india.example"):
            return None
        return Reply(550, ("5.1.1 User unknown",))


@pytest.mark.parametrize("pipelining", [True, False])
def test_three_messages_over_one_connection(pipelining: bool) -> None:
    client = SMTPClient("mail.usa.example", pipelining=pipelining)
    for body in (b"one\n", b"two\n", b".three\n..\n"):
        client.send_message(envelope(body=body))
    client.quit()
    pair = ConnectionPair(client, SMTPServer("mx.india.example", policy=IndiaMX()))
    pair.pump()
    assert [r.outcomes[0].status for r in pair.results] == ["accepted"] * 3
    assert [r.data_reply.text for r in pair.results if r.data_reply] == [
        "2.0.0 Ok: queued as Q1",
        "2.0.0 Ok: queued as Q2",
        "2.0.0 Ok: queued as Q3",
    ]
    assert pair.client_events[-1] == Closed()
    assert pair.server.state is ServerState.CLOSED
    assert pair.client.state is ClientState.CLOSED
    pair.check_agreement()
    assert pair.server_events[-1] == Quit()


def test_pipelining_saves_round_trips() -> None:
    # Without pipelining: greeting, EHLO, MAIL, RCPT, DATA, dot, QUIT = 7 server writes.
    # With it: greeting, EHLO, MAIL+RCPT+DATA answered together, dot, QUIT = 5.
    def server_writes(pipelining: bool) -> int:
        client = SMTPClient("mail.usa.example", pipelining=pipelining)
        client.send_message(envelope())
        client.quit()
        pair = ConnectionPair(client, SMTPServer("mx"))
        writes = 0
        original = pair._to_client

        def counting(data: bytes) -> None:
            nonlocal writes
            writes += bool(data)
            original(data)

        pair._to_client = counting  # type: ignore[method-assign]
        pair.pump()
        return writes

    assert server_writes(pipelining=False) == 7
    assert server_writes(pipelining=True) == 5


def test_mixed_recipients_agree_on_both_sides() -> None:
    client = SMTPClient("mail.usa.example")
    client.send_message(
        envelope("steve@india.example", "nobody@india.example", "ann@india.example")
    )
    client.quit()
    pair = ConnectionPair(client, SMTPServer("mx", policy=IndiaMX()))
    pair.pump()
    (result,) = pair.results
    assert [o.status for o in result.outcomes] == ["accepted", "permanent", "accepted"]
    assert result.outcomes[1].reply == Reply(550, ("5.1.1 User unknown",))
    pair.check_agreement()


def test_all_recipients_refused_then_next_message_goes_through() -> None:
    client = SMTPClient("mail.usa.example")
    client.send_message(envelope("nobody@india.example"))
    client.send_message(envelope("steve@india.example"))
    client.quit()
    pair = ConnectionPair(client, SMTPServer("mx", policy=IndiaMX()))
    pair.pump()
    assert [r.outcomes[0].status for r in pair.results] == ["permanent", "accepted"]
    assert "C: RSET" in pair.transcript
    pair.check_agreement()


def test_idle_lets_the_application_queue_more() -> None:
    client = SMTPClient("mail.usa.example")
    pair = ConnectionPair(client, SMTPServer("mx"))
    pair.pump()
    assert pair.client_events == [Idle()]
    client.send_message(envelope())
    pair.pump()
    assert isinstance(pair.client_events[-1], Idle)
    client.quit()
    pair.pump()
    assert isinstance(pair.client_events[-1], Closed)
    assert len(pair.results) == 1
    pair.check_agreement()


def test_submission_with_auth() -> None:
    policy = ServerPolicy(auth_offered=True, auth_required=True, users={"james": "s3cret"})
    client = SMTPClient("james-laptop", auth=("james", "s3cret"))
    client.send_message(envelope())
    client.quit()
    pair = ConnectionPair(client, SMTPServer("smtp.usa.example", policy=policy))
    pair.pump()
    assert pair.results[0].outcomes[0].status == "accepted"
    assert pair.server.session.authenticated_user == "james"
    pair.check_agreement()


def test_submission_with_a_wrong_password_fails_every_message() -> None:
    policy = ServerPolicy(auth_offered=True, auth_required=True, users={"james": "s3cret"})
    client = SMTPClient("james-laptop", auth=("james", "guess"))
    client.send_message(envelope())
    client.send_message(envelope("ann@india.example"))
    pair = ConnectionPair(client, SMTPServer("smtp.usa.example", policy=policy))
    pair.pump()
    assert [r.outcomes[0].reply.code for r in pair.results] == [535, 535]
    assert pair.client_events[-1] == Closed()
    assert pair.decisions == []


def test_submission_without_credentials_gets_530() -> None:
    policy = ServerPolicy(auth_offered=True, auth_required=True)
    client = SMTPClient("james-laptop")
    client.send_message(envelope())
    client.quit()
    pair = ConnectionPair(client, SMTPServer("smtp.usa.example", policy=policy))
    pair.pump()
    outcome = pair.results[0].outcomes[0]
    assert (outcome.status, outcome.reply.code) == ("permanent", 530)


def test_server_refusing_service_hands_the_mail_back() -> None:
    client = SMTPClient("mail.usa.example")
    client.send_message(envelope())
    pair = ConnectionPair(client, SMTPServer("mx", refuse_service=True))
    pair.pump()
    failed, closed = pair.client_events
    assert isinstance(failed, ConnectionFailed)
    assert failed.reply.code == 554
    assert failed.unsent == (envelope(),)
    assert closed == Closed()
    assert pair.transcript[-2:] == ["C: QUIT", "S: 221 2.0.0 Bye"]


def test_too_many_recipients_are_temporary() -> None:
    client = SMTPClient("mail.usa.example")
    client.send_message(envelope("a@i.example", "b@i.example", "c@i.example"))
    client.quit()
    pair = ConnectionPair(client, SMTPServer("mx", limits=ServerLimits(max_recipients=2)))
    pair.pump()
    outcomes = pair.results[0].outcomes
    assert [o.status for o in outcomes] == ["accepted", "accepted", "temporary"]
    assert outcomes[2].reply.status == "4.5.3"
    pair.check_agreement()


def test_message_too_big_for_the_server_is_refused_by_the_client() -> None:
    client = SMTPClient("mail.usa.example")
    client.send_message(envelope(body=b"x" * 500))
    client.quit()
    pair = ConnectionPair(client, SMTPServer("mx", limits=ServerLimits(max_message_size=200)))
    pair.pump()
    assert pair.results[0].outcomes[0].reply.code == 552
    assert not any(line.startswith("C: MAIL") for line in pair.transcript)


def test_eight_bit_message_travels_with_body_8bitmime() -> None:
    client = SMTPClient("mail.usa.example")
    client.send_message(envelope(body="Grüße aus Indien\n".encode()))
    client.quit()
    pair = ConnectionPair(client, SMTPServer("mx"))
    pair.pump()
    mail_from = next(e for e in pair.server_events if isinstance(e, MailFrom))
    assert mail_from.params.body == "8BITMIME"
    pair.check_agreement()


def test_greylisting_gives_a_temporary_outcome() -> None:
    class Greylist(ServerPolicy):
        def before_command(self, session: Session, verb: str, arg: str) -> Reply | None:
            return Reply(451, ("4.7.1 Greylisted",)) if verb == "RCPT" else None

    client = SMTPClient("mail.usa.example")
    client.send_message(envelope())
    client.quit()
    pair = ConnectionPair(client, SMTPServer("mx", policy=Greylist()))
    pair.pump()
    assert pair.results[0].outcomes[0].status == "temporary"
    assert pair.client_events[-1] == Closed()


def test_busy_server_421_on_mail_closes_and_hands_back_the_rest() -> None:
    class Busy(ServerPolicy):
        def before_command(self, session: Session, verb: str, arg: str) -> Reply | None:
            return Reply(421, ("4.7.0 mx Too busy",)) if verb == "MAIL" else None

    client = SMTPClient("mail.usa.example")
    client.send_message(envelope())
    client.send_message(envelope("ann@india.example"))
    pair = ConnectionPair(client, SMTPServer("mx", policy=Busy()))
    pair.pump()
    result, failed, closed = pair.client_events
    assert isinstance(result, TransactionResult)
    assert result.outcomes[0].status == "temporary"
    assert isinstance(failed, ConnectionFailed)
    assert failed.unsent == (envelope("ann@india.example"),)
    assert closed == Closed()


def test_application_rejection_is_permanent() -> None:
    client = SMTPClient("mail.usa.example")
    client.send_message(envelope())
    client.quit()
    pair = ConnectionPair(
        client,
        SMTPServer("mx"),
        decide=lambda m: Reject(Reply(554, ("5.7.1 Message content rejected",))),
    )
    pair.pump()
    result = pair.results[0]
    assert result.outcomes[0].status == "permanent"
    assert result.data_reply == Reply(554, ("5.7.1 Message content rejected",))
    pair.check_agreement()


def test_connection_cut_between_dot_and_reply_risks_a_duplicate() -> None:
    # RFC 1047: the server has the message (the application accepted it), the client never
    # hears the 250: it must retry, and the message may arrive twice.
    client = SMTPClient("mail.usa.example")
    client.send_message(envelope())
    server = SMTPServer("mx")
    pair = ConnectionPair(client, server)
    pair.pump(hold_decision=True)
    message = pair.server_events[-1]
    assert isinstance(message, MessageReceived)
    server.send(Accept("Q1"))  # stored, but the 250 is lost on the wire
    pair.cut()
    result = pair.results[0]
    assert result.dot_sent_no_reply
    assert result.outcomes[0].status == "temporary"
    assert pair.client_events[-1] == Closed()


def test_connection_cut_before_the_dot_aborts_the_servers_transaction() -> None:
    client = SMTPClient("mail.usa.example", pipelining=False)
    client.send_message(envelope())
    server = SMTPServer("mx")
    pair = ConnectionPair(client, server)
    pair.pump(until=lambda: server.state is ServerState.RCPT)
    pair.cut()
    assert ConnectionClosed(transaction_aborted=True) in pair.server_events
    assert pair.results[0].outcomes[0].reply.status == "4.4.2"
    assert not pair.results[0].dot_sent_no_reply


def test_tutorial_story_with_classic_texts_and_transcript() -> None:
    client = SMTPClient("USA.com")
    client.send_message(
        Envelope(
            "James@USA.com",
            ("Steve@India.com",),
            b"Do you have a Grammar Book?\nWhat about Atlas?\n",
        )
    )
    client.quit()
    pair = ConnectionPair(client, SMTPServer("India.com", texts=ReplyTexts.CLASSIC))
    pair.pump()
    assert pair.transcript[0] == "S: 220 India.com"
    assert "S: 250 James@USA.com.... Sender OK." in pair.transcript
    assert "C: Do you have a Grammar Book?" in pair.transcript
    assert pair.transcript[-1] == "S: 221 India.com closing connection."
    pair.check_agreement()
