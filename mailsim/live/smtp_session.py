"""One live SMTP connection: socket bytes in and out of an :class:`SMTPServer` machine.

The session is an :class:`asyncio.Protocol` (no stream objects between the socket and the
machine, the fastest path asyncio offers). It does only what the machine leaves to the
application: who may send to whom (:class:`MailPolicy`), storing before the 250, the TLS
handshake when the machine says :class:`StartTLS` (``loop.start_tls``), scripted replies and
slow replies from a :class:`~mailsim.live.faults.FaultBook`, the idle timeout, the lingering
close, and the per-session record for ``--report`` and the grader.

Hostile clients are held to bounds. Asyncio's flow control: once the transport holds more than
its high-water mark of unsent replies (a client that pipelines and never reads) the session
stops reading until they drain, and a session closed while its client does not read is aborted.
A command line must end within ``line_timeout`` of its first byte; connections per client
address are capped (``max_per_address``); a failed AUTH is answered after the throttle's delay,
with nothing read meanwhile, and a locked-out address gets 454 4.7.0 without its password being
looked at (:mod:`mailsim.live.throttle`).

A slow reply (a fault's ``delay``) is written line by line from a queue while the machine goes
on reading, so the order of replies never changes; under ``strict`` a client that sends while a
slow reply is still being written has not read it whole, and is refused like any other improper
pipelining.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from mailsim.live.accounts import Accounts
from mailsim.live.connection import LINGER, SMTP_JUNK_LIMIT, LineClock, peer_of
from mailsim.live.session_report import SessionRecorder
from mailsim.mail.message import is_looping
from mailsim.protocol.smtp import (
    NEED_DATA,
    PAUSED,
    Accept,
    AuthResult,
    ImproperPipelining,
    MessageReceived,
    MessageRefused,
    Quit,
    RcptParams,
    Reject,
    Reply,
    ReplyTexts,
    ServerPolicy,
    ServerState,
    Session,
    Shutdown,
    SMTPServer,
    StartTLS,
    TLSStarted,
    policy_reply,
)

if TYPE_CHECKING:
    from mailsim.live.server import LiveServer

log = logging.getLogger("mailsim.live")

# While a message is being stored, a pipelining client may send on; past this much input the
# socket is no longer read until the verdict (the machine holds everything meanwhile).
_HOLD_LIMIT = 256 * 1024
# RFC 3207 gives no number; a client that has not finished its handshake by then is not coming.
_TLS_HANDSHAKE_TIMEOUT = 30.0

_SMTP_OVER = (ServerState.CLOSED, ServerState.ERROR)
_SMTP_BUSY = (ServerState.DATA, ServerState.AWAITING_DECISION)


def reply_of(texts: ReplyTexts, code: int, status: str, text: str) -> Reply:
    """A reply with the RFC 3463 code when the wording uses them (MODERN), without (CLASSIC)."""
    return Reply(code, (f"{status} {text}" if texts.enhanced else text,))


class MailPolicy:
    """Who may send what to whom, for the MX, submission and implicit-TLS listeners.

    Local users at our domains are accepted (550 5.1.1 for unknown ones); other domains only from
    an authenticated client (550 5.7.1 otherwise: RFC 5321 7.1, no open relay). Built once per
    listener; :meth:`for_session` gives each connection its own view, which also applies the
    server's scripted faults.

    The machine's own ``always_accept_postmaster`` is switched off because it would take
    ``postmaster@any.other.domain`` too (an open relay to every postmaster); postmaster at our
    domains is accepted here instead (RFC 5321 4.5.1).

    Args:
        accounts: the users and domains.
        texts: the reply wording.
        submission: AUTH is required before MAIL (RFC 6409).
        tls: STARTTLS is offered (when not implicit) and AUTH only under TLS.
        pipelining: PIPELINING is advertised.
    """

    def __init__(
        self,
        accounts: Accounts,
        texts: ReplyTexts,
        *,
        submission: bool,
        tls: bool = False,
        pipelining: bool = True,
    ) -> None:
        #: The users and domains.
        self.accounts = accounts
        #: The reply wording.
        self.texts = texts
        #: AUTH before MAIL.
        self.submission = submission
        #: TLS is on for this server.
        self.tls = tls
        #: PIPELINING is advertised.
        self.pipelining = pipelining

    def for_session(self, session: SMTPSession) -> SessionPolicy:
        """The policy object one connection's machine asks."""
        return SessionPolicy(self, session)


