"""One message's journey as the sequence chart of a run too busy to draw whole (issue 11)."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from plot_traces import keep

import mailsim
import mailsim.plot
from mailsim.cli import main
from mailsim.plot import PlotError, message_story, render_all, sequence_diagram, telling_message
from mailsim.plot.sequence_plan import box_label
from mailsim.plot.topology import LinkInfo, NodeInfo, Topology
from mailsim.trace.connections import Connection, connections


@cache
def records(name: str) -> list[dict]:
    return mailsim.load(name).run().records


def _texts(fig: Any) -> str:
    return "\n".join(t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text")))


def _carried(recs: list[dict], msg: str, reader: str) -> set[int]:
    """The connections of ``msg`` found another way: its tries, the submission open while it
    was submitted, and ``reader``'s POP3 session that retrieved mail."""
    found = connections(recs)
    submit = next(r for r in recs if r["type"] == "mail.submit" and r["msg"] == msg)
    tries = {r["conn"] for r in recs if r["type"] == "mail.attempt" and r["msg"] == msg}
    submission = {
        c.conn
        for c in found.values()
        if c.role == "submission"
        and c.client == submit["node"]
        and c.opened <= submit["t"] + 1
        and c.end >= submit["t"]
    }
    fetch = {
        c.conn for c in found.values() if c.role == "mailbox" and c.client == reader and c.messages
    }
    assert len(submission) == 1 and len(fetch) == 1
    return tries | submission | fetch


def test_a_story_holds_the_submission_every_try_the_relay_and_the_fetch() -> None:
    recs = records("link-outage")
    story = message_story(recs, "m1@india.com")
    assert story.conns == _carried(recs, "m1@india.com", "steve-pc")
    failed = {r["conn"] for r in recs if r["type"] == "tcp.fail"}
    assert len(story.conns & failed) == 5  # the tries while the link is down
    assert (story.sender, story.rcpts) == ("james@india.com", ("steve@usa.com",))


def test_a_bounced_message_s_story_follows_its_report_home() -> None:
    recs = records("bounce-after-days")
    story = message_story(recs, "m1@india.com")
    # Every try, the submission, and James's POP3 session that retrieves the bounce report.
    assert story.conns == _carried(recs, "m1@india.com", "james-pc")
    texts = [aside.text for aside in story.asides]
    assert "india-mail gives up after 5 d and bounces it: a report goes back" in texts
    assert "usa-mail is down from 00:00:30 and stays down" in texts


def test_the_story_chart_draws_only_its_connections_and_says_what_the_waits_are() -> None:
    recs = records("link-outage")
    fig = sequence_diagram(recs, message="m1@india.com", size="slide")
    keep(fig, "story_link_outage")
    text = _texts(fig)
    assert "One message's journey: james@india.com → steve@usa.com (m1@india.com)" in text
    drawn = {int(n) for n in re.findall(r"\bconn (\d+)", text)}
    story = message_story(recs, "m1@india.com")
    failed = {r["conn"] for r in recs if r["type"] == "tcp.fail"}
    # Every connection that moved it is drawn (submission, relay, fetch); failed tries may fold.
    assert story.conns - failed <= drawn <= story.conns
    assert len(story.conns - failed) == 3
    assert "the link india-gw–usa-gw is down from 00:00:30 to 03:00:30" in text
    assert "it waits in india-mail's queue for the next try" in text
    assert "it waits in steve's mailbox on usa-mail until it is fetched" in text
    assert "the run's 46 other connections are not drawn" in text


def test_an_outage_off_the_message_s_way_is_not_mentioned() -> None:
    recs = records("link-outage")
    # The same trace with a second, unrelated outage: a link no route of the story uses.
    extra = [
        {"t": 40.0, "type": "link.down", "a": "james-pc", "b": "india-mail"},
        {"t": 50.0, "type": "link.up", "a": "james-pc", "b": "india-mail"},
    ]
    story = message_story([*recs, *extra], "m1@india.com")
    outages = [aside.text for aside in story.asides if aside.once]
    assert outages == ["the link india-gw–usa-gw is down from 00:00:30 to 03:00:30"]


def test_a_message_not_in_the_trace_is_named_with_those_that_are() -> None:
    with pytest.raises(PlotError, match=r"message 'm9@x' is not in the trace; .*m1@india\.com"):
        sequence_diagram(records("link-outage"), message="m9@x")


