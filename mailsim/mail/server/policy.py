"""Who may send what to whom: the SMTP server machine's policy hooks for one session.

The sans-IO :class:`~mailsim.protocol.smtp.SMTPServer` asks its policy about every recipient,
every password and (for fault injection) every command. :class:`SessionPolicy` answers for the
mail-server core, the same in the simulation and on real sockets: local users at our domains are
accepted, unknown ones refused (550 5.1.1); other domains only on the submission port after AUTH
(550 5.7.1, RFC 5321 7.1: no open relay); the scenario's reply faults (greylisting, a full disk)
replace chosen replies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mailsim.mail.server.settings import ReplyFault
from mailsim.protocol.smtp import MailParams, Reply, ServerPolicy, Session, policy_reply

if TYPE_CHECKING:
    from mailsim.mail.server.core import MailServerCore


class SessionPolicy(ServerPolicy):
    """The core's answers for one SMTP session: relay rules, users, injected faults.

    Args:
        core: the mail server.
        peer_ip: the client's address (greylisting remembers it).
        submission: the submission port (RFC 6409): AUTH offered and required, relaying allowed
            once authenticated.
        port: the port the session came in on (reply faults may name one).
    """

    def __init__(self, core: MailServerCore, peer_ip: str, *, submission: bool, port: int) -> None:
        super().__init__(
            auth_offered=submission,
            auth_required=submission,
            users=core.users,
        )
        self.core = core
        self.peer_ip = peer_ip
        self.submission = submission
        self.port = port
        #: The name the client gave in HELO/EHLO (for the Received stamp).
        self.session_hello: str | None = None
        #: Whether it used EHLO.
        self.extended = False
        #: Whether an AUTH succeeded in this session.
        self.authenticated = False
        self._sender = ""

    def authenticate(self, user: str, password: str) -> bool:
        ok = self.core.users.get(self.core.local_part(user)) == password
        self.authenticated = self.authenticated or ok
        return ok

    def fault(self, command: str) -> ReplyFault | None:
        """The reply fault that hits ``command`` now, if any."""
        core = self.core
        now = core.clock()
        for fault in core.settings.reply_faults:
            if fault.command != command or not fault.active(now):
                continue
            if fault.port is not None and fault.port != self.port:
                continue
            if fault.probability < 1.0 and core.fault_rng.random() >= fault.probability:
                continue
            return fault
        return None

    def before_command(self, session: Session, verb: str, arg: str) -> Reply | None:
        if verb in ("EHLO", "HELO"):
            self.session_hello = arg.split(" ")[0] if arg else None
            self.extended = verb == "EHLO"
        if verb == "MAIL":
            self._sender = arg
        fault = self.fault(verb)
        if fault is None:
            return None
        if fault.first_attempt_only:
            triplet = (self.peer_ip, self._sender.lower(), arg.lower())
            if triplet in self.core.greylist:
                return None
            self.core.greylist.add(triplet)
        return fault.reply()

    def check_recipient(self, session: Session, address: str, params: Any) -> Reply | None:
        core = self.core
        if core.is_local(address):
            if core.local_part(address) in core.users:
                return None
            return policy_reply(core.texts, "unknown_user", address=address)
        if self.submission and session.authenticated_user:
            return None
        # RFC 5321 7.1 / Postfix reject_unauth_destination: no open relay.
        return policy_reply(core.texts, "relay_denied", address=address)

    def check_sender(self, session: Session, address: str, params: MailParams) -> Reply | None:
        return None
