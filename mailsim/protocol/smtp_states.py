"""Every state rule of the SMTP server and client machines, in two tables.

Like h11's ``EVENT_TRIGGERED_TRANSITIONS``, the tables are the machines: the server and client in
:mod:`mailsim.protocol.smtp` move only by looking up ``TABLE[state][trigger]``, and a notebook draws
the state diagrams from the same dicts. A trigger is a short string:

- an upper-case SMTP verb (``"MAIL"``) means "the server accepted this command" (server table);
  a verb missing from a state's row is a bad sequence: 503, state unchanged (RFC 5321 4.1.4);
- a reply class (``"2xx"``, ``"354"``, ``"421"``) means "the client got this reply" (client table);
- lower-case phrases name everything else (``"end of data"``, ``"peer closed"``, ``"Accept"``).

Refused commands (a 550 from the policy, a 501 for bad syntax) change nothing and appear nowhere:
RFC 5321 says a 4xx/5xx reply leaves the session as it was.
"""

from __future__ import annotations

import enum
from typing import Final

from mailsim.protocol._common import State


class ServerState(State):
    """Where an SMTP server is in the session (the states of RFC 5321 3 and 4.1.4)."""

    #: Connection open, greeting not yet written (left at once by the constructor).
    CONNECTED = "CONNECTED"
    #: 220 greeting sent; waiting for EHLO or HELO.
    GREETED = "GREETED"
    #: 554 greeting sent; every command but QUIT gets 503 (RFC 5321 3.1).
    NO_SERVICE = "NO_SERVICE"
    #: EHLO/HELO done, no mail transaction open.
    READY = "READY"
    #: 334 sent after AUTH PLAIN; waiting for the base64 credentials (RFC 4954).
    AUTH_PLAIN = "AUTH_PLAIN"
    #: 334 "Username:" sent after AUTH LOGIN; waiting for the user name.
    AUTH_LOGIN_USER = "AUTH_LOGIN_USER"
    #: 334 "Password:" sent; waiting for the password.
    AUTH_LOGIN_PASSWORD = "AUTH_LOGIN_PASSWORD"
    #: MAIL accepted; no recipient accepted yet.
    MAIL = "MAIL"
    #: At least one RCPT accepted; DATA may follow.
    RCPT = "RCPT"
    #: 354 sent; message content is arriving until CRLF.CRLF.
    DATA = "DATA"
    #: The final dot arrived; the application must Accept or Reject (input is held meanwhile).
    AWAITING_DECISION = "AWAITING_DECISION"
    #: 220 sent to STARTTLS (RFC 3207); the adapter runs the TLS handshake, then sends
    #: ``TLSStarted`` (nothing is read meanwhile).
    TLS_STARTING = "TLS_STARTING"
    #: 221 or 421 written, or the peer closed; the adapter closes the connection.
    CLOSED = "CLOSED"
    #: The application misused the machine; close the connection.
    ERROR = "ERROR"


class ClientState(State):
    """Where an SMTP client is in the session."""

    #: Connection open; waiting for the server's greeting.
    AWAIT_GREETING = "AWAIT_GREETING"
    #: EHLO sent; waiting for the list of extensions.
    EHLO_SENT = "EHLO_SENT"
    #: HELO sent (the server refused EHLO with 500/502).
    HELO_SENT = "HELO_SENT"
    #: AUTH PLAIN with its initial response sent; waiting for 235.
    AUTH_PLAIN_SENT = "AUTH_PLAIN_SENT"
    #: AUTH LOGIN sent; waiting for 334 "Username:".
    AUTH_LOGIN_SENT = "AUTH_LOGIN_SENT"
    #: The user name sent; waiting for 334 "Password:".
    AUTH_USER_SENT = "AUTH_USER_SENT"
    #: The password sent; waiting for 235.
    AUTH_PASSWORD_SENT = "AUTH_PASSWORD_SENT"
    #: Between transactions; the next queued envelope starts here, or QUIT.
    IDLE = "IDLE"
    #: MAIL sent (with RCPTs and DATA behind it when pipelining); waiting for its reply.
    MAIL_SENT = "MAIL_SENT"
    #: Waiting for RCPT replies.
    RCPT_SENT = "RCPT_SENT"
    #: DATA sent; waiting for 354.
    DATA_SENT = "DATA_SENT"
    #: Content and the final dot sent; waiting for the reply that settles the message.
    CONTENT_SENT = "CONTENT_SENT"
    #: RSET sent after a transaction with no accepted recipient (or a refused DATA).
    RSET_SENT = "RSET_SENT"
    #: QUIT sent; waiting for 221.
    QUIT_SENT = "QUIT_SENT"
    #: The session is over.
    CLOSED = "CLOSED"
    #: The server broke the protocol; the session is over.
    ERROR = "ERROR"


