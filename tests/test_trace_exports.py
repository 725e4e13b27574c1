"""The transcript, the books and the DataFrames are derived from trace records alone."""

from __future__ import annotations

from mailsim.trace import Recorder
from mailsim.trace.exports import format_time, reconcile, summary, transcript


def _clock():
    now = [0.0]
    return now, (lambda: now[0])


def test_format_time_shows_days_only_when_needed():
    assert format_time(0.0) == "00:00:00.000"
    assert format_time(61.2345) == "00:01:01.234"
    # 5 days, 1 hour, 2 minutes, 3.5 seconds = 5*86400 + 3600 + 120 + 3.5
    assert format_time(5 * 86400 + 3723.5) == "5d 01:02:03.500"


def test_transcript_groups_lines_by_connection_with_times():
    now, clock = _clock()
    rec = Recorder(clock, strict=True)
    rec.emit("tcp.open", conn=1, client="india-mail", server="usa-mail", cport=40000, sport=25)
    now[0] = 0.22
    rec.emit("smtp.line", conn=1, side="S", src="usa-mail", dst="india-mail", line="220 India.com")
    now[0] = 0.33
    rec.emit("smtp.line", conn=1, side="C", src="india-mail", dst="usa-mail", line="HELO USA.com")
    rec.emit("tcp.open", conn=2, client="india-mail", server="uk-mail", cport=40001, sport=25)
    now[0] = 30.0
    rec.emit("tcp.fail", conn=2, reason="timeout")
    text = transcript(rec.records)
    assert text.split("\n\n", 1)[1].splitlines()[:3] == [
        "=== connection 1 at 00:00:00.000: india-mail -> usa-mail:25 (SMTP)",
        "[00:00:00.220] S: 220 India.com",
        "[00:00:00.330] C: HELO USA.com",
    ]
    assert "[00:00:30.000] -- connection failed: timeout" in text
    assert "usa-mail" not in transcript(rec.records, connection=2)


def test_transcript_header_names_the_epoch_of_the_date_headers_and_the_pcap():
    from mailsim.mail.message import SIM_EPOCH, format_date
    from mailsim.trace.pcap import PCAP_EPOCH

    rec = Recorder(lambda: 0.0, strict=True)
    rec.emit("tcp.open", conn=1, client="a", server="b", cport=40000, sport=25)
    header = transcript(rec.records).split("\n\n", 1)[0]
    assert "00:00:00.000 is 2026-01-05 09:00:00 UTC" in header
    assert "Date:" in header and "trace.pcap" in header
    assert PCAP_EPOCH == SIM_EPOCH
    assert format_date(0.0).startswith("Mon, 05 Jan 2026 09:00:00")
    # One connection's block alone has no header.
    assert transcript(rec.records, connection=1).startswith("=== connection 1")


def test_a_connection_still_open_at_the_end_has_its_block_marked_open():
    # busy-day had 8,385 streams in trace.pcap and 8,384 blocks: a connection opened just
    # before the end, with no line and no close yet, was left out.
    now, clock = _clock()
    rec = Recorder(clock, strict=True)
    rec.emit("tcp.open", conn=1, client="india-mail", server="usa-mail", cport=40000, sport=25)
    rec.emit("smtp.line", conn=1, side="S", src="usa-mail", dst="india-mail", line="220 hi")
    now[0] = 5.0
    rec.emit("tcp.open", conn=2, client="steve-pc", server="usa-mail", cport=40001, sport=110)
    blocks = transcript(rec.records, end_time=7.5).split("\n\n")[1:]
    assert blocks[0].splitlines()[-1] == "[00:00:07.500] -- still open when the run ended"
    assert blocks[1].splitlines() == [
        "=== connection 2 at 00:00:05.000: steve-pc -> usa-mail:110 (POP3)",
        "[00:00:07.500] -- still open when the run ended",
    ]
    # Without end_time, the last record's time stands for the end.
    assert "[00:00:05.000] -- still open" in transcript(rec.records, connection=2)


def _submit(rec, msg, rcpts, sender="james@india.com", **extra):
    rec.emit("mail.submit", msg=msg, node="james-pc", sender=sender, rcpts=rcpts, size=100, **extra)


def test_books_balance_for_delivered_bounced_and_queued_pairs():
    now, clock = _clock()
    rec = Recorder(clock, strict=True)
    _submit(rec, "m1", ["steve@usa.com", "ann@uk.com", "bob@usa.com"])
    rec.emit(
        "mail.attempt", msg="m1", node="india-mail", rcpts=["steve@usa.com"], mx="usa-mail", conn=3
    )
    now[0] = 10.0
    rec.emit("mail.deliver", msg="m1", node="usa-mail", rcpt="steve@usa.com", mailbox="steve")
    rec.emit(
        "mail.bounce",
        msg="m1",
        node="india-mail",
        rcpt="ann@uk.com",
        reply="550 5.1.1 no",
        dsn="d1",
    )
    _submit(rec, "d1", ["james@india.com"], sender="", kind="dsn")
    rec.emit("mail.deliver", msg="d1", node="india-mail", rcpt="james@india.com", mailbox="james")
    books = reconcile(rec.records)
    assert books.balanced, books.problems
    assert books.rows[("m1", "steve@usa.com")].latency == 10.0
    assert books.rows[("m1", "steve@usa.com")].attempts == 1
    totals = books.totals()
    assert (totals["submitted"], totals["delivered"], totals["bounced"], totals["queued"]) == (
        3,
        1,
        1,
        1,
    )
    assert totals["dsn_delivered"] == 1
    doc = summary(rec.records, scenario="s", seed=1, end_time=20.0)
    assert doc["totals"]["connections"] == 0 and doc["balanced"]


def test_books_flag_a_pair_that_ends_two_ways_and_a_bounce_without_notice():
    _, clock = _clock()
    rec = Recorder(clock, strict=True)
    _submit(rec, "m1", ["steve@usa.com"])
    rec.emit("mail.deliver", msg="m1", node="usa-mail", rcpt="steve@usa.com", mailbox="steve")
    rec.emit("mail.bounce", msg="m1", node="india-mail", rcpt="steve@usa.com", reply="550")
    _submit(rec, "m2", ["ann@uk.com"])
    rec.emit("mail.bounce", msg="m2", node="india-mail", rcpt="ann@uk.com", reply="550")
    books = reconcile(rec.records)
    assert not books.balanced
    assert len(books.problems) == 2


def test_a_second_delivery_of_the_same_pair_counts_as_a_duplicate():
    _, clock = _clock()
    rec = Recorder(clock, strict=True)
    _submit(rec, "m1", ["steve@usa.com"])
    rec.emit("mail.deliver", msg="m1", node="usa-mail", rcpt="steve@usa.com", mailbox="steve")
    rec.emit("mail.duplicate", msg="m1", node="usa-mail", rcpt="steve@usa.com")
    books = reconcile(rec.records)
    assert books.balanced
    assert books.totals()["duplicated"] == 1


def test_deliveries_frame_has_one_row_per_pair():
    _, clock = _clock()
    rec = Recorder(clock, strict=True)
    _submit(rec, "m1", ["a@x.com", "b@x.com"])
    from mailsim.trace.exports import deliveries_frame, events_frame

    frame = deliveries_frame(rec.records)
    assert list(frame["to"]) == ["a@x.com", "b@x.com"]
    assert list(frame["status"]) == ["queued", "queued"]
    assert list(events_frame(rec.records).columns[:2]) == ["t", "type"]
