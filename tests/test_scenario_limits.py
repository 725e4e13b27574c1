"""Values a scenario can hold but a run cannot use are refused at load time, in their place.

Each case here passed validation once and then crashed the run with a traceback (a CR/LF in a
subject, a 1 TB attachment, a bandwidth of 10**400) or made it run for ever (a duration of 1e308
seconds, a POP3 check every millisecond, a 'billion laughs' of nested aliases).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from mailsim.protocol.smtp import COMMAND_REPLIES
from mailsim.scenario import load_scenario, validate_text
from mailsim.scenario.loader import MAX_ALIAS_VALUES
from mailsim.scenario.schema import ScenarioParts
from mailsim.scenario.schema.workload import check_workload, check_workload_advice, workload

BASE = """\
name: limits
seed: 1
duration: 1h
nodes:
  james-pc:   {kind: host}
  india-mail: {kind: mailserver, domains: [india.com]}
  usa-mail:   {kind: mailserver, domains: [usa.com]}
links:
  - {between: [james-pc, india-mail], latency: 2ms, bandwidth: 100Mbps}
  - {between: [india-mail, usa-mail], latency: 110ms, bandwidth: 20Mbps}
users:
  - {address: james@india.com, password: grammar, host: james-pc, name: James}
  - {address: steve@usa.com, password: atlas, host: james-pc, check_mail_every: 10min}
messages:
  - {at: 1min, from: james@india.com, to: steve@usa.com, subject: Books, body: hello,
     attachments: [{kind: photo, size: 2MB, name: atlas.jpg}]}