S = ServerState

#: The server's rules: state -> trigger -> next state. Commands valid in every state (NOOP, HELP,
#: VRFY, EXPN: RFC 5321 4.1.4) are self-loops, so "verb missing from the row" means 503.
SERVER_TRANSITIONS: dict[ServerState, dict[str, ServerState]] = {
    S.CONNECTED: {
        "greeting 220": S.GREETED,
        "greeting 554": S.NO_SERVICE,
        "greeting 421": S.CLOSED,  # too busy to talk at all (RFC 5321 3.8)
    },
    S.GREETED: {
        "EHLO": S.READY,
        "HELO": S.READY,
        "RSET": S.GREETED,
        "NOOP": S.GREETED,
        "HELP": S.GREETED,
        "VRFY": S.GREETED,
        "EXPN": S.GREETED,
        "QUIT": S.CLOSED,
    },
    # RFC 5321 3.1: after a 554 greeting only QUIT is answered with anything but 503.
    S.NO_SERVICE: {"QUIT": S.CLOSED},
    S.READY: {
        "EHLO": S.READY,
        "HELO": S.READY,
        "AUTH PLAIN": S.AUTH_PLAIN,
        "AUTH PLAIN with response": S.READY,
        "AUTH LOGIN": S.AUTH_LOGIN_USER,
        "AUTH LOGIN with user": S.AUTH_LOGIN_PASSWORD,
        "STARTTLS": S.TLS_STARTING,  # RFC 3207 4: after EHLO, outside a mail transaction
        "MAIL": S.MAIL,
        "RSET": S.READY,
        "NOOP": S.READY,
        "HELP": S.READY,
        "VRFY": S.READY,
        "EXPN": S.READY,
        "QUIT": S.CLOSED,
    },
    # RFC 4954 4: the response line ends the exchange (235, 535 or 501 for "*").
    S.AUTH_PLAIN: {"auth response": S.READY},
    S.AUTH_LOGIN_USER: {"auth response": S.AUTH_LOGIN_PASSWORD, "auth cancelled": S.READY},
    S.AUTH_LOGIN_PASSWORD: {"auth response": S.READY},
    S.MAIL: {
        "EHLO": S.READY,  # a new EHLO drops the transaction like RSET (RFC 5321 4.1.4)
        "HELO": S.READY,
        "RCPT": S.RCPT,
        "RSET": S.READY,
        "NOOP": S.MAIL,
        "HELP": S.MAIL,
        "VRFY": S.MAIL,
        "EXPN": S.MAIL,
        "QUIT": S.CLOSED,
    },
    S.RCPT: {
        "EHLO": S.READY,
        "HELO": S.READY,
        "RCPT": S.RCPT,
        "DATA": S.DATA,
        "RSET": S.READY,
        "NOOP": S.RCPT,
        "HELP": S.RCPT,
        "VRFY": S.RCPT,
        "EXPN": S.RCPT,
        "QUIT": S.CLOSED,
    },
    S.DATA: {
        "end of data": S.AWAITING_DECISION,
        # Over the size or line limit: the machine answers 552/500 itself (RFC 5321 4.2.5).
        "end of data, refused": S.READY,
    },
    S.AWAITING_DECISION: {"Accept": S.READY, "Reject": S.READY},
    # RFC 3207 4.2: after the handshake both sides forget the session; the client must EHLO again.
    S.TLS_STARTING: {"TLS started": S.GREETED},
    S.CLOSED: {},
    S.ERROR: {},
}