def _mail(t: float, what: str, msg: str, **more: Any) -> dict:
    return {"t": t, "type": f"mail.{what}", "msg": msg, "node": "a-mail", **more}


def test_the_telling_message_was_retried_and_reached_its_reader() -> None:
    recs = [
        _mail(1, "submit", "plain", kind="mail"),
        _mail(2, "deliver", "plain"),
        _mail(3, "fetch", "plain", user="u"),
        _mail(4, "submit", "unread", kind="mail"),
        _mail(5, "defer", "unread"),
        _mail(6, "defer", "unread"),
        _mail(7, "deliver", "unread"),
        _mail(8, "submit", "retried", kind="mail"),
        _mail(9, "defer", "retried"),
        _mail(10, "deliver", "retried"),
        _mail(11, "fetch", "retried", user="u"),
        _mail(12, "submit", "report", kind="dsn"),
        _mail(13, "defer", "report"),
        _mail(14, "deliver", "report"),
        _mail(15, "fetch", "report", user="u"),
    ]
    assert telling_message(recs) == "retried"
    assert telling_message(recs[:7]) == "plain"  # reached its reader, though never retried
    assert telling_message([]) is None


def test_render_all_tells_one_message_s_journey_only_for_a_busy_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[Any] = []

    def spy(recs: Any, **options: Any) -> Any:
        asked.append(options["message"])
        return sequence_diagram(recs, **options)

    monkeypatch.setattr(mailsim.plot, "sequence_diagram", spy)
    recs = records("link-outage")  # 54 connections: drawn whole
    render_all(recs, tmp_path)
    monkeypatch.setattr(mailsim.plot, "STORY_AFTER", 50)
    render_all(recs, tmp_path)
    render_all(recs, tmp_path, message=None)
    assert asked == [None, "m1@india.com", None]


def test_mailsim_plot_message_redraws_one_story_or_says_what_exists(tmp_path: Path) -> None:
    mailsim.load("link-outage").run().save(tmp_path, figures=False)
    runner = CliRunner()
    done = runner.invoke(main, ["plot", str(tmp_path), "--message", "m1@india.com"])
    assert done.exit_code == 0, done.output
    assert (tmp_path / "sequence.png").is_file()
    wrong = runner.invoke(main, ["plot", str(tmp_path), "--message", "m2@india.com"])
    assert wrong.exit_code == 2
    assert wrong.output.strip().splitlines() == [
        "--message: message 'm2@india.com' is not in the trace; its messages are m1@india.com"
    ]
    assert runner.invoke(main, ["plot", str(tmp_path), "--message", "all"]).exit_code == 0


def test_a_box_says_what_its_connection_did_with_the_messages() -> None:
    relay = Connection(5, "india-mail", "usa-mail", 25, 0.0, "relay", messages=3, round_trips=10)
    fetch = Connection(6, "steve-pc", "usa-mail", 110, 0.0, "mailbox", messages=1)
    check = Connection(7, "steve-pc", "usa-mail", 110, 0.0, "mailbox")
    assert box_label(relay)[0] == "conn 5: relayed 3 messages"
    assert box_label(fetch)[0] == "conn 6: fetched 1 message"
    assert box_label(check)[0] == "conn 7: 0 messages"


def test_lanes_of_two_sites_out_of_four_keep_the_hosts_at_the_outer_ends() -> None:
    # A story between India and the UK in a four-country world: the UK's host was drawn
    # between the two mail servers, because the middle was taken over all four sites.
    topo = Topology()
    for name, kind, site in [
        ("india-pc", "host", "India"),
        ("india-mail", "mailserver", "India"),
        ("uk-mail", "mailserver", "UK"),
        ("uk-pc", "host", "UK"),
        ("brazil-mail", "mailserver", "Brazil"),
        ("usa-mail", "mailserver", "USA"),
    ]:
        topo.nodes[name] = NodeInfo(name, kind, site, "")
    topo.links.append(LinkInfo("india-mail", "uk-mail", 0.1, 1e6, 0.0))
    names = ["uk-pc", "india-mail", "uk-mail", "india-pc"]
    assert topo.lane_order(names) == ["india-pc", "india-mail", "uk-mail", "uk-pc"]