class SessionPolicy(ServerPolicy):
    """One connection's answers: the listener's :class:`MailPolicy` plus the scripted faults."""

    def __init__(self, listener: MailPolicy, session: SMTPSession) -> None:
        super().__init__(
            # The MX port offers no AUTH, as the simulated one: users submit on 587 (RFC 6409).
            auth_offered=listener.submission,
            auth_required=listener.submission,
            always_accept_postmaster=False,
            tls_offered=listener.tls,
            auth_needs_tls=listener.tls,
            pipelining_offered=listener.pipelining,
        )
        self._listener = listener
        self._session = session
        self._sender = ""

    def authenticate(self, user: str, password: str) -> bool:
        """Check the password of a local user (name, or name@our.domain); brake on failures."""
        if self._listener.accounts.check_password(user, password) is not None:
            return True
        owner = self._session
        throttle = owner.server.throttle
        locked = throttle.failed(owner.peer_ip)
        if locked:
            log.warning(
                "%s %s: too many failed logins; locked out for %.0f s",
                owner.service,
                owner.peer,
                locked,
            )
        if throttle.delay > 0:
            owner.delay_next_reply(throttle.delay)  # the 535 comes late; nothing is read meanwhile
            owner.braking = True
        return False

    def before_command(self, session: Session, verb: str, arg: str) -> Reply | None:
        """A scripted fault's reply for this command, if one hits it (and its delay)."""
        if verb == "AUTH":
            return self._lockout_reply()
        if verb == "MAIL":
            self._sender = arg
        elif verb in ("EHLO", "HELO", "RSET"):
            self._sender = ""
        owner = self._session
        faults = owner.server.faults
        if not faults or verb not in ("HELO", "EHLO", "MAIL", "RCPT", "DATA"):
            return None
        fault = faults.match(owner.service, verb, arg, peer=owner.peer_ip, sender=self._sender)
        if fault is None:
            return None
        if fault.delay > 0:
            owner.delay_next_reply(fault.delay)
        return fault.reply()

    def _lockout_reply(self) -> Reply | None:
        """454 4.7.0 (RFC 4954 6) while the client's address is locked out, else None."""
        owner = self._session
        wait = owner.server.throttle.locked_for(owner.peer_ip)
        if wait <= 0:
            return None
        text = f"Too many failed logins from your address; try again in {wait:.0f} s"
        return reply_of(self._listener.texts, 454, "4.7.0", text)

    def check_recipient(self, session: Session, address: str, params: RcptParams) -> Reply | None:
        """Accept local users and postmaster; others only after AUTH."""
        accounts = self._listener.accounts
        if accounts.is_local(address):
            if accounts.mailbox_for(address) is not None:
                return None
            return policy_reply(self._listener.texts, "unknown_user", address=address)
        if session.authenticated_user is not None:
            return None  # stored in _outgoing
        return policy_reply(self._listener.texts, "relay_denied", address=address)


