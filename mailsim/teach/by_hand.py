"""Talking to a protocol machine by hand, without a network: the notebooks' telnet.

The SMTP and POP3 machines are sans-IO (bytes in, events out), so a notebook can type a line at
a server and read the answer, or join a client and a server with a wire of zero length and watch
the whole dialogue. The simulator does the same over simulated TCP, with delays; these functions
are the smallest honest driver, so a student sees the rules and nothing else.
"""

from __future__ import annotations

from typing import Any

from mailsim.protocol import pop3
from mailsim.protocol.smtp import NEED_DATA, PAUSED, Accept, ServerState, split_lines


def type_line(server: Any, line: str, *, queue_id: str = "Q1") -> str:
    """Send one line (CRLF added) to an SMTP or POP3 server machine; returns its answer.

    When a whole SMTP message has arrived the server pauses for the application's decision (a
    real server first stores the message); this accepts it with ``queue_id``. An answer may be
    several lines, or empty (the text lines of a message get no reply).
    """
    server.receive_data(line.encode("utf-8") + b"\r\n")
    answer = b""
    while True:
        if isinstance(server, pop3.POP3Server) and server.state is pop3.Pop3State.CLOSED:
            break
        event = server.next_event()
        if event is NEED_DATA or event is pop3.NEED_DATA:
            break
        if event is PAUSED:
            answer += server.send(Accept(queue_id=queue_id))
    return str((answer + server.data_to_send()).decode("utf-8").rstrip("\r\n"))


def feed(server: Any, data: bytes, *, queue_id: str = "Q1") -> list[Any]:
    """Hand raw ``data`` to an SMTP server machine; returns the events it produced.

    Every whole message is accepted with ``queue_id``; the server's answers are discarded.
    For feeding bytes that no one would type, such as an SMTP smuggling attempt.
    """
    server.receive_data(data)
    events = []
    while (event := server.next_event()) is not NEED_DATA:
        if event is PAUSED:
            server.send(Accept(queue_id=queue_id))
        else:
            events.append(event)
    server.data_to_send()
    return events


def greeting(server: Any) -> str:
    """The greeting a freshly made server machine sends before the client says anything."""
    return str(server.data_to_send().decode("utf-8").rstrip("\r\n"))


def converse(
    client: Any, server: Any, *, queue_id: str = "Q1", show: bool = True
) -> tuple[list[str], list[Any]]:
    """Carry bytes both ways between an SMTP client and server machine until both fall silent.

    Args:
        client: an :class:`~mailsim.protocol.smtp.SMTPClient` with its messages queued.
        server: an :class:`~mailsim.protocol.smtp.SMTPServer`.
        queue_id: the queue id the server gives each accepted message.
        show: print the dialogue as ``C:``/``S:`` lines while it happens.

    Returns:
        The dialogue as ``"C: ..."``/``"S: ..."`` lines, and the client's events (one
        ``TransactionResult`` per message, ``Idle``, ...).
    """
    transcript: list[str] = []
    results: list[Any] = []
    # Round trips: each pass carries what one side wrote to the other.
    while True:
        to_client = b""
        while (event := server.next_event()) is not NEED_DATA:
            if event is PAUSED:
                to_client += server.send(Accept(queue_id=queue_id))
        to_client += server.data_to_send()
        _note(transcript, "S", to_client, show)
        if to_client:
            client.receive_data(to_client)
        if server.state is ServerState.CLOSED:
            client.receive_data(b"")  # the server hangs up after its 221
        while (event := client.next_event()) is not NEED_DATA:
            results.append(event)
        to_server = client.data_to_send()
        _note(transcript, "C", to_server, show)
        if not to_client and not to_server:
            return transcript, results
        if to_server:
            server.receive_data(to_server)


def _note(transcript: list[str], side: str, data: bytes, show: bool) -> None:
    for line in split_lines(data):
        transcript.append(f"{side}: {line}")
        if show:
            print(f"{side}: {line}")