# Ways out that every live state shares: the peer hangs up, a 421 (too many errors, or a policy
# hook answering 421) closes the session (RFC 5321 3.8), the application shuts the session down,
# or it misuses the machine.
for _state, _row in SERVER_TRANSITIONS.items():
    if _state not in (S.CLOSED, S.ERROR, S.CONNECTED):
        _row["peer closed"] = S.CLOSED
        _row["421"] = S.CLOSED
        _row["Shutdown"] = S.CLOSED
        # --strict: a command sent before the previous reply (RFC 5321 4.3, RFC 2920 3.1): 554
        # 5.5.0, then the server hangs up, as Postfix's smtpd_forbid_unauth_pipelining does.
        _row["improper pipelining"] = S.CLOSED
        _row["local error"] = S.ERROR

C = ClientState

#: The client's rules: state -> trigger -> next state. "4xx/5xx" means any reply but the
#: expected positive one (and but 421, which has its own trigger everywhere).
CLIENT_TRANSITIONS: dict[ClientState, dict[str, ClientState]] = {
    C.AWAIT_GREETING: {"220": C.EHLO_SENT, "4xx/5xx": C.QUIT_SENT},
    C.EHLO_SENT: {
        "250": C.IDLE,
        "250, AUTH PLAIN": C.AUTH_PLAIN_SENT,
        "250, AUTH LOGIN": C.AUTH_LOGIN_SENT,
        "500/501/502/504": C.HELO_SENT,  # RFC 5321 3.2: an old server; fall back to HELO
        "4xx/5xx": C.QUIT_SENT,
    },
    C.HELO_SENT: {"250": C.IDLE, "4xx/5xx": C.QUIT_SENT},
    C.AUTH_PLAIN_SENT: {"235": C.IDLE, "4xx/5xx": C.QUIT_SENT},
    C.AUTH_LOGIN_SENT: {"334": C.AUTH_USER_SENT, "4xx/5xx": C.QUIT_SENT},
    C.AUTH_USER_SENT: {"334": C.AUTH_PASSWORD_SENT, "4xx/5xx": C.QUIT_SENT},
    C.AUTH_PASSWORD_SENT: {"235": C.IDLE, "4xx/5xx": C.QUIT_SENT},
    C.IDLE: {
        "envelope": C.MAIL_SENT,
        "envelope refused locally": C.IDLE,
        "quit": C.QUIT_SENT,
    },
    C.MAIL_SENT: {
        "2xx": C.RCPT_SENT,
        "4xx/5xx": C.RSET_SENT,
        # RFC 2920 3.1: with pipelining the RCPT and DATA replies still arrive and are counted.
        "4xx/5xx, pipelined": C.RCPT_SENT,
    },
    C.RCPT_SENT: {
        "reply, more RCPT": C.RCPT_SENT,
        "last reply, some accepted": C.DATA_SENT,
        "last reply, pipelined": C.DATA_SENT,
        "last reply, none accepted": C.RSET_SENT,
    },
    C.DATA_SENT: {"354": C.CONTENT_SENT, "4xx/5xx": C.RSET_SENT},
    C.CONTENT_SENT: {"reply": C.IDLE},
    C.RSET_SENT: {"reply": C.IDLE},
    C.QUIT_SENT: {"reply": C.CLOSED, "connection lost": C.CLOSED},
    C.CLOSED: {},
    C.ERROR: {},
}

for _cstate, _crow in CLIENT_TRANSITIONS.items():
    if _cstate not in (C.CLOSED, C.ERROR, C.QUIT_SENT):
        _crow["421"] = C.CLOSED  # RFC 5321 3.8: the server is closing; no QUIT
        _crow["connection lost"] = C.CLOSED
    if _cstate not in (C.CLOSED, C.ERROR):
        _crow["protocol error"] = C.ERROR

del _state, _row, _cstate, _crow


class Sentinel(enum.Enum):
    """What ``next_event()`` returns when it has no event to give."""

    #: Nothing complete has arrived; write ``data_to_send()``, then read more.
    NEED_DATA = "NEED_DATA"
    #: The server waits for the application: its verdict on a message (``send(Accept(...))``),
    #: or the end of a TLS handshake (``send(TLSStarted())``).
    PAUSED = "PAUSED"


NEED_DATA: Final = Sentinel.NEED_DATA
PAUSED: Final = Sentinel.PAUSED