class SMTPSession(asyncio.Protocol):
    """One SMTP connection (see the module docstring).

    Args:
        server: the live server it belongs to.
        service: the listener's name (``smtp``, ``submission``, ``smtps``).
        policy: the listener's policy.
        implicit_tls: the listener wraps connections in TLS from the start (port 465).
    """

    def __init__(
        self, server: LiveServer, service: str, policy: MailPolicy, implicit_tls: bool = False
    ) -> None:
        self.server = server
        self.service = service
        self.policy = policy
        self.implicit_tls = implicit_tls
        self.transport: asyncio.Transport | None = None
        self.machine: SMTPServer | None = None
        self.loop = asyncio.get_running_loop()
        self.peer_ip = ""
        self.peer = ""
        self.opened = 0.0
        self.last_activity = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.storing = False  # a message is being stored; the machine is PAUSED
        self.held = 0  # octets received while storing
        self.shutdown_requested = False
        self.finishing = False  # last reply written; half-closed, draining the client's input
        self.peer_eof = False  # the client closed its sending side
        self.junk = 0  # command-mode octets since the machine last had something to say
        self.messages = 0
        self.refused = 0
        self.ending = "peer closed"
        self.recorder: SessionRecorder | None = None
        self.admitted = False  # counted in the server's per-address connections
        self.line = LineClock()
        self.braking = False  # a failed AUTH's reply is being delayed; reading waits for it
        self._paused: set[str] = set()  # why reading is paused: "hold", "write", "auth"
        self._write_paused = False  # the transport's buffer is over its high-water mark
        # Slow replies: (seconds to wait before, bytes) written in order by _drain_slow().
        self._slow: deque[tuple[float, bytes]] = deque()
        self._slow_timer: asyncio.TimerHandle | None = None
        self._next_delay = 0.0
        self._slow_verb = ""
        self._after_output: list[Callable[[], None]] = []
        # Decrypted input that arrives before start_tls() returns: said under TLS, kept for later.
        self._under_tls: bytearray | None = None

    # -- asyncio callbacks ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.peer_ip, self.peer = peer_of(transport)
        server = self.server
        config = server.config
        sessions = server.smtp_sessions[self.service]
        self.opened = self.last_activity = self.loop.time()
        why = "too many connections" if len(sessions) >= config.max_connections else None
        if why is None:
            why = server.admit(self.peer_ip)
            self.admitted = why is None
        if why is not None:
            text = f"{config.server_name} Error: {why}, try again later"
            transport.write(reply_of(config.replies, 421, "4.7.0", text).to_bytes())
            transport.close()
            log.info("%s %s refused: %s", self.service, self.peer, why)
            return
        sessions.add(self)
        if server.records is not None:
            self.recorder = SessionRecorder(self.service, self.peer)
            self.recorder.facts.update(tls=self.implicit_tls, strict=config.strict)
        greeting = None
        fault = (
            server.faults.match(self.service, "CONNECT", peer=self.peer_ip)
            if server.faults
            else None
        )
        if fault is not None:
            greeting = fault.reply()
            self._next_delay = fault.delay
            self._slow_verb = "CONNECT"
        self.machine = SMTPServer(
            config.server_name,
            peer=self.peer_ip,
            policy=self.policy.for_session(self),
            limits=server.limits,
            texts=config.replies,
            greeting=greeting,
            tls=self.implicit_tls,
            strict=config.strict,
        )
        self._emit(self.machine.data_to_send())
        if self.machine.state in _SMTP_OVER:  # a 421 greeting: hang up
            self.ending = "421 greeting"
            self._finish()
            return
        self.timer = self.loop.call_later(config.idle_timeout, self._check_idle)

    def pause_writing(self) -> None:
        # The client does not read its replies: read no more commands until they drain.
        self._write_paused = True
        self._pause_reading("write")

    def resume_writing(self) -> None:
        self._write_paused = False
        self._resume_reading("write")

    def _pause_reading(self, why: str) -> None:
        if not self._paused and self.transport is not None and not self.finishing:
            self.transport.pause_reading()
        self._paused.add(why)

    def _resume_reading(self, why: str) -> None:
        if why not in self._paused:
            return
        self._paused.discard(why)
        if not self._paused and self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        if self._under_tls is not None:
            # The handshake just ended; TLSStarted comes next. Recorded then, after the "TLS
            # started" mark, since it was said under TLS (a loaded machine makes this common).
            self._under_tls += data
            return
        if self.recorder is not None:
            self.recorder.received(data)
        machine = self.machine
        if machine is None or self.finishing:
            return
        self.last_activity = self.loop.time()
        if self.line.saw(data, self.last_activity):
            self._check_by(self.last_activity + self.server.config.line_timeout)
        if self._slow and self.server.config.strict and machine.state not in _SMTP_OVER:
            # The client did not wait for the whole of a slow reply (RFC 5321 4.2.1, 4.3).
            self._improper(ImproperPipelining(self._slow_verb, _first_line(data)))
            return
        machine.receive_data(data)
        if self.storing:
            # The machine holds pipelined input until the verdict; bound what it may hold.
            self.held += len(data)
            if self.held > _HOLD_LIMIT:
                self._pause_reading("hold")
            return
        if machine.state not in _SMTP_BUSY:
            self.junk += len(data)
        if machine.state is not ServerState.TLS_STARTING:
            self._pump()

    def eof_received(self) -> bool:
        if self.finishing:
            return False  # the client has read our last reply and closed: close too
        self.peer_eof = True
        if self.machine is not None:
            self.machine.receive_data(b"")
            if not self.storing and self.machine.state is not ServerState.TLS_STARTING:
                self._pump()
        return True  # keep our side open until the machine's last reply is written

    def connection_lost(self, exc: Exception | None) -> None:
        for handle in (self.timer, self._slow_timer):
            if handle is not None:
                handle.cancel()
        self.timer = self._slow_timer = None
        if self.admitted:
            self.admitted = False
            self.server.dismiss(self.peer_ip)
        if self.machine is None:
            return
        self.server.smtp_sessions[self.service].discard(self)
        if exc is not None and self.ending == "peer closed":
            self.ending = "connection lost"
        log.info(
            "%s %s closed after %.1f s: %d stored, %d refused (%s)",
            self.service,
            self.peer,
            self.loop.time() - self.opened,
            self.messages,
            self.refused,
            self.ending,
        )
        if self.recorder is not None:
            self.recorder.facts.update(
                messages=self.messages, refused=self.refused, ending=self.ending
            )
            self.server.session_finished(self.recorder.record())

    # -- output: now, or slowly -------------------------------------------------------------------

    def delay_next_reply(self, seconds: float) -> None:
        """A fault: the reply to the command being handled comes ``seconds`` late, line by line.

        Called from the policy hook while the machine handles the command: what the machine
        said before (earlier pipelined replies) goes out first, unslowed.
        """
        machine = self.machine
        if machine is not None:
            self._emit(machine.data_to_send())
        self._next_delay = seconds

    def _emit(self, data: bytes) -> None:
        """Write ``data`` now, or behind the slow reply being written."""
        if not data:
            return
        if self._next_delay > 0:
            delay, self._next_delay = self._next_delay, 0.0
            first, rest = _split_first_reply(data)
            for line in first:
                self._slow.append((delay, line))
            if rest:
                self._slow.append((0.0, rest))
            self._schedule_slow()
            return
        if self._slow:
            self._slow.append((0.0, data))
            return
        self._write(data)

    def _write(self, data: bytes) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        transport.write(data)
        if self.recorder is not None:
            self.recorder.sent(data)

    def _schedule_slow(self) -> None:
        if self._slow_timer is None and self._slow:
            self._slow_timer = self.loop.call_later(self._slow[0][0], self._drain_slow)

    def _drain_slow(self) -> None:
        self._slow_timer = None
        if self._slow:
            self._write(self._slow.popleft()[1])
        while self._slow and self._slow[0][0] <= 0:
            self._write(self._slow.popleft()[1])
        if self._slow:
            self._schedule_slow()
            return
        self._slow_verb = ""
        waiting, self._after_output = self._after_output, []
        for callback in waiting:
            callback()

    def _when_written(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once every reply so far is written (at once when none is slow)."""
        if self._slow:
            self._after_output.append(callback)
        else:
            callback()

    # -- the machine ------------------------------------------------------------------------------

    def _pump(self) -> None:
        """Run the machine until it needs data or waits for a decision; write what it says."""
        machine = self.machine
        transport = self.transport
        assert machine is not None and transport is not None
        try:
            while True:
                event = machine.next_event()
                if event is NEED_DATA:
                    out = machine.data_to_send()
                    if out:
                        self._emit(out)
                        self.junk = 0
                    if machine.state in _SMTP_OVER:
                        self._when_written(self._finish)
                    elif self.junk > SMTP_JUNK_LIMIT and machine.state not in _SMTP_BUSY:
                        self._hang_up("not SMTP")
                    return
                if event is PAUSED:
                    self._emit(machine.data_to_send())
                    self.junk = 0
                    return
                if isinstance(event, MessageReceived):
                    if not self._decide(event):
                        return  # storing in a thread; _stored() carries on
                elif isinstance(event, StartTLS):
                    self._emit(machine.data_to_send())  # the 220 goes out in the clear
                    transport.pause_reading()  # the ClientHello must reach the TLS layer
                    self._when_written(self._start_tls)
                    return
                elif isinstance(event, ImproperPipelining):
                    self._note_improper(event)
                elif isinstance(event, MessageRefused):
                    self.refused += 1
                elif isinstance(event, Quit):
                    self.ending = "quit"
                elif isinstance(event, AuthResult) and not event.ok:
                    log.info("%s %s AUTH failed for %r", self.service, self.peer, event.user)
                    if self.braking:
                        # One guess per delay: the next command waits until the 535 is out.
                        self.braking = False
                        self._emit(machine.data_to_send())
                        self._pause_reading("auth")
                        self._when_written(self._after_auth_delay)
                        return
        except Exception:  # a bug of ours must cost one connection, never the server
            log.exception("%s %s internal error; connection closed", self.service, self.peer)
            self.ending = "internal error"
            transport.abort()

    def _after_auth_delay(self) -> None:
        self._resume_reading("auth")
        if not self.finishing and self.machine is not None and not self.storing:
            self._pump()

    def _note_improper(self, event: ImproperPipelining) -> None:
        """Log and mark the session as Postfix does ("improper command pipelining after X")."""
        self.ending = "improper pipelining"
        log.info(
            "%s %s improper command pipelining after %s: %r",
            self.service,
            self.peer,
            event.after,
            event.unexpected,
        )
        if self.recorder is not None:
            self.recorder.facts["improper_pipelining"] = {
                "after": event.after,
                "unexpected": event.unexpected,
            }

    def _improper(self, event: ImproperPipelining) -> None:
        """Input arrived while a slow reply was still being written: 554 5.5.0 and close."""
        machine = self.machine
        assert machine is not None
        self._note_improper(event)
        while self._slow:
            self._write(self._slow.popleft()[1])
        reply = machine.error_reply("improper_pipelining")
        self._write(reply.to_bytes())
        with contextlib.suppress(Exception):  # the machine is told the session is over
            machine.send(Shutdown(machine.error_reply("shutdown")))
        self._finish()

    async def _start_tls_now(self) -> None:
        machine, transport = self.machine, self.transport
        assert machine is not None and transport is not None
        context = self.server.tls_context
        assert context is not None
        self._under_tls = bytearray()
        try:
            new = await self.loop.start_tls(
                transport,
                self,
                context,
                server_side=True,
                ssl_handshake_timeout=_TLS_HANDSHAKE_TIMEOUT,
            )
        except (TimeoutError, OSError, ssl.SSLError, ConnectionError) as error:
            log.info("%s %s TLS handshake failed: %s", self.service, self.peer, error)
            self.ending = "TLS handshake failed"
            transport.abort()
            return
        if new is None:  # the connection closed during the handshake
            return
        self.transport = new
        if self.recorder is not None:
            self.recorder.mark("TLS started")
            self.recorder.facts["tls"] = True
        self._emit(machine.send(TLSStarted()))
        early, self._under_tls = bytes(self._under_tls or b""), None
        if early:
            if self.recorder is not None:
                self.recorder.received(early)
            self.last_activity = self.loop.time()
            self.line.saw(early, self.last_activity)
            machine.receive_data(early)
        self._pump()

    def _start_tls(self) -> None:
        task = self.loop.create_task(self._start_tls_now())
        self.server.keep_task(task)

    def _decide(self, event: MessageReceived) -> bool:
        """Store the message; True if decided now, False if storing went to a thread."""
        machine = self.machine
        assert machine is not None
        server = self.server
        faults = server.faults
        fault = faults.match(self.service, "DOT", peer=self.peer_ip) if faults else None
        if fault is not None:
            if fault.delay > 0:
                self.delay_next_reply(fault.delay)
            refusal = fault.reply()
            if refusal is not None:
                self._emit(machine.send(Reject(refusal)))
                self.refused += 1
                return True
        if is_looping(event.content):
            # RFC 5321 6.3: too many Received lines means a mail loop.
            reply = policy_reply(server.config.replies, "mail_loop")
            self._emit(machine.send(Reject(reply)))
            self.refused += 1
            return True
        queue_id = server.next_queue_id()
        session = machine.session
        if not server.config.store_in_thread or server.open_connections() == 1:
            # Inline when configured, or when this is the only client: blocking the loop for the
            # fsyncs then starves nobody, and it saves the hop to a worker thread and back.
            self._emit(self._verdict(self._store_now(event, session, queue_id), queue_id))
            return True
        self.storing = True
        self.held = 0
        server.submit_store(self._store_in_worker, event, session, queue_id)
        return False

    def _store_in_worker(self, event: MessageReceived, session: Session, queue_id: str) -> None:
        """In the thread pool: store, then hand the verdict to the loop in one wake-up."""
        problem = self._store_now(event, session, queue_id)
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody to answer
            self.loop.call_soon_threadsafe(self._stored, problem, queue_id)

    def _store_now(self, event: MessageReceived, session: Session, queue_id: str) -> str | None:
        """Store; None on success, else the error text (runs in a thread or the loop)."""
        try:
            self.server.store_message(
                event, session, self.peer_ip, queue_id, submission=self.policy.submission
            )
        except OSError as error:
            log.error("%s %s cannot store %s: %s", self.service, self.peer, queue_id, error)
            return str(error.strerror or error)
        except Exception:  # a bug of ours: refuse with 451 rather than lose the session
            log.exception("%s %s cannot store %s", self.service, self.peer, queue_id)
            return "internal error"
        return None

    def _verdict(self, problem: str | None, queue_id: str) -> bytes:
        machine = self.machine
        assert machine is not None
        if problem is None:
            self.messages += 1
            return machine.send(Accept(queue_id))
        self.refused += 1
        reply = policy_reply(self.server.config.replies, "cannot_store")
        return machine.send(Reject(reply))

    def _stored(self, problem: str | None, queue_id: str) -> None:
        """Back on the loop: answer the final dot, then carry on with what the client sent."""
        transport = self.transport
        assert transport is not None
        self.storing = False
        out = self._verdict(problem, queue_id)
        if transport.is_closing():
            return  # the client left meanwhile; the message is stored anyway (RFC 1047)
        self._emit(out)
        if self.shutdown_requested:
            self.shut_down()
            return
        self._resume_reading("hold")
        self._pump()

    def _hang_up(self, why: str) -> None:
        """Say 421 and close (the client sent junk, or the server stops)."""
        machine = self.machine
        transport = self.transport
        assert machine is not None and transport is not None
        config = self.server.config
        if why in ("timeout", "line timeout"):
            reply = machine.error_reply("timeout")  # RFC 5321 4.5.3.2.7: 421 4.4.2
        elif why == "shutdown":
            reply = machine.error_reply("shutdown")
        else:
            reply = policy_reply(config.replies, "not_smtp", hostname=config.server_name)
        self.ending = why
        if not transport.is_closing() and not self.finishing:
            while self._slow:  # what was promised goes out first, at once
                self._write(self._slow.popleft()[1])
            self._write(machine.send(Shutdown(reply)))
            self._finish()

    def _finish(self) -> None:
        """Half-close after the last reply, drain the client's input a moment, then close."""
        transport = self.transport
        assert transport is not None
        if self.finishing or transport.is_closing():
            return
        self.finishing = True
        if self.recorder is not None:
            self.recorder.last_reply_done()
        if self.timer is not None:
            self.timer.cancel()
        if self._write_paused:
            # The client has not read what it was sent; it will not read the rest either, and a
            # close would wait for ever to flush it.
            self.ending = f"{self.ending}, replies unread"
            transport.abort()
            return
        if transport.can_write_eof() and not self.peer_eof:
            try:
                transport.write_eof()
            except (ConnectionError, OSError):  # the client reset the connection: it is gone
                self.ending = "peer reset"
                transport.abort()
                return
            self._paused.clear()
            transport.resume_reading()
            self.timer = self.loop.call_later(LINGER, self._close_or_abort)
        else:
            transport.close()

    def _check_by(self, when: float) -> None:
        """Make sure the idle check runs no later than loop time ``when``."""
        timer = self.timer
        if timer is None or self.finishing or timer.when() <= when:
            return
        timer.cancel()
        self.timer = self.loop.call_at(when, self._check_idle)

    def _close_or_abort(self) -> None:
        """The end of the lingering close: close, or abort if the client still does not read."""
        transport = self.transport
        if transport is not None:
            (transport.abort if self._write_paused else transport.close)()

    def _check_idle(self) -> None:
        config = self.server.config
        now = self.loop.time()
        idle = now - self.last_activity
        if self.storing:
            self.timer = self.loop.call_later(config.idle_timeout, self._check_idle)
            return
        if self.line.overdue(now, config.line_timeout):
            self.timer = None
            log.info("%s %s command line unfinished after %.0f s", self.service, self.peer, idle)
            self._hang_up("line timeout")
            return
        if idle >= config.idle_timeout:
            self.timer = None
            log.info("%s %s idle for %.0f s", self.service, self.peer, idle)
            self._hang_up("timeout")
            return
        wait = config.idle_timeout - idle
        line_left = self.line.left(now, config.line_timeout)
        if line_left is not None:
            wait = min(wait, line_left)
        self.timer = self.loop.call_later(max(wait, 0.01), self._check_idle)

    # -- server shutdown --------------------------------------------------------------------------

    def shut_down(self) -> None:
        """421 now, or right after the message being stored is acknowledged."""
        if self.machine is None:
            return
        if self.finishing and self.transport is not None:
            self.transport.close()
            return
        if self.storing:
            self.shutdown_requested = True
            return
        self._hang_up("shutdown")

    def abort(self) -> None:
        """Drop the connection at once (the grace period is over)."""
        if self.transport is not None:
            self.transport.abort()


def _split_first_reply(data: bytes) -> tuple[list[bytes], bytes]:
    """The lines of the first reply in ``data`` (each with its CRLF), and the bytes after it."""
    lines: list[bytes] = []
    pos = 0
    while (end := data.find(b"\r\n", pos)) >= 0:
        line = data[pos : end + 2]
        lines.append(line)
        pos = end + 2
        if len(line) < 6 or line[3:4] != b"-":
            break
    return lines, data[pos:]


def _first_line(data: bytes) -> str:
    return data.split(b"\n", 1)[0].rstrip(b"\r")[:60].decode("latin-1")
