"""Checks of notebook 01, "Meet SMTP": the dialogue, the reply codes, HELO and EHLO."""

from __future__ import annotations

from typing import Any

from mailsim.protocol.smtp import Reply
from mailsim.teach import lookup
from mailsim.teach.checking import Verdict, same, same_mapping, same_set

#: What a client does on each first digit of a reply (RFC 5321 4.2.1), in the notebook's words.
MEANINGS = ("done", "go on", "try again later", "failed for good")


def meaning_of(code: int) -> str:
    """The notebook's word for what a client does on ``code``, from the protocol's own rules."""
    reply = Reply.of(code, "x")
    if reply.is_permanent:
        return "failed for good"
    if reply.is_transient:
        return "try again later"
    return "done" if code < 300 else "go on"


def check_go_ahead_code(answer: Any, result: Any, conn: int) -> Verdict:
    """The reply code that tells the client to send the message text."""
    code = int(lookup.reply_to(result, conn, "DATA")[:3])
    return same(
        answer,
        code,
        hint="find the line the client sends just before the two lines of the message, and "
        "give the three digits of the server's answer to it, as a number",
    )


def extensions_announced(result: Any, conn: int) -> set[str]:
    """The extension keywords of the server's EHLO reply on ``conn`` (RFC 5321 4.1.1.1)."""
    ehlo = next(
        replies
        for command, replies in lookup.exchanges(result, conn)
        if command is not None and command["line"].upper().startswith("EHLO")
    )
    # The first line names the server; each further line is one keyword and its parameters.
    return {rec["line"][4:].split(" ")[0].upper() for rec in ehlo[1:]}


def check_extensions(answer: Any, result: Any, conn: int) -> Verdict:
    """The extensions the server announced in its EHLO reply."""
    return same_set(
        answer,
        extensions_announced(result, conn),
        hint="read the 250- lines that answer EHLO; the first names the server, each other "
        "line starts with one extension's keyword (leave out numbers such as 10000000)",
    )


def check_meanings(answer: Any) -> Verdict:
    """What the client does on 250, 354, 451 and 550."""
    return same_mapping(
        answer,
        {code: meaning_of(code) for code in (250, 354, 451, 550)},
        hint=f"the first digit decides; use the words {', '.join(repr(m) for m in MEANINGS)}",
    )
