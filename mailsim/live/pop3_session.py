"""One live POP3 connection: a stream coroutine around a :class:`~mailsim.protocol.pop3.POP3Server`.

The machine's steps run in the thread pool, because the machine calls the Maildir (reads,
deletions, fsync) synchronously. The session does what the machine leaves to the application:
the autologout (RFC 1939 3), the TLS handshake when the machine says ``StartTLS`` (STLS, RFC
2595) or from the start (port 995, RFC 8314), the lingering close, and releasing the maildrop
lock whatever happens.

Hostile clients are held to bounds: a step stops once it has :data:`STEP_OUTPUT_LIMIT` octets
to write, and the next runs only when those have drained, so ``RETR 1`` pipelined a thousand
times costs one reply of memory, not a thousand; the autologout also limits how long a client
may leave a reply unread; a command line must end within ``line_timeout`` of its first byte; a
failed login is answered only after the throttle's delay (:mod:`mailsim.live.throttle`).
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
from mailsim.live.connection import LINGER, READ_SIZE, LineClock, peer_of
from mailsim.live.storage import MaildirMaildrop, MaildirStore
from mailsim.live.throttle import LoginThrottle
from mailsim.protocol import pop3

if TYPE_CHECKING:
    from mailsim.live.server import LiveServer

log = logging.getLogger("mailsim.live")

# A client that sends this much without finishing a command line is not speaking POP3: 16
# command lines of 255 octets (RFC 2449 4).
_POP3_JUNK_LIMIT = 16 * pop3.COMMAND_LINE_LIMIT
_TLS_HANDSHAKE_TIMEOUT = 30.0
#: A machine step stops once it has this much to write; the rest of the pipelined commands wait
#: until it has drained. One reply (RETR of the largest message) may exceed it, never two.
STEP_OUTPUT_LIMIT = 256 * 1024


class MaildirProvider(pop3.MaildropProvider):
    """The POP3 machine's view of the accounts and the Maildirs, for one client address.

    While the throttle has the address locked out every login fails unchecked (PASS: no
    password compared; APOP: no secret known).
    """

    def __init__(
        self,
        accounts: Accounts,
        store: MaildirStore,
        throttle: LoginThrottle | None = None,
        address: str = "",
    ) -> None:
        self._accounts = accounts
        self._store = store
        self._throttle = throttle
        self._address = address

    def _locked_out(self) -> bool:
        return self._throttle is not None and self._throttle.locked_for(self._address) > 0

    def authenticate(self, user: str, password: str) -> bool:
        if self._locked_out():
            return False
        return self._accounts.check_password(user, password) is not None

    def secret_for(self, user: str) -> str | None:
        if self._locked_out():
            return None
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
        self._login_failed = False
        self.line = LineClock()
        self.last_active = 0.0

    def shut_down(self) -> None:
        if not self.stop.done():
            self.stop.set_result(None)

    async def run(self) -> None:
        server = self.server
        config = server.config
        writer = self.writer
        started = time.monotonic()
        if len(server.pop3_sessions) >= config.max_connections:
            refusal: str | None = "too many connections"
        else:
            refusal = server.admit(self.peer_ip)
        if refusal is not None:
            writer.write(f"-ERR [SYS/TEMP] {refusal}, try again later\r\n".encode())
            await self._close()
            log.info("%s %s refused: %s", self.service, self.peer, refusal)
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
            server.dismiss(self.peer_ip)
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
        provider = MaildirProvider(server.accounts, server.store, server.throttle, self.peer_ip)
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
        loop = asyncio.get_running_loop()
        writer.write(machine.data_to_send())
        if not await self._flush():
            return
        while True:
            data = await self._read()
            if data is None:
                return
            machine.receive_data(data)
            produced = False
            while True:  # one step at a time, each written and drained before the next
                out, over, more = await loop.run_in_executor(None, self._step)
                if self._login_failed:
                    self._login_failed = False
                    if not await self._pause(server.throttle.delay):
                        return
                if self._start_tls:
                    self._start_tls = False
                    transport = writer.transport
                    assert isinstance(transport, asyncio.Transport)
                    transport.pause_reading()  # the ClientHello is for the TLS layer
                    writer.write(out)
                    if not await self._handshake():
                        return
                    produced = True
                    break
                if out:
                    produced = True
                    writer.write(out)
                    if not await self._flush():
                        return
                if over:
                    return
                if not more:
                    break
            self.last_active = loop.time()
            self.junk = 0 if produced else self.junk + len(data)
            if self.junk > _POP3_JUNK_LIMIT:
                self.ending = "not POP3"
                writer.write(machine.send(pop3.Shutdown("too much input without a command line")))
                return

    async def _read(self) -> bytes | None:
        """The next input (b"" at end of file), or None after an autologout, line timeout or stop.

        RFC 1939 3: the autologout does not enter UPDATE, so nothing is deleted.
        """
        machine = self.machine
        assert machine is not None
        config = self.server.config
        loop = asyncio.get_running_loop()
        if not self.last_active:
            self.last_active = loop.time()
        while True:
            now = loop.time()
            timeout = config.pop3_idle_timeout - (now - self.last_active)
            line_left = self.line.left(now, config.line_timeout)
            if line_left is not None:
                timeout = min(timeout, line_left)
            read = asyncio.ensure_future(self.reader.read(READ_SIZE))
            done, _ = await asyncio.wait(
                {read, self.stop}, timeout=max(timeout, 0.0), return_when=asyncio.FIRST_COMPLETED
            )
            if read in done:
                try:
                    data = read.result()
                except (ConnectionError, OSError):
                    data = b""
                now = loop.time()
                self.line.saw(data, now)
                self.last_active = now
                return data
            read.cancel()
            now = loop.time()
            if self.stop.done():
                text, self.ending = "server shutting down", "shutdown"
            elif self.line.overdue(now, config.line_timeout):
                text, self.ending = "command line not finished in time", "line timeout"
            elif now - self.last_active >= config.pop3_idle_timeout:
                text, self.ending = "autologout; idle for too long", "timeout"
            else:
                continue  # woke a moment early
            self.writer.write(machine.send(pop3.Shutdown(text)))
            return None

    async def _flush(self) -> bool:
        """Wait until what was written has drained; False if the session must end now.

        The autologout covers a client that stops reading too (RFC 1939 3 speaks of inactivity,
        and a reply nobody reads holds the maildrop lock): after ``pop3_idle_timeout`` with the
        reply still unread the connection is aborted, without UPDATE. A server stop gives the
        client :data:`~mailsim.live.connection.LINGER` seconds more.
        """
        config = self.server.config
        drain = asyncio.ensure_future(self.writer.drain())
        done, _ = await asyncio.wait(
            {drain, self.stop},
            timeout=config.pop3_idle_timeout,
            return_when=asyncio.FIRST_COMPLETED,
        )
        if drain not in done and self.stop.done():
            done, _ = await asyncio.wait({drain}, timeout=LINGER)
        if drain in done:
            if drain.exception() is None:
                self.last_active = asyncio.get_running_loop().time()
                return True
            self.ending = "connection lost"
        else:
            drain.cancel()
            self.ending = "shutdown" if self.stop.done() else "write timeout"
            log.info("%s %s stopped reading; connection aborted", self.service, self.peer)
        self.writer.transport.abort()
        return False

    async def _pause(self, seconds: float) -> bool:
        """Wait ``seconds`` (the failed-login delay); False if the server stops meanwhile."""
        if seconds <= 0:
            return True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.stop), timeout=seconds)
        if not self.stop.done():
            return True
        machine = self.machine
        assert machine is not None
        self.ending = "shutdown"
        self.writer.write(machine.send(pop3.Shutdown("server shutting down")))
        return False

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

    def _step(self) -> tuple[bytes, bool, bool]:
        """Run the machine on its buffered input; (bytes to write, session over, more to do).

        In a thread. The step ends early, with ``more``, once :data:`STEP_OUTPUT_LIMIT` octets
        are waiting or a login failed (its reply waits for the throttle's delay).
        """
        machine = self.machine
        assert machine is not None
        out = bytearray()
        while True:
            event = machine.next_event()
            out += machine.data_to_send()
            if event is pop3.NEED_DATA:
                return bytes(out), False, False
            if isinstance(event, pop3.ConnectionClosed):
                self.ending = event.reason
                return bytes(out), True, False
            if isinstance(event, pop3.StartTLS):
                self._start_tls = True
                return bytes(out), False, False
            if isinstance(event, pop3.LoggedIn):
                self.user = event.user
            elif isinstance(event, pop3.Retrieved):
                self.retrieved += 1
            elif isinstance(event, pop3.Updated):
                self.deleted += len(event.deleted)
            elif isinstance(event, pop3.AuthResult) and not event.ok:
                self._login_failed = True
                locked = self.server.throttle.failed(self.peer_ip)
                log.info("%s %s login failed for %r", self.service, self.peer, event.user)
                if locked:
                    log.warning(
                        "%s %s: too many failed logins; locked out for %.0f s",
                        self.service,
                        self.peer,
                        locked,
                    )
                return bytes(out), False, True
            if len(out) >= STEP_OUTPUT_LIMIT:
                return bytes(out), False, True

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
