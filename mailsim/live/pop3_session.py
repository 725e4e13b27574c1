"""One live POP3 connection: a stream coroutine around a :class:`~mailsim.protocol.pop3.POP3Server`.

The machine's steps run in the thread pool, because the machine calls the Maildir (reads,
deletions, fsync) synchronously. The session does what the machine leaves to the application:
the autologout (RFC 1939 3), the TLS handshake when the machine says ``StartTLS`` (STLS, RFC
2595) or from the start (port 995, RFC 8314), the lingering close, and releasing the maildrop
lock whatever happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import time
from typing import TYPE_CHECKING

from mailsim.live.accounts import Accounts
from mailsim.live.connection import LINGER, READ_SIZE, peer_of
from mailsim.live.storage import MaildirMaildrop, MaildirStore
from mailsim.protocol import pop3

if TYPE_CHECKING:
    from mailsim.live.server import LiveServer

log = logging.getLogger("mailsim.live")

# A client that sends this much without finishing a command line is not speaking POP3: 16
# command lines of 255 octets (RFC 2449 4).
_POP3_JUNK_LIMIT = 16 * pop3.COMMAND_LINE_LIMIT
_TLS_HANDSHAKE_TIMEOUT = 30.0


class MaildirProvider(pop3.MaildropProvider):
    """The POP3 machine's view of the accounts and the Maildirs."""

    def __init__(self, accounts: Accounts, store: MaildirStore) -> None:
        self._accounts = accounts
        self._store = store

    def authenticate(self, user: str, password: str) -> bool:
        return self._accounts.check_password(user, password) is not None

    def secret_for(self, user: str) -> str | None:
        name = self._accounts.user(user)
        return self._accounts.users.get(name) if name is not None else None

    def open_maildrop(self, user: str) -> pop3.Maildrop | str:
        name = self._accounts.user(user)
        if name is None:
            return "[SYS/PERM] no maildrop for this user"
        opened: MaildirMaildrop | str = self._store.open_maildrop(name)
        return opened


