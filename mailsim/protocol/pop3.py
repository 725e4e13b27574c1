"""Sans-IO POP3 (RFC 1939) server and client state machines, in the shape of h11.

A user agent fetches its mail from its maildrop with POP3: it logs in (USER/PASS or APOP), lists
the messages, retrieves them, marks some for deletion and quits; only that QUIT deletes anything.
This module is the public face of both ends of that conversation, pure state machines: the server
in :mod:`mailsim.protocol.pop3_server`, the client in :mod:`mailsim.protocol.pop3_client`, their
events, states and wire format in ``pop3_events``, ``pop3_states`` and ``pop3_wire``. The SimPy
mail server, the simulated user agent and the asyncio live server are thin adapters over them.
It imports only the standard library.
"""

# Theory of operation
# -------------------
# Each machine is fed the bytes that arrived with ``receive_data(data)`` (``b""`` means the peer
# closed its side) and is then asked ``next_event()`` until it answers ``NEED_DATA`` (it needs more
# bytes) or ``PAUSED`` (it waits for the application: only the client in step-by-step mode does).
# Whatever the machine decided to write on its own (the server's greeting and every reply, the
# automatic client's commands) is collected in an outgoing buffer that ``data_to_send()`` drains;
# whatever the application asks for explicitly goes through ``send(event)``, which returns the
# bytes to write. Nothing here reads a clock or touches a socket, so the same bytes in give the
# same events and bytes out, whatever the chunking (a hypothesis test proves it).
#
# Every state rule lives in two tables, SERVER_TRANSITIONS and CLIENT_TRANSITIONS:
# ``TABLE[state][trigger] -> next state``. A server trigger is the command verb that got ``+OK``,
# the string ``"-ERR"`` for any command that got ``-ERR``, or a happening in lower case ("peer
# closed", "too many errors", "shutdown", "committed", "local error"). A verb is allowed in a state
# exactly when it is a key of that state's row. A client state names the command whose reply it
# awaits; a client trigger is the reply's status plus, where the plan branches, what comes next
# ("+OK delete", "-ERR last"); entering a state sends that state's command. A notebook draws both
# state diagrams straight from the tables.
#
# The server asks the application about users and mail only through a MaildropProvider (hooks:
# authenticate, secret_for, open_maildrop) and the Maildrop it returns (a locked snapshot of
# messages with commit_deletions and release). The machine keeps the deletion marks itself and
# hands them to the maildrop only in the UPDATE state, after a QUIT (RFC 1939 section 6); any other
# end of the session releases the lock and deletes nothing.

from __future__ import annotations

from mailsim.protocol.pop3_client import (
    POP3Client,
)
from mailsim.protocol.pop3_events import (
    AuthResult,
    ClientEvent,
    Command,
    ConnectionClosed,
    ConnectionLost,
    Deleted,
    DeletionsReset,
    Greeting,
    LoggedIn,
    LoginFailed,
    MaildropStatus,
    MaildropUnavailable,
    MessageRetrieved,
    Reply,
    Retrieved,
    RetrieveFailed,
    ServerEvent,
    SessionDone,
    Shutdown,
    StartTLS,
    TLSStarted,
    Updated,
)
from mailsim.protocol.pop3_server import (
    Maildrop,
    MaildropMessage,
    MaildropProvider,
    MemoryMaildrop,
    MemoryMessage,
    MemoryProvider,
    POP3Server,
)
from mailsim.protocol.pop3_states import (
    CLIENT_TRANSITIONS,
    NEED_DATA,
    PAUSED,
    SERVER_TRANSITIONS,
    ClientState,
    Pop3State,
    Sentinel,
)
from mailsim.protocol.pop3_wire import (
    ARGUMENT_LIMIT,
    CLIENT_LINE_LIMIT,
    COMMAND_LINE_LIMIT,
    DEFAULT_MAX_ERRORS,
    MAILBOX_NAME_LIMIT,
    RESPONSE_LINE_LIMIT,
    apop_digest,
)

__all__ = [
    "ARGUMENT_LIMIT",
    "CLIENT_LINE_LIMIT",
    "CLIENT_TRANSITIONS",
    "COMMAND_LINE_LIMIT",
    "DEFAULT_MAX_ERRORS",
    "MAILBOX_NAME_LIMIT",
    "NEED_DATA",
    "PAUSED",
    "RESPONSE_LINE_LIMIT",
    "SERVER_TRANSITIONS",
    "AuthResult",
    "ClientEvent",
    "ClientState",
    "Command",
    "ConnectionClosed",
    "ConnectionLost",
    "Deleted",
    "DeletionsReset",
    "Greeting",
    "LoggedIn",
    "LoginFailed",
    "Maildrop",
    "MaildropMessage",
    "MaildropProvider",
    "MaildropStatus",
    "MaildropUnavailable",
    "MemoryMaildrop",
    "MemoryMessage",
    "MemoryProvider",
    "MessageRetrieved",
    "POP3Client",
    "POP3Server",
    "Pop3State",
    "Reply",
    "RetrieveFailed",
    "Retrieved",
    "Sentinel",
    "ServerEvent",
    "SessionDone",
    "Shutdown",
    "StartTLS",
    "TLSStarted",
    "Updated",
    "apop_digest",
]
