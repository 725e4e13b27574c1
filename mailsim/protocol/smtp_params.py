"""ESMTP parameters of MAIL FROM and RCPT TO, as both SMTP machines exchange them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MailParams:
    """The ESMTP parameters of MAIL FROM, parsed (RFC 1870, 6152, 3461, 4954).

    Attributes:
        size: SIZE=n, the declared message size in octets.
        body: BODY=, ``"7BIT"`` or ``"8BITMIME"``.
        ret: RET=, ``"FULL"`` or ``"HDRS"`` (what a bounce should return, RFC 3461 4.3).
        envid: ENVID=, the envelope id, still xtext-encoded as sent (RFC 3461 4.4).
        auth: AUTH=, the authenticated submitter, xtext as sent, or ``"<>"`` (RFC 4954 5).
    """

    size: int | None = None
    body: str | None = None
    ret: str | None = None
    envid: str | None = None
    auth: str | None = None


@dataclass(frozen=True, slots=True)
class RcptParams:
    """The ESMTP parameters of RCPT TO, parsed (RFC 3461 4.1, 4.2).

    Attributes:
        notify: NOTIFY=, ``("NEVER",)`` or some of ``"SUCCESS"``, ``"FAILURE"``, ``"DELAY"``.
        orcpt: ORCPT=, the original recipient as sent, e.g. ``"rfc822;steve@india.com"``.
    """

    notify: tuple[str, ...] | None = None
    orcpt: str | None = None


def is_printable_word(text: str) -> bool:
    """Printable ASCII without spaces: safe to echo in a reply line."""
    return text.isascii() and text.isprintable() and " " not in text
