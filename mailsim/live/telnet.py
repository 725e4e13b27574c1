"""``mailsim telnet HOST PORT``: type at a mail server line by line, as the tutorial does.

The tutorial's exercise is ``telnet servername 25``; a fresh machine often has neither telnet nor
nc, and ``nc`` without ``-C`` ends lines with a bare LF, which SMTP refuses. This client needs
nothing installed: every line typed goes out with CRLF (RFC 5321 2.3.8), and both directions
are shown the way ``transcript.txt`` writes them, ``C:`` for what was sent and ``S:`` for what
the server said. Standard library only (socket and a thread), so it starts at once.

Typed at a terminal, each line is sent when Enter is pressed and the echoed line is rewritten
as ``C: ...``. Fed from a pipe or a file, each line waits until the server has answered the
previous one (or :data:`PIPED_PAUSE` passed without an answer, as for message text after 354),
so a script reads like a dialogue rather than a burst the server has to untangle.
"""

from __future__ import annotations

import socket
import sys
import threading
from typing import TextIO

import click

#: Longest wait for an answer before the next piped line is sent, seconds. Lines of message text
#: after 354 get no answer; 0.5 s keeps a scripted session brisk yet lets a server 200 ms away
#: answer each command first.
PIPED_PAUSE = 0.5
#: How long the connection may take to open, seconds.
CONNECT_TIMEOUT = 10.0
#: After the input ends, how long to wait for the server's last words before closing, seconds.
CLOSE_WAIT = 5.0

_REWRITE_TYPED_LINE = "\x1b[1A\r\x1b[2K"  # cursor up one line, to its start, erase it


class TelnetSession:
    """One connection: a thread prints what the server sends, the caller sends typed lines.

    Args:
        sock: a connected socket.
        out: where both directions are shown.
        rewrite_echo: the terminal has echoed each typed line; replace it with its ``C:`` form.
    """

    def __init__(self, sock: socket.socket, out: TextIO, *, rewrite_echo: bool = False) -> None:
        self.sock = sock
        self.out = out
        self.rewrite_echo = rewrite_echo
        #: Set whenever a server line arrives; cleared before each piped line is sent.
        self.answered = threading.Event()
        #: Set when the server has closed its side.
        self.closed = threading.Event()
        self._print_lock = threading.Lock()
        self._reader = threading.Thread(target=self._receive, daemon=True)

    def start(self) -> None:
        """Start showing what the server sends."""
        self._reader.start()

    def show(self, text: str) -> None:
        """Print one line of the dialogue."""
        with self._print_lock:
            self.out.write(text + "\n")
            self.out.flush()

    def _receive(self) -> None:
        buffer = b""
        try:
            while data := self.sock.recv(4096):
                buffer += data
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    self.show("S: " + line.removesuffix(b"\r").decode("utf-8", "replace"))
                if lines:
                    self.answered.set()
        except OSError:
            pass  # reset by the server, or closed by us: either way the dialogue is over
        if buffer:
            self.show("S: " + buffer.decode("utf-8", "replace"))
        self.closed.set()
        self.answered.set()

    def send(self, line: str) -> None:
        """Send ``line`` with CRLF and show it as ``C: line``."""
        if self.rewrite_echo:
            with self._print_lock:
                self.out.write(_REWRITE_TYPED_LINE)
        self.show("C: " + line)
        self.sock.sendall(line.encode("utf-8") + b"\r\n")

    def wait_for_answer(self, timeout: float) -> None:
        """Wait until a server line arrives (or the server closes), at most ``timeout`` seconds."""
        self.answered.wait(timeout)


def run_session(
    host: str,
    port: int,
    lines: TextIO,
    out: TextIO,
    *,
    interactive: bool,
    pause: float = PIPED_PAUSE,
) -> None:
    """Connect to ``host:port``, send each line of ``lines`` with CRLF, show both directions.

    Returns when the server closes the connection, or when ``lines`` ends and the server has had
    :data:`CLOSE_WAIT` seconds to answer the last of them.

    Raises:
        OSError: the connection could not be opened.
    """
    sock = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT)
    sock.settimeout(None)
    session = TelnetSession(sock, out, rewrite_echo=interactive)
    input_done = threading.Event()

    def type_lines() -> None:
        try:
            if not interactive:
                session.wait_for_answer(pause)  # the greeting comes first
            for raw in lines:
                if session.closed.is_set():
                    break
                session.answered.clear()
                session.send(raw.rstrip("\r\n"))
                if not interactive:
                    session.wait_for_answer(pause)
        except OSError:
            pass  # the server went away while we were sending; the reader says so
        finally:
            input_done.set()

    session.start()
    # Lines are read in a thread of their own, so that when the server closes (after QUIT) the
    # session ends at once instead of waiting for another line to be typed.
    threading.Thread(target=type_lines, daemon=True).start()
    try:
        while not (session.closed.is_set() or input_done.is_set()):
            session.closed.wait(0.1)
        session.closed.wait(CLOSE_WAIT)
    finally:
        sock.close()


@click.command(name="telnet")
@click.argument("host")
@click.argument("port", type=click.IntRange(1, 65535))
def telnet(host: str, port: int) -> None:
    """Type at the server HOST:PORT line by line (CRLF line ends), as with telnet or nc -C.

    \b
    What you type is sent with CRLF and shown as C: ...; what the server says is shown as S: ...
    Example, with mailsim serve running in another terminal:
      mailsim telnet 127.0.0.1 2525
    End with QUIT (the server closes the connection) or Ctrl+D.
    """
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    try:
        run_session(host, port, sys.stdin, sys.stdout, interactive=interactive)
    except OSError as error:
        reason = error.strerror or str(error) or type(error).__name__
        click.echo(f"mailsim telnet: cannot connect to {host}:{port}: {reason}", err=True)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    click.echo(f"connection to {host}:{port} closed", err=True)
