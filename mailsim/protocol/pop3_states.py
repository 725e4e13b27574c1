"""Every state rule of the POP3 server and client machines, in two tables (RFC 1939 section 3).

``TABLE[state][trigger] -> next state``, as in :mod:`mailsim.protocol.smtp_states`; the theory of
operation in :mod:`mailsim.protocol.pop3` says what the triggers are. A notebook draws both state
diagrams straight from these dicts.
"""

from __future__ import annotations

import enum
from typing import Final

from mailsim.protocol._common import State


class Sentinel(enum.Enum):
    """What ``next_event()`` answers when it has no event to give."""

    #: The machine needs more bytes from the peer (call ``receive_data``).
    NEED_DATA = "NEED_DATA"
    #: The machine waits for the application (a step-by-step client waits for ``send``).
    PAUSED = "PAUSED"


NEED_DATA: Final = Sentinel.NEED_DATA
PAUSED: Final = Sentinel.PAUSED


# --- states and the transition tables -----------------------------------------------------------


class Pop3State(State):
    """The states of a POP3 server session (RFC 1939 section 3)."""

    #: Greeted; waiting for USER, APOP, CAPA or QUIT.
    AUTHORIZATION = "AUTHORIZATION"
    #: Still AUTHORIZATION for RFC 1939, but USER got +OK, so PASS may come now (section 7).
    AUTHORIZATION_PASS = "AUTHORIZATION_PASS"
    #: ``+OK`` sent to STLS (RFC 2595 4); the adapter runs the TLS handshake, then sends
    #: ``TLSStarted``; nothing is read meanwhile.
    TLS_STARTING = "TLS_STARTING"
    #: Logged in, maildrop locked; mail commands allowed, deletions only marked.
    TRANSACTION = "TRANSACTION"
    #: QUIT received in TRANSACTION: the marked messages are being deleted (section 6).
    UPDATE = "UPDATE"
    #: The session is over; the maildrop is released; further input is ignored.
    CLOSED = "CLOSED"
    #: The application misused the machine (LocalProtocolError); it is dead.
    ERROR = "ERROR"


_S = Pop3State
# Happenings that end a live session from any state, whatever the command.
_SERVER_ENDINGS: Final = {
    "too many errors": _S.CLOSED,
    "peer closed": _S.CLOSED,
    "shutdown": _S.CLOSED,
    "local error": _S.ERROR,
}

#: Every server state rule: ``SERVER_TRANSITIONS[state][trigger] -> next state``. A verb is allowed
#: in a state exactly when it is a key of that row; it leads there when answered ``+OK``, and a
#: ``-ERR`` to anything follows the ``"-ERR"`` key.
SERVER_TRANSITIONS: Final[dict[Pop3State, dict[str, Pop3State]]] = {
    _S.AUTHORIZATION: {
        "USER": _S.AUTHORIZATION_PASS,
        "APOP": _S.TRANSACTION,
        "CAPA": _S.AUTHORIZATION,
        "STLS": _S.TLS_STARTING,  # RFC 2595 4: only in AUTHORIZATION
        "QUIT": _S.CLOSED,  # no UPDATE: nothing was marked (section 5)
        "-ERR": _S.AUTHORIZATION,
        **_SERVER_ENDINGS,
    },
    _S.AUTHORIZATION_PASS: {
        "PASS": _S.TRANSACTION,
        "USER": _S.AUTHORIZATION_PASS,
        "APOP": _S.TRANSACTION,
        "CAPA": _S.AUTHORIZATION,  # PASS must come *immediately* after USER (section 7)
        "STLS": _S.TLS_STARTING,
        "QUIT": _S.CLOSED,
        "-ERR": _S.AUTHORIZATION,
        **_SERVER_ENDINGS,
    },
    # RFC 2595 4: after the handshake the session starts over in AUTHORIZATION.
    _S.TLS_STARTING: {"TLS started": _S.AUTHORIZATION, **_SERVER_ENDINGS},
    _S.TRANSACTION: {
        "STAT": _S.TRANSACTION,
        "LIST": _S.TRANSACTION,
        "RETR": _S.TRANSACTION,
        "DELE": _S.TRANSACTION,
        "RSET": _S.TRANSACTION,
        "NOOP": _S.TRANSACTION,
        "TOP": _S.TRANSACTION,
        "UIDL": _S.TRANSACTION,
        "CAPA": _S.TRANSACTION,
        "QUIT": _S.UPDATE,
        "-ERR": _S.TRANSACTION,
        **_SERVER_ENDINGS,
    },
    _S.UPDATE: {"committed": _S.CLOSED, "local error": _S.ERROR},
    _S.CLOSED: {},
    _S.ERROR: {},
}


