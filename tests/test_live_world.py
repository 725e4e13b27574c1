"""A scenario's servers live on 127.0.0.1 (``mailsim serve SCENARIO``): the tutorial for real.

The servers of ``link-outage`` run on a fast clock (one real second is an hour, so the scenario's
30-40 minute retries come every half second). smtplib submits as James with AUTH, the route is
cut by hand, the message waits in India's queue and is retried on the policy's schedule, the
route heals, the next retry delivers it and poplib as Steve reads it; a permanent failure
bounces back to James; swaks submits with AUTH; and a ``kill -9`` of the serving process while
200 messages are queued loses none of them.
"""

from __future__ import annotations

import email
import json
import os
import poplib
import shutil
import signal
import smtplib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from waiting import wait_for

import mailsim
from mailsim.live.background import BackgroundRun
from mailsim.live.world import LiveError

pytestmark = pytest.mark.live

HOUR = 3600.0
#: One real second is an hour of scenario time.
FAST = 3600.0
JAMES, STEVE = "james@india.com", "steve@usa.com"


def of_type(records: list[dict[str, Any]], kind: str, **match: Any) -> list[dict[str, Any]]:
    return [
        r for r in records if r["type"] == kind and all(r.get(k) == v for k, v in match.items())
    ]


@pytest.fixture
def outage(tmp_path: Path) -> Iterator[BackgroundRun]:
    """link-outage live, after its scheduled three-hour outage (three real seconds) is over."""
    with mailsim.serve("link-outage", tmp_path / "run", time_scale=FAST) as run:
        run.wait_for(lambda rs: of_type(rs, "link.up"), timeout=20)
        yield run


def submit(run: BackgroundRun, to: list[str], subject: str = "Books", count: int = 1) -> None:
    """James submits on india-mail's submission port with AUTH, as his user agent would."""
    with smtplib.SMTP("127.0.0.1", run.ports["india-mail"].submission, timeout=10) as smtp:
        smtp.login(JAMES, "grammar")
        for n in range(count):
            text = f"Subject: {subject} {n}\r\nMessage-ID: <{subject.lower()}-{n}@india.com>\r\n"
            smtp.sendmail(JAMES, to, text + "\r\nDo you have a Grammar Book?\r\n")


def fetch(port: int, user: str, password: str) -> list[bytes]:
    pop = poplib.POP3("127.0.0.1", port, timeout=10)
    pop.user(user)
    pop.pass_(password)
    count, _ = pop.stat()
    messages = [b"\r\n".join(pop.retr(n)[1]) for n in range(1, count + 1)]
    pop.quit()
    return messages


def test_the_story_queued_through_a_cut_retried_on_schedule_delivered_after_the_heal(
    outage: BackgroundRun,
) -> None:
    run = outage
    assert "india-gw - usa-gw" in run.control("cut", "india-mail", "usa-mail")
    submit(run, [STEVE])
    # Two failed tries while the route is cut: each a connect that times out.
    defers = run.wait_for(lambda rs: len(d := of_type(rs, "mail.defer")) >= 2 and d, timeout=20)
    for defer in defers:
        assert "Connection timed out" in defer["reply"]
        # The scenario's policy: 30 minutes plus up to 10 minutes of jitter.
        assert 1800 <= defer["next_attempt"] - defer["t"] <= 2400
    assert "1 queued" in run.control("status")
    run.control("heal")
    run.wait_for(lambda rs: of_type(rs, "mail.sent"), timeout=20)
    records = run.records
    attempts = of_type(records, "mail.attempt", node="india-mail")
    # Every retry came when the policy said (after its time, without the runner dawdling).
    for defer, attempt in zip(of_type(records, "mail.defer"), attempts[1:], strict=False):
        assert defer["next_attempt"] <= attempt["t"] < defer["next_attempt"] + 0.1 * HOUR
    (sent,) = of_type(records, "mail.sent")
    assert sent["mx"] == "usa-mail.usa.com" and sent["reply"].startswith("250 2.0.0 Ok: queued as")
    [message] = fetch(run.ports["usa-mail"].pop3, "steve", "atlas")
    parsed = email.message_from_bytes(message)
    assert parsed["Subject"] == "Books 0"
    assert parsed["Return-Path"] == f"<{JAMES}>" and parsed["Delivered-To"] == STEVE
    assert len(parsed.get_all("Received")) == 2  # india-mail's stamp, then usa-mail's
    assert of_type(run.records, "mail.fetch", node="usa-mail", user="steve")


