"""Sans-IO SMTP (RFC 5321): the server and client state machines of mailsim.

Theory of operation
-------------------
Both machines follow h11's shape. The adapter (a SimPy process, an asyncio protocol, a test)
owns the connection; the machine owns the protocol:

- ``receive_data(data)`` hands over bytes read from the peer; ``b""`` means the peer closed.
- ``next_event()`` parses what was received and returns one event, or the sentinel
  :data:`NEED_DATA` (read more), or, on the server, :data:`PAUSED` (the final dot of a message
  arrived and the application must decide before anything else is read).
- ``data_to_send()`` drains the bytes the machine produced on its own (greeting, replies the
  policy or the protocol rules decided, the client's commands and content). Write them after every
  ``next_event()`` that returns :data:`NEED_DATA`, and before blocking on a read.
- ``SMTPServer.send(event)`` is for what only the application can decide: accepting a message
  (after storing it durably, RFC 5321 4.2.5 and 6.1), rejecting it, or shutting down. It returns
  every byte to write now, in order: replies the machine had queued first, then this one.

Nothing is parsed in ``receive_data``; parsing happens in ``next_event``, so the events and output
are the same however the bytes were split. The server answers every input with a reply and never
raises because of what the peer sent. The client raises :class:`RemoteProtocolError` when a reply is
malformed, after queuing the results a lost connection would give, so every envelope still gets an
answer. Misuse by the application raises :class:`LocalProtocolError`. When ``next_event()`` returns
:data:`NEED_DATA` and ``state`` is ``CLOSED`` or ``ERROR``, write ``data_to_send()`` and close.

The state rules live in :mod:`mailsim.protocol.smtp_states` (``SERVER_TRANSITIONS``,
``CLIENT_TRANSITIONS``); every state change goes through them. Reply wording lives in
:mod:`mailsim.protocol.smtp_replies`.

Lines end in CRLF only (RFC 5321 2.3.8): a bare CR or LF is data, so ``<LF>.<LF>`` never ends a
message (the SMTP smuggling guard).

This module is the public face of both machines: the server lives in
:mod:`mailsim.protocol.smtp_server`, the client in :mod:`mailsim.protocol.smtp_client`, the ESMTP
parameters they share in :mod:`mailsim.protocol.smtp_params`.
"""

from __future__ import annotations

from mailsim.protocol._common import (
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
)
from mailsim.protocol.smtp_address import (
    address_key,
    canonical_address,
    local_part,
    quote_local_part,
)
from mailsim.protocol.smtp_client import (
    ClientEvent,
    Closed,
    ConnectionFailed,
    Envelope,
    Idle,
    RecipientOutcome,
    RecipientStatus,
    SMTPClient,
    TransactionResult,
    canonical_content,
    dot_stuff,
    split_lines,
)
from mailsim.protocol.smtp_params import (
    MailParams,
    RcptParams,
)
from mailsim.protocol.smtp_replies import (
    COMMAND_REPLIES,
    POLICY_REPLIES,
    SYNTAX_REPLIES,
    Reply,
    ReplyTexts,
    policy_reply,
)
from mailsim.protocol.smtp_server import (
    Accept,
    AuthResult,
    ConnectionClosed,
    Hello,
    ImproperPipelining,
    MailFrom,
    MessageReceived,
    MessageRefused,
    Quit,
    RcptTo,
    Reject,
    Reset,
    ServerEvent,
    ServerLimits,
    ServerPolicy,
    ServiceClosing,
    Session,
    Shutdown,
    SMTPServer,
    StartTLS,
    TLSStarted,
    is_postmaster,
)
from mailsim.protocol.smtp_states import (
    CLIENT_TRANSITIONS,
    NEED_DATA,
    PAUSED,
    SERVER_TRANSITIONS,
    ClientState,
    Sentinel,
    ServerState,
)

__all__ = [
    "CLIENT_TRANSITIONS",
    "COMMAND_REPLIES",
    "NEED_DATA",
    "PAUSED",
    "POLICY_REPLIES",
    "SERVER_TRANSITIONS",
    "SYNTAX_REPLIES",
    "Accept",
    "AuthResult",
    "ClientEvent",
    "ClientState",
    "Closed",
    "ConnectionClosed",
    "ConnectionFailed",
    "Envelope",
    "Hello",
    "Idle",
    "ImproperPipelining",
    "LocalProtocolError",
    "MailFrom",
    "MailParams",
    "MessageReceived",
    "MessageRefused",
    "ProtocolError",
    "Quit",
    "RcptParams",
    "RcptTo",
    "RecipientOutcome",
    "RecipientStatus",
    "Reject",
    "RemoteProtocolError",
    "Reply",
    "ReplyTexts",
    "Reset",
    "SMTPClient",
    "SMTPServer",
    "Sentinel",
    "ServerEvent",
    "ServerLimits",
    "ServerPolicy",
    "ServerState",
    "ServiceClosing",
    "Session",
    "Shutdown",
    "StartTLS",
    "TLSStarted",
    "TransactionResult",
    "address_key",
    "canonical_address",
    "canonical_content",
    "dot_stuff",
    "is_postmaster",
    "local_part",
    "policy_reply",
    "quote_local_part",
    "split_lines",
]
