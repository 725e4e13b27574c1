"""Every user's mail at the end of a run, written as Maildir folders or mbox files.

A user's mail is in two places when a run ends: what the user agent already fetched over POP3
(and deleted on the server, as POP3 clients do), and what still waits in the mailbox on the
server. :func:`export_mailboxes` puts both together, oldest first, and writes them with
:mod:`mailsim.mail.mailbox` (the standard library's ``mailbox`` underneath), so Steve's mail opens
in mutt (``mutt -f runs/x/mailboxes/steve@usa.com``) or Thunderbird. Mailboxes on a server that
belong to no user of the scenario (``postmaster``) are written too when they hold mail.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mailsim.mail.mailbox import Mailbox, MailStore, export_maildir, export_mbox

if TYPE_CHECKING:
    from mailsim.nodes.world import World

#: The formats of :func:`export_mailboxes`.
MAILBOX_FORMATS = ("maildir", "mbox")
#: Written into the export folder, so a later export may replace what an earlier one wrote
#: but never touches a folder of real mail that mailsim did not write.
MARKER = ".mailsim-mailboxes"

_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*<([^>\r\n]+)>", re.IGNORECASE | re.MULTILINE)


class MailboxExportError(ValueError):
    """The export folder cannot be used; the message says why and what would work."""


def user_mailboxes(world: World, records: Sequence[dict[str, Any]]) -> dict[str, Mailbox]:
    """Each address's mail at the end of the run: fetched by its user agent, then still on the
    server; by address, users in the scenario's order, then other mailboxes that hold mail."""
    delivered: dict[tuple[str, str], float] = {}
    senders: dict[str, str] = {}
    for rec in records:
        if rec["type"] == "mail.deliver":
            delivered.setdefault((rec["msg"], rec["rcpt"].lower()), rec["t"])
        elif rec["type"] == "mail.submit":
            senders.setdefault(rec["msg"], rec["sender"])
    boxes: dict[str, Mailbox] = {}
    claimed: set[tuple[str, str]] = set()  # (server, mailbox name) already given to a user
    for key, agent in world.agents.items():
        box = boxes[agent.address] = Mailbox(agent.address)
        for content in agent.inbox:
            found = _MESSAGE_ID.search(content)
            msg = found.group(1).decode("ascii", "replace") if found else ""
            t = delivered.get((msg, key), 0.0)
            box.deliver(content, t=t, msg_id=msg, sender=senders.get(msg, ""))
        for name, server in world.servers.items():
            if agent.domain in server.core.domains:
                claimed.add((name, agent.login.lower()))
                _add_waiting(box, _store(server).get(agent.login))
    for name, server in world.servers.items():
        for waiting in _store(server):
            if (name, waiting.user.lower()) not in claimed and len(waiting):
                address = f"{waiting.user}@{server.core.domains[0]}"
                _add_waiting(boxes.setdefault(address, Mailbox(address)), waiting)
    return boxes


def _store(server: Any) -> MailStore:
    """A simulated server's mailboxes (the live server's are Maildirs on disk instead)."""
    store = server.core.store
    assert isinstance(store, MailStore), "a simulated mail server keeps a MailStore"
    return store


def _add_waiting(box: Mailbox, waiting: Mailbox | None) -> None:
    """Add the messages still on the server (``waiting``) to ``box``."""
    for stored in waiting.messages if waiting is not None else ():
        box.deliver(
            stored.content, t=stored.delivered_at, msg_id=stored.msg_id, sender=stored.sender
        )


def export_mailboxes(
    world: World, records: Sequence[dict[str, Any]], directory: str | Path, fmt: str = "maildir"
) -> dict[str, Path]:
    """Write every address's mail under ``directory``: a Maildir ``<address>/`` each, or an mbox
    file ``<address>.mbox``; returns the path written for each address.

    Raises:
        MailboxExportError: ``fmt`` is not maildir or mbox, or ``directory`` holds files that an
            earlier export did not write (real mail is never overwritten).
    """
    if fmt not in MAILBOX_FORMATS:
        raise MailboxExportError(f"mailbox format must be maildir or mbox, got {fmt!r}")
    root = Path(directory)
    if root.exists() and not root.is_dir():
        raise MailboxExportError(f"{root}: is a file; give a folder for the mailboxes")
    if root.is_dir() and any(root.iterdir()) and not (root / MARKER).exists():
        raise MailboxExportError(
            f"{root}: holds files that mailsim did not write; give an empty or a new folder"
        )
    root.mkdir(parents=True, exist_ok=True)
    (root / MARKER).write_text(
        "Mailboxes exported by mailsim; the next export into this folder replaces them.\n",
        encoding="utf-8",
    )
    written: dict[str, Path] = {}
    for address, box in user_mailboxes(world, records).items():
        if fmt == "maildir":
            written[address] = export_maildir(box, root / address, replace=True)
        else:
            written[address] = export_mbox(box, root / f"{address}.mbox", replace=True)
    return written
