"""The mail server's decisions as a sans-IO core, shared by the simulation and the live servers.

- :mod:`mailsim.mail.server.core`: :class:`MailServerCore` (take, queue, plan, settle, retry,
  warn, bounce) and :class:`Delivery` (one job: MX hosts in order, what no host took).
- :mod:`mailsim.mail.server.delivery`: :class:`ClientSession`, the SMTP client side of one
  delivery connection with its bookkeeping.
- :mod:`mailsim.mail.server.policy`: :class:`SessionPolicy`, who may send what to whom.
- :mod:`mailsim.mail.server.settings`: :class:`ServerSettings` and :class:`ReplyFault`.

The SimPy node (:mod:`mailsim.nodes.mailserver`) and the asyncio servers (:mod:`mailsim.live`)
differ only in how they keep time, move bytes and store files.
"""

from __future__ import annotations

from mailsim.mail.server.core import CONNECT_FAILURES, Delivery, MailServerCore
from mailsim.mail.server.delivery import ClientSession, reply_line
from mailsim.mail.server.policy import SessionPolicy
from mailsim.mail.server.settings import ReplyFault, ServerSettings

__all__ = [
    "CONNECT_FAILURES",
    "ClientSession",
    "Delivery",
    "MailServerCore",
    "ReplyFault",
    "ServerSettings",
    "SessionPolicy",
    "reply_line",
]
