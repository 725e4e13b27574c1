"""Finding things in a run's trace, in the words a notebook asks its questions in.

"The connection from india-mail to usa-mail", "the reply to DATA", "when Steve fetched the
message": each is a short walk over the trace records. The notebooks and the exercise checks
ask them here, so neither holds a copy of the other's code, and a student reads
``lookup.connection(result, client="india-mail", server="usa-mail")`` instead of a page of pandas.
Every function takes a :class:`~mailsim.scenario.result.Result` or a list of trace records.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

Record = dict[str, Any]


class NotInTrace(LookupError):
    """The trace holds nothing that matches; the message says what was looked for."""


def records_of(run: Any) -> Sequence[Record]:
    """The trace records of a Result, or the records themselves."""
    records: Sequence[Record] = run.records if hasattr(run, "records") else run
    return records


def every(run: Any, type: str, **fields: Any) -> list[Record]:
    """Every record of ``type`` whose fields equal ``fields`` (``every(r, "mail.deliver")``)."""
    return [
        rec
        for rec in records_of(run)
        if rec["type"] == type and all(rec.get(k) == v for k, v in fields.items())
    ]


def first(run: Any, type: str, **fields: Any) -> Record:
    """The first record of ``type`` with ``fields``.

    Raises:
        NotInTrace: there is none.
    """
    found = every(run, type, **fields)
    if not found:
        wanted = ", ".join(f"{k}={v!r}" for k, v in fields.items())
        raise NotInTrace(f"no {type} record{f' with {wanted}' if wanted else ''} in this run")
    return found[0]


def connections(
    run: Any,
    *,
    client: str | None = None,
    server: str | None = None,
    port: int | None = None,
    established: bool | None = None,
) -> list[Record]:
    """The ``tcp.open`` records of the connections that match, in the order they opened.

    Args:
        client, server: node names; port: the server's port (25, 587, 110, 80).
        established: True for only those whose handshake completed, False for only the failed.
    """
    records = records_of(run)
    done = {rec["conn"] for rec in records if rec["type"] == "tcp.established"}
    out = []
    for rec in records:
        if rec["type"] != "tcp.open":
            continue
        if client is not None and rec["client"] != client:
            continue
        if server is not None and rec["server"] != server:
            continue
        if port is not None and rec["sport"] != port:
            continue
        if established is not None and (rec["conn"] in done) != established:
            continue
        out.append(rec)
    return out


def connection(
    run: Any,
    *,
    client: str | None = None,
    server: str | None = None,
    port: int | None = None,
    nth: int = 0,
) -> int:
    """The id (``conn``) of the ``nth`` established connection that matches (see connections).

    Raises:
        NotInTrace: fewer such connections.
    """
    found = connections(run, client=client, server=server, port=port, established=True)
    if len(found) <= nth:
        wanted = " ".join(
            f"{k} {v}" for k, v in (("from", client), ("to", server), ("port", port)) if v
        )
        raise NotInTrace(f"only {len(found)} established connection(s) {wanted} in this run")
    return int(found[nth]["conn"])


def protocol_lines(run: Any, conn: int, side: str | None = None) -> list[Record]:
    """The SMTP, POP3 or HTTP line records of connection ``conn`` (one side: ``"C"``/``"S"``)."""
    return [
        rec
        for rec in records_of(run)
        if rec["type"].endswith(".line")
        and rec.get("conn") == conn
        and (side is None or rec["side"] == side)
    ]


def lines(run: Any, conn: int, side: str | None = None) -> list[str]:
    """The texts of connection ``conn``'s protocol lines, in order."""
    return [rec["line"] for rec in protocol_lines(run, conn, side)]


def exchanges(run: Any, conn: int) -> Iterator[tuple[Record | None, list[Record]]]:
    """The dialogue of ``conn`` as (command, replies) pairs: each client line with the server
    lines sent after it and before the next client line. The greeting comes with command None."""
    command: Record | None = None
    replies: list[Record] = []
    started = False
    for rec in protocol_lines(run, conn):
        if rec["side"] == "C":
            if started:
                yield command, replies
            command, replies, started = rec, [], True
        else:
            replies.append(rec)
            started = True
    if started:
        yield command, replies


def reply_to(run: Any, conn: int, command: str) -> str:
    """The last line of the server's answer to the first client line starting with ``command``
    (case-insensitive) on ``conn``, e.g. ``reply_to(result, 3, "DATA")`` -> ``"354 ..."``.

    With PIPELINING several commands go out before their replies; the replies then come in the
    order of the commands (RFC 2920 3.1), so the answer is found by counting.

    Raises:
        NotInTrace: no such command, or no reply to it.
    """
    sent = protocol_lines(run, conn, "C")
    replies = [r["line"] for r in protocol_lines(run, conn, "S")]
    finals = [line for line in replies if len(line) < 4 or line[3] != "-"]
    # finals[0] is the greeting; each command that expects a reply takes the next one. Lines of
    # message text (between 354 and the lone dot) expect none.
    position = 1
    in_data = False
    for rec in sent:
        text = rec["line"]
        if in_data and text != ".":
            continue
        in_data = False
        if text.upper().startswith(command.upper()):
            if position < len(finals):
                return str(finals[position])
            break
        if text.upper() == "DATA" and position < len(finals) and finals[position][:3] == "354":
            in_data = True
        position += 1
    raise NotInTrace(f"no reply to a {command!r} command on connection {conn}")