class POP3Session:
    """One POP3 connection (see the module docstring).

    Args:
        server: the live server.
        reader, writer: the connection's streams.
        service: the listener's name (``pop3`` or ``pop3s``).
        implicit_tls: the listener wrapped the connection in TLS already (port 995).
    """

    def __init__(
        self,
        server: LiveServer,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        service: str = "pop3",
        implicit_tls: bool = False,
    ) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.service = service
        self.implicit_tls = implicit_tls
        self.peer_ip, self.peer = peer_of(writer.transport)
        self.stop = asyncio.get_running_loop().create_future()
        self.machine: pop3.POP3Server | None = None
        self.junk = 0
        self.retrieved = 0
        self.deleted = 0
        self.user: str | None = None
        self.ending = "peer closed"
        self._start_tls = False

    def shut_down(self) -> None:
        if not self.stop.done():
            self.stop.set_result(None)

    async def run(self) -> None:
        server = self.server
        config = server.config
        writer = self.writer
        started = time.monotonic()
        if len(server.pop3_sessions) >= config.max_connections or server.closing:
            writer.write(b"-ERR [SYS/TEMP] too many connections, try again later\r\n")
            await self._close()
            log.info("%s %s refused: too many connections", self.service, self.peer)
            return
        server.pop3_sessions.add(self)
        try:
            await self._converse()
        except Exception:  # a bug of ours must cost one connection, never the server
            log.exception("%s %s internal error; connection closed", self.service, self.peer)
            self.ending = "internal error"
        finally:
            machine = self.machine
            if machine is not None and machine.state not in (
                pop3.Pop3State.CLOSED,
                pop3.Pop3State.ERROR,
            ):
                # Make sure the maildrop lock is released (no UPDATE: nothing is deleted).
                with contextlib.suppress(Exception):
                    machine.send(pop3.Shutdown("closing"))
            server.pop3_sessions.discard(self)
            await self._close()
            log.info(
                "%s %s closed after %.1f s: user %s, %d retrieved, %d deleted (%s)",
                self.service,
                self.peer,
                time.monotonic() - started,
                self.user or "-",
                self.retrieved,
                self.deleted,
                self.ending,
            )

    async def _converse(self) -> None:
        server = self.server
        assert server.store is not None
        config = server.config
        provider = MaildirProvider(server.accounts, server.store)
        banner = f"{config.server_name} POP3 server ready (mailsim)"
        # RFC 1939 7: the APOP challenge is unique per greeting: process id, clock, host name.
        timestamp = f"<{os.getpid()}.{time.time_ns()}@{config.server_name}>"
        machine = self.machine = pop3.POP3Server(
            provider,
            banner=banner,
            apop_timestamp=timestamp,
            tls_offered=config.tls,
            login_needs_tls=config.tls,
            tls=self.implicit_tls,
        )
        writer = self.writer
        writer.write(machine.data_to_send())
        timeout = config.pop3_idle_timeout
        loop = asyncio.get_running_loop()
        while True:
            read = asyncio.ensure_future(self.reader.read(READ_SIZE))
            done, _ = await asyncio.wait(
                {read, self.stop}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if read not in done:
                read.cancel()
                # RFC 1939 3: autologout; the session does not enter UPDATE (nothing deleted).
                stopping = self.stop in done
                text = "server shutting down" if stopping else "autologout; idle for too long"
                self.ending = "shutdown" if stopping else "timeout"
                writer.write(machine.send(pop3.Shutdown(text)))
                return
            try:
                data = read.result()
            except (ConnectionError, OSError):
                data = b""
            out, over = await loop.run_in_executor(None, self._step, data)
            if self._start_tls:
                self._start_tls = False
                transport = writer.transport
                assert isinstance(transport, asyncio.Transport)
                transport.pause_reading()  # the ClientHello is for the TLS layer
                writer.write(out)
                if not await self._handshake():
                    return
                continue
            if out:
                writer.write(out)
                with contextlib.suppress(ConnectionError, OSError):
                    await writer.drain()
            if over:
                return

    async def _handshake(self) -> bool:
        """STLS: wrap the stream in TLS; False if the handshake failed (the session ends)."""
        machine = self.machine
        context = self.server.tls_context
        assert machine is not None and context is not None
        # RFC 2595 4 (as RFC 3207 5): bytes the client sent in the clear after STLS were read
        # into the stream's buffer already; they must not count as said under TLS.
        buffered = getattr(self.reader, "_buffer", None)
        if isinstance(buffered, bytearray):
            buffered.clear()
        try:
            await self.writer.start_tls(context, ssl_handshake_timeout=_TLS_HANDSHAKE_TIMEOUT)
        except (TimeoutError, OSError, ssl.SSLError, ConnectionError) as error:
            log.info("%s %s TLS handshake failed: %s", self.service, self.peer, error)
            self.ending = "TLS handshake failed"
            return False
        machine.send(pop3.TLSStarted())
        return True

    def _step(self, data: bytes) -> tuple[bytes, bool]:
        """Feed ``data`` to the machine and run it; (bytes to write, session over). In a thread."""
        machine = self.machine
        assert machine is not None
        machine.receive_data(data)
        while True:
            event = machine.next_event()
            if event is pop3.NEED_DATA:
                break
            if isinstance(event, pop3.ConnectionClosed):
                self.ending = event.reason
                return machine.data_to_send(), True
            if isinstance(event, pop3.StartTLS):
                self._start_tls = True
                return machine.data_to_send(), False
            if isinstance(event, pop3.LoggedIn):
                self.user = event.user
            elif isinstance(event, pop3.Retrieved):
                self.retrieved += 1
            elif isinstance(event, pop3.Updated):
                self.deleted += len(event.deleted)
            elif isinstance(event, pop3.AuthResult) and not event.ok:
                log.info("%s %s login failed for %r", self.service, self.peer, event.user)
        out = machine.data_to_send()
        self.junk = 0 if out else self.junk + len(data)
        if self.junk > _POP3_JUNK_LIMIT:
            self.ending = "not POP3"
            return out + machine.send(pop3.Shutdown("too much input without a command line")), True
        return out, False

    async def _close(self) -> None:
        """Half-close, drain what the client still sends (the lingering close), close."""
        writer = self.writer
        with contextlib.suppress(Exception):
            if writer.can_write_eof() and not writer.is_closing():
                writer.write_eof()
                await asyncio.wait_for(self._drain_input(), timeout=LINGER)
        with contextlib.suppress(Exception):
            writer.close()
            await asyncio.wait_for(writer.wait_closed(), timeout=1.0)

    async def _drain_input(self) -> None:
        while not self.stop.done() and await self.reader.read(READ_SIZE):
            pass
