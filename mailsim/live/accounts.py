"""Who has a mailbox on the live server: users, their passwords, and the domains served."""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from pathlib import Path

from mailsim.live.storage import check_mailbox_name
from mailsim.protocol.smtp_address import QUOTED_STRING, local_part, unquote_local_part

__all__ = ["Accounts", "parse_user", "read_users_file"]


def read_users_file(path: str | Path) -> dict[str, str]:
    """Users from a file of ``name:password`` lines; blank lines and ``#`` comments are skipped.

    Raises:
        ValueError: a line is malformed; the message is ``FILE:LINE: what is wrong``.
        OSError: the file cannot be read.
    """
    users: dict[str, str] = {}
    text = Path(path).read_text(encoding="utf-8")
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            name, password = parse_user(line)
        except ValueError as error:
            raise ValueError(f"{path}:{number}: {error}") from None
        if name.lower() in {known.lower() for known in users}:
            raise ValueError(f"{path}:{number}: user {name!r} is listed twice")
        users[name] = password
    return users


def parse_user(text: str) -> tuple[str, str]:
    """``"Steve:secret"`` -> ``("Steve", "secret")``; ValueError with a clear message otherwise.

    A name may be written as a quoted local part, ``"john smith":secret`` (RFC 5321 4.1.2), which
    is also how a name holding a ":" is written; the user is then ``john smith``.
    """
    quoted = QUOTED_STRING.match(text.strip())
    if quoted is not None:
        rest = text.strip()[quoted.end() :]
        name, colon, password = unquote_local_part(quoted.group()), rest[:1], rest[1:]
        colon = colon if colon == ":" else ""
    else:
        name, colon, password = text.partition(":")
    name = name.strip()
    if not colon or not name or not password:
        raise ValueError(f"expected NAME:PASSWORD (like Steve:secret), got {text!r}")
    if "\r" in password or "\n" in password:
        raise ValueError("a password cannot contain a line break")
    check_mailbox_name(name)
    return name, password


class Accounts:
    """Who has a mailbox here: user names (local parts at every domain) and their passwords.

    Local parts are matched without regard to case, as most servers do (RFC 5321 2.4 leaves it to
    the server): user ``Steve`` gets ``steve@india.com`` and ``STEVE@India.COM``.

    Args:
        users: user name -> password.
        domains: the domains this server is the final destination for.
    """

    def __init__(self, users: Mapping[str, str], domains: Sequence[str]) -> None:
        #: The domains served, lower case.
        self.domains = frozenset(domain.lower().rstrip(".") for domain in domains)
        #: user name (as configured) -> password.
        self.users = dict(users)
        self._by_lower: dict[str, str] = {}
        for name in self.users:
            check_mailbox_name(name)
            if name.lower() in self._by_lower:
                raise ValueError(
                    f"users {self._by_lower[name.lower()]!r} and {name!r} differ only "
                    "in case; local parts are matched without case"
                )
            self._by_lower[name.lower()] = name

    def user(self, login: str) -> str | None:
        """The configured user for a login name (``steve``, ``steve@india.com``, or with a quoted
        local part ``"john smith"@india.com``), or None."""
        _, at, domain = login.rpartition("@")
        if at and domain.lower() not in self.domains:
            return None
        return self._by_lower.get(local_part(login).lower())

    def check_password(self, login: str, password: str) -> str | None:
        """The user if ``password`` is right for ``login``, else None (constant-time compare)."""
        name = self.user(login)
        expected = self.users.get(name, "") if name is not None else ""
        ok = hmac.compare_digest(expected.encode("utf-8"), password.encode("utf-8"))
        return name if ok and name is not None else None

    def is_local(self, address: str) -> bool:
        """Whether ``address`` is at one of our domains (or has no domain: ``postmaster``)."""
        _, at, domain = address.rpartition("@")
        return not at or domain.lower().rstrip(".") in self.domains

    def mailbox_for(self, address: str) -> str | None:
        """The mailbox a local ``address`` is delivered to, or None for an unknown user.

        ``postmaster`` (RFC 5321 4.5.1) goes to a user of that name if there is one, else to a
        ``postmaster`` Maildir that has no POP3 login (add ``--user postmaster:...`` to read it).
        """
        local = local_part(address)  # "john smith"@india.com is user john smith
        name = self._by_lower.get(local.lower())
        if name is None and local.lower() == "postmaster":
            return "postmaster"
        return name