class ClientState(State):
    """The states of a POP3 client session: each live one names the reply it awaits."""

    #: Connected; waiting for the server's greeting.
    GREETING = "GREETING"
    #: Sent USER name.
    USER = "USER"
    #: Sent PASS secret.
    PASS = "PASS"
    #: Sent APOP name digest.
    APOP = "APOP"
    #: Sent STAT.
    STAT = "STAT"
    #: Sent UIDL (whole listing).
    UIDL = "UIDL"
    #: Sent LIST (fallback when UIDL got -ERR).
    LIST = "LIST"
    #: Sent RETR n.
    RETR = "RETR"
    #: Sent DELE n.
    DELE = "DELE"
    #: Sent QUIT.
    QUIT = "QUIT"
    #: Step-by-step mode: waiting for the application to send a Command (next_event: PAUSED).
    READY = "READY"
    #: Step-by-step mode: sent the application's Command, waiting for its reply.
    COMMAND = "COMMAND"
    #: The session is over; waiting for the connection to close.
    DONE = "DONE"
    #: The connection is closed.
    CLOSED = "CLOSED"
    #: A protocol error happened (the peer's or ours); the machine is dead.
    ERROR = "ERROR"


_C = ClientState
_CLIENT_ENDINGS: Final = {"peer closed": _C.CLOSED, "protocol error": _C.ERROR}

#: Every client state rule: ``CLIENT_TRANSITIONS[state][trigger] -> next state``. Entering a state
#: sends its command (RETR and DELE take the current message of the plan).
CLIENT_TRANSITIONS: Final[dict[ClientState, dict[str, ClientState]]] = {
    _C.GREETING: {
        "+OK": _C.USER,
        "+OK apop": _C.APOP,
        "+OK no timestamp": _C.QUIT,  # APOP asked for, none offered: never fall back to PASS
        "+OK manual": _C.READY,
        "-ERR": _C.DONE,
        **_CLIENT_ENDINGS,
    },
    _C.USER: {"+OK": _C.PASS, "-ERR": _C.QUIT, **_CLIENT_ENDINGS},
    _C.PASS: {"+OK": _C.STAT, "-ERR": _C.QUIT, **_CLIENT_ENDINGS},
    _C.APOP: {"+OK": _C.STAT, "-ERR": _C.QUIT, **_CLIENT_ENDINGS},
    _C.STAT: {"+OK": _C.UIDL, "+OK empty": _C.QUIT, "-ERR": _C.QUIT, **_CLIENT_ENDINGS},
    _C.UIDL: {"+OK": _C.RETR, "+OK nothing new": _C.QUIT, "-ERR": _C.LIST, **_CLIENT_ENDINGS},
    _C.LIST: {"+OK": _C.RETR, "+OK nothing new": _C.QUIT, "-ERR": _C.RETR, **_CLIENT_ENDINGS},
    _C.RETR: {
        "+OK delete": _C.DELE,
        "+OK next": _C.RETR,
        "+OK last": _C.QUIT,
        "-ERR next": _C.RETR,
        "-ERR last": _C.QUIT,
        **_CLIENT_ENDINGS,
    },
    _C.DELE: {
        "+OK next": _C.RETR,
        "+OK last": _C.QUIT,
        "-ERR next": _C.RETR,
        "-ERR last": _C.QUIT,
        **_CLIENT_ENDINGS,
    },
    _C.QUIT: {"+OK": _C.DONE, "-ERR": _C.DONE, **_CLIENT_ENDINGS},
    _C.READY: {"command": _C.COMMAND, **_CLIENT_ENDINGS},
    _C.COMMAND: {
        "+OK": _C.READY,
        "-ERR": _C.READY,
        "+OK QUIT": _C.DONE,
        "-ERR QUIT": _C.DONE,
        **_CLIENT_ENDINGS,
    },
    _C.DONE: {"peer closed": _C.CLOSED},
    _C.CLOSED: {},
    _C.ERROR: {},
}