def test_a_narrow_box_keeps_its_count_and_drops_the_verb() -> None:
    fig = sequence_diagram(records("persistent-connection"), hide_data=True, size="slide")
    texts = [t.get_text() for t in fig.findobj(lambda a: a.get_gid() == "connection-box-label")]
    heads = [t for t in texts if t.startswith("conn ")]
    assert heads and not any("…" in t for t in heads), heads


def test_mailsim_run_message_draws_that_journey_or_keeps_the_run_and_says_what_exists(
    tmp_path: Path,
) -> None:
    runner = CliRunner()
    out = tmp_path / "run"
    (out).mkdir()
    (out / "sequence.png").write_bytes(b"an earlier run's chart")
    wrong = runner.invoke(
        main, ["run", "link-outage", "--out", str(out), "--message", "m9@x", "--pcap"]
    )
    assert wrong.exit_code == 2
    said = [line for line in wrong.output.splitlines() if line.startswith("--message: ")]
    assert said == [
        "--message: message 'm9@x' is not in the trace; its messages are m1@india.com; no "
        f"sequence.png was drawn, 'mailsim plot {out} --message ID' draws it"
    ]
    # Everything but that chart is written (and no earlier run's chart is left to mislead).
    written = {p.name for p in out.iterdir()}
    assert {"events.jsonl", "summary.json", "timeline.png", "topology.png", "trace.pcap"} <= written
    assert "sequence.png" not in written
    args = ["run", "link-outage", "--out", str(out), "--message", "m1@india.com", "-q"]
    assert runner.invoke(main, args).exit_code == 0
    assert (out / "sequence.png").is_file()


def test_mail_delivered_where_it_was_handed_in_has_its_submission_in_the_journey() -> None:
    # The tutorial's typed session hands the mail to india-mail for a local mailbox: no queue id
    # ("250 Message accepted for delivery."), yet connection 1 carried it.
    story = message_story(records("seed-transcript"), "INDIAMAIL00001@India.com")
    assert story.conns == {1, 2}  # the typed session and Steve's POP3 fetch


def test_a_trace_without_some_connections_opening_tells_the_rest() -> None:
    recs = records("link-outage")
    first_try = next(r["conn"] for r in recs if r["type"] == "mail.attempt")
    cut = [r for r in recs if not (r["type"] == "tcp.open" and r["conn"] == first_try)]
    story = message_story(cut, "m1@india.com")
    assert first_try not in story.conns and len(story.conns) == 7
    only_mail = [r for r in recs if r["type"].startswith("mail.")]
    assert message_story(only_mail, "m1@india.com").conns == frozenset()


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--trace", "summary"], "--trace summary records no protocol lines to draw"),
        (["--no-figures"], "--no-figures draws no figures"),
    ],
)
def test_mailsim_run_message_without_a_sequence_chart_is_refused_before_the_run(
    tmp_path: Path, extra: list[str], says: str
) -> None:
    out = tmp_path / "run"
    args = ["run", "link-outage", "--out", str(out), "--message", "m1@india.com", *extra]
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code == 2 and says in refused.output
    assert not out.exists()


def test_the_journey_s_note_counts_the_connections_it_draws() -> None:
    # At slide size three of m1's five failed tries fold into a band: the note said "Drawn:
    # the 8 connections" over a chart of five.
    recs = records("link-outage")
    fig = sequence_diagram(
        recs, message="m1@india.com", hide_data=True, group_bursts=True, max_rows=160, size="slide"
    )
    gids = ("connection-label", "connection-box-label", "tcp-fail-label")
    drawn = {
        int(match.group(1))
        for gid in gids
        for text in fig.findobj(lambda a, gid=gid: a.get_gid() == gid)
        if (match := re.match(r"conn (\d+)\b", text.get_text()))
    }
    story = message_story(recs, "m1@india.com")
    assert drawn < story.conns  # some of its tries are folded
    note = " ".join(t.get_text() for t in fig.texts).replace("\n", " ")
    said = re.search(r"Drawn: (\d+) of the (\d+) connections that carried m1@india.com", note)
    assert said, note
    assert (int(said.group(1)), int(said.group(2))) == (len(drawn), len(story.conns))
    assert "3 of 5 failed tries" in note  # what was left out, and where it is counted
