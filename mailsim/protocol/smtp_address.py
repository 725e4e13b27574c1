r"""Mailbox addresses as SMTP writes them (RFC 5321 4.1.2): a local part, "@", a domain.

A local part is a dot-string (``james.smith``) or a quoted string (``"john smith"``), in which a
backslash makes the next character plain (``"a\"b"``). Two spellings of the same characters name
the same mailbox: ``"james"@india.com`` is ``james@india.com``, and ``"john\ smith"`` is
``"john smith"``. So mailsim never compares addresses as written: :func:`local_part` gives the
characters of the mailbox name, and :func:`canonical_address` the one spelling RFC 5321 4.1.2
asks senders to use (quoted only when the characters are not a dot-string). Like Postfix, mailsim
then matches local parts without regard to case (RFC 5321 2.4 leaves that to the server).
"""

from __future__ import annotations

import re

__all__ = [
    "DOT_STRING",
    "QUOTED_STRING",
    "address_key",
    "canonical_address",
    "local_part",
    "quote_local_part",
    "unquote_local_part",
]

# RFC 5322 3.2.3 atext; RFC 5321 4.1.2 Dot-string = Atom *("." Atom).
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
#: A local part that needs no quotes.
DOT_STRING = re.compile(rf"{_ATOM}(?:\.{_ATOM})*")
#: RFC 5321 4.1.2 Quoted-string: qtextSMTP is printable ASCII but '"' and '\', and
#: quoted-pairSMTP is '\' before any printable ASCII character (a space included).
QUOTED_STRING = re.compile(r'"(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\[\x20-\x7e])*"')
_QUOTED_PAIR = re.compile(r"\\([\x20-\x7e])")
_NEEDS_BACKSLASH = re.compile(r'(["\\])')


def unquote_local_part(written: str) -> str:
    r"""The characters a local part names: ``"john\ smith"`` -> ``john smith``.

    A dot-string is returned as it is; so is anything that is not a whole quoted string.
    """
    if QUOTED_STRING.fullmatch(written) and len(written) >= 2:
        return _QUOTED_PAIR.sub(r"\1", written[1:-1])
    return written


def quote_local_part(local: str) -> str:
    """The local part written as RFC 5321 4.1.2 asks: bare when it is a dot-string, else quoted.

    ``john.smith`` stays as it is; ``john smith`` becomes ``"john smith"`` and ``a"b`` becomes
    ``"a\\"b"``.
    """
    if DOT_STRING.fullmatch(local):
        return local
    return '"' + _NEEDS_BACKSLASH.sub(r"\\\1", local) + '"'


def local_part(address: str) -> str:
    """The mailbox name of ``address``: its local part's characters, quotes undone.

    The domain follows the last "@" (a domain has none, a quoted local part may). An address
    without "@" (``postmaster``, RFC 5321 4.5.1) is all local part.
    """
    written = address.rpartition("@")[0] if "@" in address else address
    return unquote_local_part(written)


def canonical_address(address: str) -> str:
    """One spelling for each mailbox: the local part quoted only if it must be, the domain in
    lower case. ``"James"@India.COM`` -> ``James@india.com``."""
    if "@" not in address:
        return quote_local_part(unquote_local_part(address))
    written, _, domain = address.rpartition("@")
    return f"{quote_local_part(unquote_local_part(written))}@{domain.lower()}"


def address_key(address: str) -> str:
    """What two addresses of the same mailbox have in common, for comparing and looking up."""
    return canonical_address(address).lower()