"""


def problems(old: str, new: str) -> list[str]:
    assert old in BASE, old
    return validate_text(BASE.replace(old, new, 1), source_name="x.yaml")


def test_the_base_scenario_is_valid() -> None:
    assert validate_text(BASE) == []


@pytest.mark.parametrize(
    ("old", "new", "field", "fragment"),
    [
        # A line break in a header value would start a header of the sender's making.
        (
            "subject: Books",
            r'subject: "Books\r\nBcc: x@usa.com"',
            "messages[0].subject",
            "must be one line, as it goes into the Subject header; "
            "it has a line break at character 6",
        ),
        ("name: James}", r'name: "James\nX"}', "users[0].name", "goes into the From header"),
        (
            "name: atlas.jpg",
            r'name: "a\rb.jpg"',
            "messages[0].attachments[0].name",
            "line break at character 2",
        ),
        ("password: grammar", r'password: "gram\nmar"', "users[0].password", "POP3 PASS"),
        (
            "subject: Books",
            r'subject: "Bo\x00ks"',
            "messages[0].subject",
            "control character U+0000 (character 3)",
        ),
        # Numbers beyond what a run can use.
        ("size: 2MB", "size: 1TB", "messages[0].attachments[0].size", "must be at most 100 MB"),
        ("bandwidth: 20Mbps", "bandwidth: 1" + "0" * 400, "links[1].bandwidth", "too large"),
        ("bandwidth: 20Mbps", "bandwidth: 100Tbps", "links[1].bandwidth", "at most 10 Tbps"),
        ("duration: 1h", "duration: 1e308", "duration", "must be at most 365d"),
        ("duration: 1h", "duration: 100000000000d", "duration", "must be at most 365d"),
        ("duration: 1h", "duration: 1" + "0" * 400, "duration", "too large"),
        ("latency: 2ms", "latency: .inf", "links[0].latency", "too large"),
        ("latency: 2ms", "latency: .nan", "links[0].latency", "not a number"),
        (
            "check_mail_every: 10min",
            "check_mail_every: 1ms",
            "users[1].check_mail_every",
            "must be at least 1 s",
        ),
    ],
)
def test_a_value_a_run_cannot_use_is_a_located_problem(
    old: str, new: str, field: str, fragment: str
) -> None:
    lines = problems(old, new)
    assert len(lines) == 1, lines
    match = re.fullmatch(r"x\.yaml:(\d+):(\d+): ([^:]+): (.*)", lines[0])
    assert match is not None, lines[0]
    assert match[3] == field
    assert fragment in match[4]
    # The problem is placed on the line where the value is written.
    line = int(match[1])
    assert new.split(":")[0].strip() in BASE.replace(old, new, 1).splitlines()[line - 1]


def test_the_subject_problem_is_placed_at_the_value() -> None:
    (line,) = problems("subject: Books", r'subject: "Books\r\nBcc: x@usa.com"')
    assert line.startswith("x.yaml:15:67: messages[0].subject: ")


def test_a_lognormal_spread_that_would_overflow_a_draw_is_refused() -> None:
    traffic = (
        "traffic:\n  - {rate: 1/h, size: {distribution: lognormal, median: 4KB, sigma: 800}}\n"
    )
    (line,) = validate_text(BASE + traffic, source_name="x.yaml")
    assert "traffic[0].size.sigma: must be at most 10, got 800" in line


def test_an_event_rate_too_large_to_use_is_refused() -> None:
    traffic = "traffic:\n  - {rate: " + "9" * 400 + "/h}\n"
    (line,) = validate_text(BASE + traffic, source_name="x.yaml")
    assert "traffic[0].rate" in line and "too large" in line


def test_a_reply_text_must_be_one_line_of_ascii_that_fits_a_reply() -> None:
    fault = "faults:\n  - {reply: {server: usa-mail, command: RCPT, code: 450, text: %s}}\n"
    (crlf,) = validate_text(BASE + fault % r'"4.2.0 a\r\nb"', source_name="x.yaml")
    assert "faults[0].reply.text: must be one line" in crlf
    (utf8,) = validate_text(BASE + fault % "4.2.0 Grüße", source_name="x.yaml")
    assert "must be plain ASCII" in utf8 and "character 9 is 'ü'" in utf8
    (long,) = validate_text(BASE + fault % ("x" * 507), source_name="x.yaml")
    assert "at most 506 characters" in long


def test_a_telnet_line_is_one_line() -> None:
    telnet = "telnet:\n  - {at: 1min, from: james-pc, to: usa-mail, lines: ['HELO a', %s]}\n"
    (line,) = validate_text(BASE + telnet % r'"MAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>"')
    assert "telnet[0].lines[1]: must be one line" in line
    assert "put each line in its own item" in line


def test_a_display_name_reaches_the_from_header() -> None:
    result = load_scenario(BASE.replace("name: James}", 'name: "Smith, James"}')).run()
    (fetched,) = result.world.agents["steve@usa.com"].inbox
    assert b'\r\nFrom: "Smith, James" <james@india.com>\r\n' in fetched


def bomb(levels: int, width: int = 9) -> str:
    lines = [f"a0: &a0 [{', '.join(['x'] * width)}]"]
    for level in range(1, levels):
        lines.append(f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


def test_a_billion_laughs_is_a_problem_found_at_once() -> None:
    started = time.perf_counter()
    lines = validate_text(bomb(9) + "name: x\n", source_name="x.yaml")
    assert time.perf_counter() - started < 10  # it used to take minutes and gigabytes
    assert lines == [
        f"x.yaml:6:5: a5[0]: aliases here build more than {MAX_ALIAS_VALUES:,} values (each "
        "alias copies its anchor, so nested aliases multiply, as in the 'billion laughs' "
        "attack); write the values out, or use fewer aliases of aliases"
    ]


def test_nested_merges_are_counted_too() -> None:
    lines = ["m0: &m0 {k: v}"]
    for level in range(1, 9):
        lines.append(f"m{level}: &m{level} {{<<: [{', '.join([f'*m{level - 1}'] * 9)}]}}")
    (line,) = validate_text("\n".join(lines) + "\n", source_name="x.yaml")
    assert "aliases here build more than" in line


def test_aliases_that_build_a_few_values_still_work() -> None:
    text = BASE.replace(
        "links:\n", "links:\n  - &wan {between: [usa-mail, james-pc], latency: 9ms}\n"
    ).replace("bandwidth: 20Mbps}", "bandwidth: 20Mbps}\n  - {<<: *wan, between: [a, b]}")
    assert all("aliases" not in line for line in validate_text(text))


def test_a_greeting_fault_of_451_is_refused_where_it_is_written() -> None:
    fault = "faults:\n  - {reply: {server: usa-mail, command: CONNECT, code: 451}}\n"
    assert validate_text(BASE + fault, source_name="x.yaml") == [
        "x.yaml:18:56: faults[0].reply.code: 451 is not a reply to a greeting; a fault there is "
        "421 or 554 (RFC 5321 4.3.2)"
    ]


@pytest.mark.parametrize("command", ["CONNECT", "HELO", "EHLO", "MAIL", "RCPT", "DATA", "dot"])
def test_every_error_code_of_a_step_is_a_valid_fault_and_no_other(command: str) -> None:
    allowed = {c for c in COMMAND_REPLIES["DOT" if command == "dot" else command] if c >= 400}
    fault = "faults:\n  - {reply: {server: usa-mail, command: %s, code: %d}}\n"
    for code in range(400, 600):
        lines = validate_text(BASE + fault % (command, code))
        assert (lines == []) == (code in allowed), (command, code, lines)


def test_the_docs_list_the_fault_codes_of_each_step() -> None:
    docs = (Path(__file__).parent.parent / "docs" / "scenario-language.md").read_text()
    rows = re.findall(r"^\| (`[A-Za-z]+`(?:, `[A-Z]+`)?) \| ([0-9, ]+) \|$", docs, re.MULTILINE)
    listed = {
        name.strip("`"): {int(code) for code in codes.split(",")}
        for names, codes in rows
        for name in names.split(", ")
    }
    steps = {"CONNECT": "CONNECT", "HELO": "HELO", "EHLO": "EHLO", "MAIL": "MAIL"}
    steps |= {"RCPT": "RCPT", "DATA": "DATA", "dot": "DOT"}
    assert listed == {
        command: {code for code in COMMAND_REPLIES[step] if code >= 400}
        for command, step in steps.items()
    }


def test_traffic_that_would_build_billions_of_messages_is_refused() -> None:
    traffic = "traffic:\n  - {rate: 1000000/s}\n"
    (line,) = validate_text(BASE + traffic, source_name="x.yaml")
    assert line == (
        "x.yaml:18:12: traffic[0].rate: makes about 7,200,000,001 messages in all, more than "
        "the 10,000,000 a run can build; lower the rate or shorten the run"
    )


def test_checks_that_would_take_a_run_more_than_a_day_are_refused() -> None:
    users = "".join(
        f"  - {{address: u{n}@usa.com, password: pw, host: james-pc, check_mail_every: 1s}}\n"
        for n in range(10)
    )
    text = BASE.replace("duration: 1h", "duration: 365d").replace("messages:", users + "messages:")
    assert validate_text(text, source_name="x.yaml") == [
        "x.yaml:14:75: users[2].check_mail_every: makes about 31,536,000 POP3 checks (365d / 1 s), "
        "and the run would take about 2 days in all; check the unit (1min, not 1ms) or shorten "
        "the run"
    ]


def test_a_long_but_possible_run_is_a_warning_not_a_problem() -> None:
    text = BASE.replace("duration: 1h", "duration: 30d").replace(
        "check_mail_every: 10min", "check_mail_every: 5s"
    )
    scenario = load_scenario(text)
    parts = ScenarioParts.of(scenario)
    assert check_workload(parts) == []
    (warning,) = check_workload_advice(parts)
    assert warning.loc == ("users", 1, "check_mail_every")
    assert warning.message == (
        "warning: makes about 518,400 POP3 checks (30d / 5 s), and the run takes about 4 minutes "
        "in all"
    )
    assert check_workload_advice(ScenarioParts.of(load_scenario(BASE))) == []


def test_random_failures_count_at_their_own_cost() -> None:
    fault = "faults:\n  - {random: link, target: [james-pc, india-mail], mtbf: 1ms, mttr: 1ms}\n"
    parts = ScenarioParts.of(load_scenario(BASE + fault))
    load = workload(parts)
    assert [share.count for share in load.shares if "random" in share.what] == [3_600_000]
    assert 10 < load.run_time < 60  # 3.6 million link changes, at 6 us each


@pytest.mark.parametrize(
    "retry",
    [
        "{interval: 1ms}",
        "{policy: postfix, minimal_backoff_time: 0.5s}",
        "{policy: exim, rules: 'F,2h,15m; F,4d,1ms'}",
    ],
)
def test_a_retry_wait_under_a_second_is_refused(retry: str) -> None:
    (line,) = validate_text(BASE + f"servers: {{retry: {retry}}}\n", source_name="x.yaml")
    assert "must be at least 1 s" in line and line.startswith("x.yaml:17:")