def test_a_permanent_failure_comes_back_to_james_as_a_bounce(outage: BackgroundRun) -> None:
    run = outage
    submit(run, ["nobody@usa.com"], subject="Lost")
    (bounce,) = run.wait_for(lambda rs: of_type(rs, "mail.bounce"), timeout=20)
    assert bounce["reply"].startswith("550 5.1.1 <nobody@usa.com>: Recipient address rejected")
    run.wait_for(lambda rs: of_type(rs, "mail.deliver", node="india-mail", rcpt=JAMES), timeout=20)
    [report] = fetch(run.ports["india-mail"].pop3, "james", "grammar")
    parsed = email.message_from_bytes(report)
    assert parsed.get_content_type() == "multipart/report"
    assert parsed["Return-Path"] == "<>"  # a bounce has the null reverse-path
    assert b"Action: failed" in report and b"nobody@usa.com" in report


@pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks is not installed")
def test_swaks_submits_with_auth_and_the_message_is_delivered(outage: BackgroundRun) -> None:
    run = outage
    port = run.ports["india-mail"].submission
    result = subprocess.run(
        ["swaks", "--server", f"127.0.0.1:{port}", "--auth", "PLAIN", "--auth-user", JAMES,
         "--auth-password", "grammar", "--from", JAMES, "--to", STEVE, "--header",
         "Subject: from swaks", "--body", "Atlas?"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "235 2.7.0 Authentication successful" in result.stdout
    run.wait_for(lambda rs: of_type(rs, "mail.deliver", node="usa-mail", rcpt=STEVE), timeout=20)
    [message] = fetch(run.ports["usa-mail"].pop3, "steve", "atlas")
    assert b"Subject: from swaks" in message


def test_the_mx_port_takes_mail_for_its_users_and_refuses_relaying(outage: BackgroundRun) -> None:
    run = outage
    with smtplib.SMTP("127.0.0.1", run.ports["usa-mail"].smtp, timeout=10) as smtp:
        code, text = smtp.ehlo("pc")
        assert b"AUTH" not in text  # the MX port offers no AUTH: users submit on 587
        assert smtp.sendmail("anne@example.org", [STEVE], "Subject: hi\r\n\r\nhi\r\n") == {}
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            smtp.sendmail("anne@example.org", [JAMES], "Subject: hi\r\n\r\nhi\r\n")
    code, text = refused.value.recipients[JAMES]
    assert code == 550 and b"Relay access denied" in text


def test_a_stopped_server_times_out_then_takes_the_mail_when_started(outage: BackgroundRun) -> None:
    run = outage
    assert "usa-mail is down" in run.control("stop", "usa-mail")
    with pytest.raises(OSError):  # nothing listens while it is down
        smtplib.SMTP("127.0.0.1", run.ports["usa-mail"].smtp, timeout=5)
    submit(run, [STEVE])
    (defer,) = run.wait_for(lambda rs: of_type(rs, "mail.defer"), timeout=20)
    assert "Connection timed out" in defer["reply"]  # a crashed host does not answer
    run.control("start", "usa-mail")
    run.wait_for(lambda rs: of_type(rs, "mail.deliver", node="usa-mail"), timeout=20)
    assert of_type(run.records, "node.down", node="usa-mail")
    assert of_type(run.records, "node.up", node="usa-mail")


def test_a_wrong_command_is_refused_with_what_would_be_right(outage: BackgroundRun) -> None:
    with pytest.raises(LiveError, match="'usa' is not a mail server of this run"):
        outage.control("stop", "usa")
    with pytest.raises(LiveError, match="usage: cut NODE NODE"):
        outage.control("cut", "india-mail")


def test_a_restarted_run_resumes_its_clock_its_cuts_and_its_trace(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    with mailsim.serve("link-outage", folder, time_scale=FAST) as run:
        run.wait_for(lambda rs: of_type(rs, "link.up"), timeout=20)
        run.control("cut", "india-mail", "usa-mail")
        stopped_at = run.now()
    state = json.loads((folder / "live.json").read_text())
    assert state["starts"] == 1 and state["by_hand"]["cuts"]
    with mailsim.serve("link-outage", folder, time_scale=FAST) as again:
        assert again.now() > stopped_at  # the clock ran on while it was stopped
        assert "no route: india-mail - usa-mail" in again.control("status")  # still cut
        records = again.records
    assert json.loads((folder / "live.json").read_text())["starts"] == 2
    assert len(of_type(records, "net.node", node="india-mail")) == 1  # appended, not restarted
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["scenario"] == "link-outage" and summary["balanced"]


# --- the command line ----------------------------------------------------------------------------


def mailsim_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "mailsim.cli", *args]


def start_serving(folder: Path, ports: Path, scale: float) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        mailsim_command(
            "serve", "link-outage", "--dir", str(folder), "--time-scale", str(scale),
            "--base-port", "0", "--json-ports", str(ports), "--quiet",
        ),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not ports.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            out, err = process.communicate()
            raise AssertionError(f"mailsim serve did not start:\n{out}\n{err}")
        time.sleep(0.05)
    return process


def events(folder: Path) -> list[dict[str, Any]]:
    lines = (folder / "events.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.endswith("}")]


def ctl(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        mailsim_command("ctl", "--dir", str(folder), *args),
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.slow
def test_kill_9_while_200_messages_are_queued_loses_none(tmp_path: Path) -> None:
    folder, ports_file = tmp_path / "run", tmp_path / "ports.json"
    serving = start_serving(folder, ports_file, scale=600)
    try:
        wait_for(lambda: of_type(events(folder), "link.up"))  # the scheduled outage is over
        assert ctl(folder, "cut", "india-mail", "usa-mail").returncode == 0
        ports = json.loads(ports_file.read_text())
        with smtplib.SMTP("127.0.0.1", ports["india-mail"]["submission"], timeout=30) as smtp:
            smtp.login(JAMES, "grammar")
            for n in range(200):
                body = f"Subject: note {n}\r\nMessage-ID: <note-{n}@india.com>\r\n\r\n{n}\r\n"
                assert smtp.sendmail(JAMES, [STEVE], body) == {}  # 250: it is ours now
        queue = folder / "india-mail" / "queue"
        assert len(list(queue.glob("*.msg"))) == 200
    finally:
        os.kill(serving.pid, signal.SIGKILL)  # no clean-up of any kind
        serving.communicate()
    assert serving.returncode == -signal.SIGKILL
    ports_file.unlink()

    serving = start_serving(folder, ports_file, scale=600)
    try:
        # The route is still cut after the restart: the messages wait in the queue read back.
        assert "200 queued" in ctl(folder, "status").stdout
        assert ctl(folder, "heal").returncode == 0
        steve = folder / "usa-mail" / "maildir" / "steve" / "new"
        wait_for(lambda: steve.exists() and len(list(steve.iterdir())) >= 200, timeout=90)
        time.sleep(1.0)  # anything more would be a duplicate
        ids = [email.message_from_bytes(p.read_bytes())["Message-ID"] for p in steve.iterdir()]
        assert sorted(ids) == sorted(f"<note-{n}@india.com>" for n in range(200))
    finally:
        serving.send_signal(signal.SIGTERM)
        _out, err = serving.communicate(timeout=30)
    assert serving.returncode == 0, err
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["totals"]["delivered"] == 200 and summary["totals"]["lost"] == 0


def test_ctl_without_a_run_and_serve_with_wrong_options_exit_2(tmp_path: Path) -> None:
    result = ctl(tmp_path, "status")
    assert result.returncode == 2 and "no live run answers here" in result.stderr
    result = subprocess.run(
        mailsim_command("serve", "link-outage", "--domain", "x.com", "--dir", str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "--domain: not with SCENARIO" in result.stderr and "Traceback" not in result.stderr
    result = subprocess.run(
        mailsim_command("serve", "no-such-scenario", "--dir", str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_the_live_run_is_drawn_by_mailsim_plot(outage: BackgroundRun) -> None:
    run = outage
    submit(run, [STEVE])
    run.wait_for(lambda rs: of_type(rs, "mail.deliver", node="usa-mail"), timeout=20)
    folder = run.directory
    result = subprocess.run(
        mailsim_command("plot", str(folder)), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    for name in ("sequence.png", "timeline.png", "topology.png"):
        assert (folder / name).stat().st_size > 10_000
    transcript = (folder / "transcript.txt").read_text()
    assert "india-mail -> usa-mail:25 (SMTP)" in transcript
    assert "C: AUTH PLAIN" in transcript  # what smtplib said, recorded as it arrived


def test_the_ctl_prompt_takes_one_command_a_line(outage: BackgroundRun, capsys) -> None:
    from mailsim.live.ctl import prompt

    typed = iter(["help", "cut india-mail usa-mail", "stop nowhere", "heal", "quit"])
    prompt(outage.directory, read=lambda _prompt: next(typed))
    said = capsys.readouterr().out
    assert "cut NODE NODE" in said  # the help lists the commands
    assert "cut the route between india-mail and usa-mail" in said
    assert "error: 'nowhere' is not a mail server of this run" in said
    assert "healed: link india-gw - usa-gw up" in said


def test_the_scaled_clock_runs_scale_times_faster_and_keeps_its_epoch() -> None:
    from mailsim.live.clock import MIN_REAL_WAIT, ScaledClock

    clock = ScaledClock(60, epoch=time.time() - 10)  # started ten real seconds ago
    assert 599 < clock() < 603  # ten minutes of scenario time
    assert clock.real_seconds(1800) == 30.0  # a 30-minute retry in 30 s
    assert clock.until(clock() + 120) == pytest.approx(2.0, abs=0.1)
    assert clock.real_wait(60) == MIN_REAL_WAIT  # a peer is given at least this long
    with pytest.raises(ValueError, match="time scale must be above 0"):
        ScaledClock(0)


def test_the_scenarios_reply_faults_hit_the_live_servers_too(tmp_path: Path) -> None:
    # greylisting-exim: school-mail greylists the first try of each triplet; isp-mail retries
    # on its Exim rules (every 10 minutes at first) and the second try gets through.
    scenario = Path(__file__).parent / "good_scenarios" / "greylisting-exim.yaml"
    with mailsim.serve(str(scenario), tmp_path / "run", time_scale=FAST) as run:
        with smtplib.SMTP("127.0.0.1", run.ports["isp-mail"].submission, timeout=10) as smtp:
            smtp.login("news@isp.net", "press")
            smtp.sendmail("news@isp.net", ["pupil@school.edu"], "Subject: news\r\n\r\nhi\r\n")
        run.wait_for(lambda rs: of_type(rs, "mail.deliver", node="school-mail"), timeout=30)
        (defer,) = of_type(run.records, "mail.defer")
    assert defer["reply"] == "451 4.7.1 Greylisted, try later"
    # Exim's F,1h,10m: tries on a 10-minute grid counted from the first failure.
    assert 0 < defer["next_attempt"] - defer["t"] <= 600


def test_a_reply_faults_delay_is_scenario_time_on_the_scaled_clock(tmp_path: Path) -> None:
    # delay: 1h at one scenario hour a real second: the 354 comes about a second late, not an
    # hour (the same ReplyFault the simulation times with its clock).
    from test_reply_fault_fields import SCENARIO

    scenario = tmp_path / "slow.yaml"
    fault = "  - {reply: {server: india-mail, port: 587, command: DATA, delay: 1h}}\n"
    scenario.write_text((SCENARIO % fault).replace("duration: 2h", "duration: 30d"))
    with (
        mailsim.serve(str(scenario), tmp_path / "run", time_scale=FAST) as run,
        smtplib.SMTP("127.0.0.1", run.ports["india-mail"].submission, timeout=10) as smtp,
    ):
        smtp.login("james@india.com", "grammar")
        smtp.mail("james@india.com")
        smtp.rcpt("ann@usa.com")
        asked = time.monotonic()
        code, _ = smtp.docmd("DATA")
        late = time.monotonic() - asked
        smtp.send(b"Subject: slow\r\n\r\nhi\r\n.\r\n")
        done, _ = smtp.getreply()
    assert code == 354 and done == 250
    assert 0.8 < late < 5.0
