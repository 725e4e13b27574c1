"""Trace levels, sinks, and the files written while a run goes: the same bytes as at the end."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from mailsim.trace.books import (
    Ledger,
    reconcile,
    summary_document,
    write_summary,
    write_summary_stream,
)
from mailsim.trace.events_file import dumps_event, load_events
from mailsim.trace.recorder import SUMMARY_TYPES, Recorder
from mailsim.trace.transcript import TRANSCRIPT_TYPES, TranscriptWriter, transcript


def _clock(times: list[float]):
    return lambda: times[0]


def test_each_sink_gets_the_types_it_wants_in_emission_order() -> None:
    rec = Recorder(strict=True)
    mail: list[str] = []
    lines: list[str] = []
    rec.subscribe(lambda r: mail.append(r["type"]), ["mail."])
    rec.subscribe(lambda r: lines.append(r["line"]), lambda kind: kind == "smtp.line")
    rec.emit("mail.submit", msg="m1", node="a", sender="x", rcpts=["y"], size=1)
    rec.emit_lines(
        "smtp.line", {"conn": 1, "side": "C", "src": "a", "dst": "b"}, ["EHLO a", "QUIT"]
    )
    rec.emit("link.down", a="a", b="b")
    assert mail == ["mail.submit"]
    assert lines == ["EHLO a", "QUIT"]
    assert [r["type"] for r in rec.records] == [
        "mail.submit",
        "smtp.line",
        "smtp.line",
        "link.down",
    ]


def test_emit_lines_keeps_the_documented_key_order_and_extra_fields_last() -> None:
    rec = Recorder()
    rec.emit_lines(
        "smtp.line", {"conn": 1, "side": "C", "src": "a", "dst": "b"}, ["x", "y"], elided=3
    )
    assert [list(r) for r in rec.records] == [
        ["t", "type", "conn", "side", "src", "dst", "line", "elided"]
    ] * 2
    assert [r["line"] for r in rec.records] == ["x", "y"]


def test_the_summary_level_keeps_the_summary_types_and_no_protocol_lines() -> None:
    rec = Recorder(level="summary")
    assert not rec.lines
    rec.emit("smtp.line", conn=1, side="C", src="a", dst="b", line="EHLO")
    rec.emit("tcp.open", conn=1, client="a", server="b", cport=1, sport=25)
    rec.emit("tcp.close", conn=1, by="a", how="fin")
    rec.emit("mail.deliver", msg="m", node="b", rcpt="r", mailbox="r")
    rec.emit("net.node", node="a", kind="host", site="", ip="192.0.2.1")
    assert [r["type"] for r in rec.records] == ["tcp.open", "mail.deliver", "net.node"]
    assert "mail." in SUMMARY_TYPES


def test_the_off_level_keeps_nothing_but_feeds_the_books() -> None:
    rec = Recorder(level="off")
    ledger = Ledger()
    rec.subscribe(ledger, ["mail.", "tcp.open"])
    rec.emit("mail.submit", msg="m", node="a", sender="s", rcpts=["r"], size=1)
    rec.emit("mail.deliver", msg="m", node="b", rcpt="r", mailbox="r")
    assert rec.records == []
    assert ledger.books().totals()["delivered"] == 1


def test_an_unknown_level_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="full, summary, off"):
        Recorder(level="some")


def test_a_streamed_events_file_is_what_write_events_writes(tmp_path: Path) -> None:
    rec = Recorder(keep=False)
    writer = rec.stream_to(tmp_path / "events.jsonl")
    kept = Recorder()
    for r in (rec, kept):
        r.emit("mail.submit", msg="m\u00e9", node="a", sender="s", rcpts={"b", "a"}, size=1)
        r.emit("dns.query", node="a", name="x", qtype="MX", rcode="NOERROR", answer=[10, "h"])
    writer.close()
    assert rec.records == []
    text = (tmp_path / "events.jsonl").read_text(encoding="utf-8")
    assert text == "".join(dumps_event(r) + "\n" for r in kept.records)
    assert load_events(tmp_path / "events.jsonl")[0]["rcpts"] == ["a", "b"]


def _connection_records(rng: random.Random) -> list[dict]:
    """Interleaved connections: lines, closes in either order, failures, one node talking to
    itself, one connection never closed, lines of a connection nobody opened."""
    records = []
    t = 0.0
    open_conns: dict[int, tuple[str, str]] = {}
    closed: dict[int, set[str]] = {}
    for conn in range(1, 40):
        t += rng.random()
        client, server = rng.choice([("pc", "mail"), ("mail", "mx"), ("mail", "mail")])
        records.append(
            {
                "t": t,
                "type": "tcp.open",
                "conn": conn,
                "client": client,
                "server": server,
                "cport": 1000 + conn,
                "sport": rng.choice([25, 587, 110, 2525]),
            }
        )
        if rng.random() < 0.15:
            records.append({"t": t + 1, "type": "tcp.fail", "conn": conn, "reason": "timeout"})
            continue
        open_conns[conn] = (client, server)
        closed[conn] = set()
        for _ in range(rng.randrange(3)):
            live = [c for c in open_conns if len(closed[c]) < 2]
            if not live:
                break
            c = rng.choice(live)
            a, b = open_conns[c]
            kind = rng.choice(["smtp.line", "pop3.line", "http.line"])
            side = rng.choice("CS")
            end = a if side == "C" else b
            if end in closed[c] and a != b:
                continue
            t += 0.01
            records.append(
                {
                    "t": t,
                    "type": kind,
                    "conn": c,
                    "side": side,
                    "src": a,
                    "dst": b,
                    "line": f"line {rng.randrange(100)}",
                }
            )
            if rng.random() < 0.3:
                closed[c].add(end)
                how = rng.choice(["fin", "fin", "reset", "timeout"])
                records.append({"t": t, "type": "tcp.close", "conn": c, "by": end, "how": how})
    records.append(
        {
            "t": t,
            "type": "smtp.line",
            "conn": 999,
            "side": "C",
            "src": "x",
            "dst": "y",
            "line": "nobody opened me",
        }
    )
    return records


@pytest.mark.parametrize("seed", range(30))
def test_the_transcript_written_as_it_goes_is_the_transcript_of_the_records(
    tmp_path: Path, seed: int
) -> None:
    records = _connection_records(random.Random(seed))
    writer = TranscriptWriter(tmp_path / "transcript.txt", end_time=records[-1]["t"])
    for record in records:
        if record["type"] in TRANSCRIPT_TYPES:
            writer(record)
    writer.close()
    assert (tmp_path / "transcript.txt").read_text(encoding="utf-8") == transcript(records)


def test_a_finished_connection_is_written_before_the_run_ends(tmp_path: Path) -> None:
    writer = TranscriptWriter(tmp_path / "t.txt", end_time=10.0)
    writer(
        {
            "t": 0.0,
            "type": "tcp.open",
            "conn": 1,
            "client": "a",
            "server": "b",
            "cport": 1,
            "sport": 25,
        }
    )
    writer(
        {
            "t": 0.1,
            "type": "smtp.line",
            "conn": 1,
            "side": "S",
            "src": "b",
            "dst": "a",
            "line": "220 b",
        }
    )
    writer({"t": 0.2, "type": "tcp.close", "conn": 1, "by": "a", "how": "fin"})
    writer._file.flush()
    assert "220 b" not in (tmp_path / "t.txt").read_text()  # b may still send
    writer({"t": 0.3, "type": "tcp.close", "conn": 1, "by": "b", "how": "fin"})
    writer._file.flush()
    assert "220 b" in (tmp_path / "t.txt").read_text()
    writer.close()


def test_a_connection_open_at_the_end_is_marked_at_the_run_s_end(tmp_path: Path) -> None:
    opened = {"t": 1.0, "type": "tcp.open", "conn": 7, "client": "a", "server": "b"}
    opened |= {"cport": 1, "sport": 80}
    writer = TranscriptWriter(tmp_path / "t.txt", end_time=3600.0)
    writer(opened)
    writer.close()
    text = (tmp_path / "t.txt").read_text(encoding="utf-8")
    assert text.startswith("# mailsim transcript: simulated time 00:00:00.000 is 2026-01-05")
    assert "(HTTP)\n[01:00:00.000] -- still open when the run ended\n" in text
    assert text == transcript([opened], end_time=3600.0)


def _books_records() -> list[dict]:
    def r(t, type_, **f):
        return {"t": t, "type": type_, **f}

    return [
        r(0, "tcp.open", conn=1, client="a", server="b", cport=1, sport=25),
        r(1, "mail.queue", msg="m2", node="b", rcpts=["x@b"], queued=1),  # before its submit
        r(2, "mail.submit", msg="m1", node="a", sender="s@a", rcpts=["x@b", "y@b"], size=9),
        r(2, "mail.submit", msg="m2", node="b", sender="", rcpts=["x@b"], size=9, kind="dsn"),
        r(3, "mail.attempt", msg="m1", node="a", rcpts=["x@b", "y@b"], mx="b", conn=1),
        r(4, "mail.deliver", msg="m1", node="b", rcpt="x@b", mailbox="x"),
        r(
            5,
            "mail.defer",
            msg="m1",
            node="a",
            rcpt="y@b",
            reply="451 later",
            next_attempt=9,
            after_dot=True,
        ),
        r(6, "mail.deliver", msg="m1", node="b", rcpt="y@b", mailbox="y"),
        r(7, "mail.bounce", msg="m1", node="a", rcpt="y@b", reply="550 no", dsn="m9"),
        r(8, "mail.deliver", msg="m1", node="b", rcpt="x@b", mailbox="x"),
        r(9, "mail.lost", msg="zz", node="a", rcpt="q", cause="crash"),
    ]


def test_the_ledger_settles_the_books_record_by_record() -> None:
    ledger = Ledger()
    for record in _books_records():
        ledger(record)
    books = ledger.books()
    rows = {key: row.as_json() for key, row in books.rows.items()}
    assert rows[("m1", "x@b")]["status"] == "delivered" and rows[("m1", "x@b")]["duplicates"] == 1
    assert rows[("m1", "y@b")]["status"] == "delivered"  # another copy bounced (RFC 1047)
    assert "RFC 1047" in rows[("m1", "y@b")]["detail"]
    assert books.rows[("m2", "x@b")].copies == 1  # the copy queued before its submit counts
    assert books.connections == 1
    assert any("never submitted" in p for p in books.problems)
    assert any("notice m9 never appeared" in p for p in books.problems)
    assert reconcile(_books_records()).problems == books.problems


def test_the_streamed_summary_is_byte_identical_to_the_whole_document(tmp_path: Path) -> None:
    books = reconcile(_books_records())
    for rows in (books.rows.values(), []):
        document = summary_document(books, scenario="x\u00e9", seed=3, end_time=10.0)
        document["messages"] = [row.as_json() for row in rows]
        write_summary(tmp_path / "whole.json", document)
        head = {k: v for k, v in document.items() if k != "messages"}
        write_summary_stream(tmp_path / "streamed.json", head, rows)
        whole = (tmp_path / "whole.json").read_text(encoding="utf-8")
        assert (tmp_path / "streamed.json").read_text(encoding="utf-8") == whole
        assert json.loads(whole)["seed"] == 3
