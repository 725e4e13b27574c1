"""``mailsim send``: our sans-IO SMTP client on a real socket, showing the dialogue like swaks.

A user agent's job, done for real: build a MIME message in 7-bit form (binary attachments become
base64, RFC 2045), open a TCP connection to a server, and let mailsim's
:class:`~mailsim.protocol.smtp.SMTPClient` machine run the session (EHLO, AUTH when asked, MAIL,
RCPT, DATA, QUIT, with PIPELINING when the server offers it). Every line is printed as it crosses
the wire, server lines as ``<~ 220 ...`` and ours as `` ~> EHLO ...`` (swaks' layout), with the
message content cut short after a few lines. The result is one outcome per recipient.

A plain blocking socket is enough here: one connection, one message, and the machine decides
what to write next; nothing else needs to happen concurrently.
"""

from __future__ import annotations

import contextlib
import email.utils
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from mailsim.mail.message import attachment_from_file, compose
from mailsim.protocol.smtp import (
    NEED_DATA,
    ClientState,
    Closed,
    ConnectionFailed,
    Envelope,
    Idle,
    RecipientOutcome,
    RecipientStatus,
    RemoteProtocolError,
    Reply,
    SMTPClient,
    TransactionResult,
)

__all__ = ["Dialogue", "SendReport", "compose_message", "send_message"]

#: Content lines shown before the rest of the message is summarised in one line.
SHOWN_DATA_LINES = 6
_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def compose_message(
    *,
    sender: str,
    to: Sequence[str],
    subject: str,
    body: str,
    cc: Sequence[str] = (),
    attachments: Sequence[str | Path] = (),
) -> bytes:
    """A MIME message in 7-bit wire form (CRLF, base64 attachments), dated now.

    Uses :func:`mailsim.mail.message.compose` (``EmailMessage`` with
    ``policy.SMTP.clone(cte_type='7bit')``) with a fresh Message-ID at the sender's domain.

    Raises:
        OSError: an attachment cannot be read.
    """
    domain = sender.rpartition("@")[2] or "localhost"
    files = [attachment_from_file(path) for path in attachments]
    return compose(
        sender,
        list(to),
        subject,
        body,
        cc=list(cc),
        attachments=files,
        message_id=email.utils.make_msgid(domain=domain),
        date_t=time.time(),
        epoch=_UNIX_EPOCH,
    )


class Dialogue:
    """Prints the SMTP dialogue line by line, as swaks does.

    Args:
        echo: where each printed line goes (default: nowhere).
        shown_data_lines: how many content lines to show before summarising the rest.
    """

    def __init__(
        self,
        echo: Callable[[str], None] | None = None,
        shown_data_lines: int = SHOWN_DATA_LINES,
    ) -> None:
        self._echo = echo
        self._shown = shown_data_lines
        self._partial = b""
        #: Every printed line, for tests and callers that want the transcript.
        self.lines: list[str] = []

    def say(self, line: str) -> None:
        """Print one line (``=== Connected ...`` notes too)."""
        self.lines.append(line)
        if self._echo is not None:
            self._echo(line)

    def server(self, data: bytes) -> None:
        """Show bytes from the server; an unfinished line waits for its end."""
        data = self._partial + data
        *complete, self._partial = data.split(b"\r\n")
        for line in complete:
            self.say("<~ " + line.decode("latin-1"))

    def client(self, data: bytes, *, content: bool) -> None:
        """Show bytes we send; ``content`` marks the message itself (shown abbreviated)."""
        lines = data.split(b"\r\n")
        if lines and lines[-1] == b"":
            lines.pop()
        if content and len(lines) > self._shown + 1:
            hidden = lines[self._shown : -1]
            octets = sum(len(line) + 2 for line in hidden)
            summary = f"[... {len(hidden)} more lines, {octets} octets ...]"
            lines = [*lines[: self._shown], summary.encode(), lines[-1]]
        for line in lines:
            self.say(" ~> " + line.decode("latin-1"))


@dataclass
class SendReport:
    """What became of one message: an outcome per recipient, and the dialogue.

    Attributes:
        outcomes: one per envelope recipient, in order.
        dialogue: the printed lines.
        error: why the session failed early (cannot connect, lost connection), or None.
    """

    outcomes: list[RecipientOutcome] = field(default_factory=list)
    dialogue: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when every recipient was accepted."""
        return bool(self.outcomes) and all(o.status == "accepted" for o in self.outcomes)


def send_message(
    host: str,
    port: int,
    envelope: Envelope,
    *,
    helo: str,
    auth: tuple[str, str] | None = None,
    timeout: float = 30.0,
    echo: Callable[[str], None] | None = None,
) -> SendReport:
    """Deliver ``envelope`` to ``host:port`` with mailsim's SMTP client machine.

    Args:
        host: the server's name or address.
        port: its port.
        envelope: sender, recipients and content.
        helo: the name to give in EHLO/HELO.
        auth: (user, password) for AUTH PLAIN/LOGIN, or None.
        timeout: seconds to wait for the connection and for each reply.
        echo: called with each dialogue line (``print`` for the command line).

    Returns:
        The report; recipients never tried are "temporary" with a synthetic 451 reply.
    """
    dialogue = Dialogue(echo)
    report = SendReport(dialogue=dialogue.lines)
    client = SMTPClient(helo, auth=auth)
    client.send_message(envelope)
    dialogue.say(f"=== Trying {host}:{port}...")
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as error:
        why = error.strerror or str(error) or type(error).__name__
        report.error = f"cannot connect to {host}:{port}: {why}"
        dialogue.say(f"*** {report.error}")
        lost = Reply(451, (f"4.4.1 {report.error}",))
        report.outcomes = [RecipientOutcome(a, "temporary", lost) for a in envelope.rcpt_to]
        return report
    with sock:
        dialogue.say(f"=== Connected to {host}.")
        _converse(sock, client, dialogue, report)
    return report


def _converse(
    sock: socket.socket, client: SMTPClient, dialogue: Dialogue, report: SendReport
) -> None:
    """Pump bytes between the socket and the client machine until the session is over."""
    while True:
        try:
            event = client.next_event()
        except RemoteProtocolError as error:
            report.error = f"the server broke the protocol: {error}"
            dialogue.say(f"*** {report.error}")
            continue  # the machine now hands out the results a lost connection gives
        if event is NEED_DATA:
            out = client.data_to_send()
            if out:
                # After 354 the machine writes only the content; it then waits for the reply.
                dialogue.client(out, content=client.state is ClientState.CONTENT_SENT)
                try:
                    sock.sendall(out)
                except OSError as error:
                    report.error = f"sending failed: {error.strerror or error}"
            if client.state in (ClientState.CLOSED, ClientState.ERROR):
                return
            try:
                data = sock.recv(65536)
            except TimeoutError:
                report.error = "no reply from the server in time"
                dialogue.say(f"*** {report.error}")
                data = b""
            except OSError as error:
                report.error = f"connection lost: {error.strerror or error}"
                dialogue.say(f"*** {report.error}")
                data = b""
            if data:
                dialogue.server(data)
            client.receive_data(data)
        elif isinstance(event, TransactionResult):
            report.outcomes.extend(event.outcomes)
        elif isinstance(event, Idle):
            client.quit()
        elif isinstance(event, ConnectionFailed):
            if report.error is None:
                report.error = f"the session ended early: {event.reply}"
            status: RecipientStatus = "permanent" if event.reply.is_permanent else "temporary"
            for envelope in event.unsent:
                report.outcomes.extend(
                    RecipientOutcome(a, status, event.reply) for a in envelope.rcpt_to
                )
        elif isinstance(event, Closed):
            out = client.data_to_send()
            if out:
                dialogue.client(out, content=False)
                with contextlib.suppress(OSError):
                    sock.sendall(out)
            return
