"""The scenario language: what valid scenarios load into (SI units, defaults, derived values)."""

from __future__ import annotations

import re
from pathlib import Path

import pydantic
import pytest

from mailsim.mail.retry import EximRetry, FixedRetry, PostfixRetry, RetryRule
from mailsim.scenario import STARTER_SCENARIO, Scenario, load_scenario
from mailsim.scenario import schema as s
from mailsim.scenario.schema.fields import _Section
from mailsim.scenario.starter import starter_scenario

HERE = Path(__file__).parent
GOOD = HERE / "good_scenarios"
DOCS = HERE.parent / "docs" / "scenario-language.md"

BRIEF_EXAMPLE = """\
name: James in India mails Steve in the USA
seed: 1
duration: 1h
nodes:
  james-pc:   {kind: host, site: India}
  india-mail: {kind: mailserver, site: India, domains: [india.com]}
  usa-mail:   {kind: mailserver, site: USA, domains: [usa.com]}
  steve-pc:   {kind: host, site: USA}
links:
  - {between: [james-pc, india-mail], latency: 2ms, bandwidth: 100Mbps}
  - {between: [india-mail, usa-mail], latency: 110ms, bandwidth: 20Mbps}
  - {between: [usa-mail, steve-pc], latency: 3ms, bandwidth: 100Mbps}
users:
  - {address: james@india.com, password: grammar, host: james-pc}
  - {address: steve@usa.com, password: atlas, host: steve-pc, check_mail_every: 10min}
messages:
  - {at: 1min, from: james@india.com, to: steve@usa.com, subject: Books,
     body: "Do you have a Grammar Book?\\nWhat about Atlas?"}
faults:
  - {link: [india-mail, usa-mail], down_at: 2min, down_for: 3h}
"""

SMALL_NODES = """\
name: small
nodes:
  a-pc:   {kind: host}
  a-mail: {kind: mailserver, domains: [a.org]}
"""
SMALL_LINKS = "links:\n  - {between: [a-pc, a-mail]}\n"
SMALL_USERS = (
    "users:\n"
    "  - {address: ann@a.org, password: pw, host: a-pc}\n"
    "  - {address: bob@a.org, password: pw, host: a-pc}\n"
)


def small(extra: str = "", *, links: str = SMALL_LINKS, users: str = SMALL_USERS) -> Scenario:
    """A two-node scenario, with ``links``/``users`` replaceable and ``extra`` sections added."""
    return load_scenario(SMALL_NODES + links + users + extra)


def test_brief_example_loads_with_every_value_in_si_units() -> None:
    scenario = load_scenario(BRIEF_EXAMPLE)
    assert scenario.duration == 3600.0
    assert scenario.links[1].latency == pytest.approx(0.110)
    assert scenario.links[1].bandwidth == 20e6  # 20 Mbps in bits per second
    assert scenario.users[1].check_mail_every == 600.0
    assert scenario.users[0].check_mail_every is None
    message = scenario.messages[0]
    assert (message.at, message.sender, message.to) == (60.0, "james@india.com", ["steve@usa.com"])
    assert message.body == "Do you have a Grammar Book?\nWhat about Atlas?"
    fault = scenario.faults[0]
    assert isinstance(fault, s.LinkOutage)
    assert (fault.link, fault.down_at, fault.down_for) == (
        ("india-mail", "usa-mail"),
        120.0,
        10800.0,
    )


def test_brief_example_is_among_the_good_scenarios() -> None:
    assert (GOOD / "james-mails-steve.yaml").read_text() == BRIEF_EXAMPLE


@pytest.mark.parametrize("path", sorted(GOOD.glob("*.yaml")), ids=lambda p: p.name)
def test_every_good_scenario_loads(path: Path) -> None:
    assert isinstance(load_scenario(path), Scenario)


def test_bare_numbers_are_seconds_bytes_and_bits_per_second() -> None:
    scenario = small(
        "servers: {connect_timeout: 45, max_message_size: 2000}\n",
        links="links:\n  - {between: [a-pc, a-mail], latency: 0.25, bandwidth: 64000}\n",
    )
    assert scenario.servers.connect_timeout == 45.0
    assert scenario.servers.max_message_size == 2000
    assert scenario.links[0].latency == 0.25
    assert scenario.links[0].bandwidth == 64000.0


def test_sizes_are_decimal_and_binary_as_written() -> None:
    scenario = small(
        "messages:\n  - {at: 0, from: ann@a.org, to: bob@b.org,\n"
        "     attachments: [{kind: photo, size: 2MB}, {kind: file, size: 2MiB}]}\n"
    )
    sizes = [attachment.size for attachment in scenario.messages[0].attachments]  # type: ignore[union-attr]
    assert sizes == [2_000_000, 2 * 1024 * 1024]


def test_defaults_follow_rfc_5321_and_postfix() -> None:
    scenario = small()
    assert scenario.seed == 1
    assert scenario.duration == 86400.0  # 1d
    settings = scenario.servers
    # The story's "every 30 or 40 minutes": 30 min plus up to 10 min of jitter.
    assert (settings.retry.policy, settings.retry.interval, settings.retry.jitter) == (
        "fixed",
        1800.0,
        600.0,
    )
    assert settings.retry.give_up_after is None
    assert settings.retry.effective_give_up_after == 5 * 86400.0
    assert settings.retry.delay_warning_after is None
    assert settings.max_recipients == 100  # RFC 5321 4.5.3.1.8: at least 100
    assert settings.max_message_size == 10_000_000
    assert settings.connect_timeout == 30.0
    timeouts = settings.command_timeouts
    # RFC 5321 4.5.3.2: 5 min for the greeting, MAIL, RCPT; 2 min DATA start; 3 min per block;
    # 10 min after the final dot.
    assert (timeouts.greeting, timeouts.mail, timeouts.rcpt) == (300.0, 300.0, 300.0)
    assert (timeouts.data_start, timeouts.data_block, timeouts.data_end) == (120.0, 180.0, 600.0)
    link = scenario.links[0]
    assert (link.latency, link.bandwidth, link.loss, link.jitter, link.mtu) == (
        0.001,
        100e6,
        0.0,
        0.0,
        1500,
    )
    assert scenario.trace.data_lines == 20


def test_exim_rules_are_parsed_into_seconds() -> None:
    scenario = small("servers: {retry: {policy: exim, rules: 'F,2h,15m; G,16h,1h,1.5'}}\n")
    rules = scenario.servers.retry.rules
    assert rules == (
        RetryRule("F", cutoff=7200.0, interval=900.0),
        RetryRule("G", cutoff=57600.0, interval=3600.0, multiplier=1.5),
    )
    # No give_up_after given: exim gives up when its last rule ends, 16 h after the first failure.
    assert scenario.servers.retry.effective_give_up_after == 57600.0


def test_exim_default_rules_are_exims_own() -> None:
    rules = small().servers.retry.rules
    # F,2h,15m; G,16h,1h,1.5; F,4d,6h
    assert [(r.kind, r.cutoff, r.interval, r.multiplier) for r in rules] == [
        ("F", 7200.0, 900.0, 1.0),
        ("G", 57600.0, 3600.0, 1.5),
        ("F", 345600.0, 21600.0, 1.0),
    ]


@pytest.mark.parametrize(
    ("written", "policy_class", "give_up"),
    [
        ("{interval: 20min, jitter: 0s}", FixedRetry, 5 * 86400.0),
        ("{policy: postfix, maximal_backoff_time: 1h, give_up_after: 2d}", PostfixRetry, 172800.0),
        ("{policy: exim, queue_run_interval: 30min}", EximRetry, 4 * 86400.0),
    ],
)
def test_retry_settings_make_the_mail_layers_policy(
    written: str, policy_class: type, give_up: float
) -> None:
    policy = small(f"servers: {{retry: {written}}}\n").servers.retry.to_policy()
    assert isinstance(policy, policy_class)
    assert policy.give_up_after == give_up
    assert policy.delay_warning_after is None


def test_retry_settings_hand_every_value_to_the_policy() -> None:
    retry = small(
        "servers: {retry: {policy: postfix, minimal_backoff_time: 2min, "
        "maximal_backoff_time: 1h, queue_run_delay: 1min, delay_warning_after: 4h}}\n"
    ).servers.retry
    policy = retry.to_policy()
    assert isinstance(policy, PostfixRetry)
    assert (policy.minimal_backoff_time, policy.maximal_backoff_time) == (120.0, 3600.0)
    assert (policy.queue_run_delay, policy.delay_warning_after) == (60.0, 14400.0)


def test_submission_server_defaults_to_the_server_of_the_users_domain() -> None:
    scenario = load_scenario(BRIEF_EXAMPLE)
    assert [user.submission_server for user in scenario.users] == ["india-mail", "usa-mail"]
    assert scenario.mailbox_server("Steve@USA.com") == "usa-mail"


def test_node_settings_override_the_defaults_field_by_field() -> None:
    scenario = load_scenario(GOOD / "every-feature.yaml")
    india = scenario.settings_for("india-mail")
    usa = scenario.settings_for("usa-mail")
    # india-mail sets retry.interval 5min and command_timeouts.helo 1min, durable false; it keeps
    # the top level's jitter (5min), give_up_after (1d) and greeting timeout (2min).
    assert (india.retry.interval, india.retry.jitter, india.retry.effective_give_up_after) == (
        300.0,
        300.0,
        86400.0,
    )
    assert (india.command_timeouts.helo, india.command_timeouts.greeting) == (60.0, 120.0)
    assert (india.durable, usa.durable) == (False, True)
    assert usa == scenario.servers


def test_recipients_may_be_one_address_or_a_list() -> None:
    scenario = small(
        "messages:\n"
        "  - {at: 0, from: ann@a.org, to: bob@b.org, cc: [c@c.org, d@d.org], bcc: e@e.org}\n"
    )
    message = scenario.messages[0]
    assert (message.to, message.cc, message.bcc) == (
        ["bob@b.org"],
        ["c@c.org", "d@d.org"],
        ["e@e.org"],
    )
    assert message.recipients == ["bob@b.org", "c@c.org", "d@d.org", "e@e.org"]


def test_a_size_written_alone_is_a_fixed_distribution_and_others_are_inferred() -> None:
    scenario = small(
        "traffic:\n"
        "  - {rate: 12/h, size: 20KB, attachment_size: {median: 1MB}}\n"
        "  - {rate: 1/min, size: {min: 1KB, max: 2KB}}\n"
    )
    first, second = scenario.traffic
    assert first.size == s.FixedSize(size=20_000)
    assert first.attachment_size == s.LognormalSize(median=1_000_000, sigma=1.0)
    assert second.size == s.UniformSize(min=1000, max=2000)
    assert first.rate == pytest.approx(12 / 3600)  # 12 an hour, in messages per second
    assert second.rate == pytest.approx(1 / 60)


@pytest.mark.parametrize(
    ("written", "per_second"),
    [("12/h", 12 / 3600), ("3 per day", 3 / 86400), ("1/10min", 1 / 600), ("0.5/s", 0.5)],
)
def test_message_rates_are_counts_per_duration(written: str, per_second: float) -> None:
    scenario = small(f"traffic: [{{rate: {written}}}]\n")
    assert scenario.traffic[0].rate == pytest.approx(per_second)


def test_probabilities_may_be_percentages() -> None:
    scenario = small(links="links:\n  - {between: [a-pc, a-mail], loss: '2.5%'}\n")
    assert scenario.links[0].loss == pytest.approx(0.025)


def test_choices_ignore_case_and_keep_the_documented_spelling() -> None:
    scenario = small(
        "faults: [{reply: {server: a-mail, command: Rcpt, code: 451}},\n"
        "         {reply: {server: a-mail, command: DOT, code: 552}}]\n"
    )
    commands = [fault.reply.command for fault in scenario.faults]  # type: ignore[union-attr]
    assert commands == ["RCPT", "dot"]


def test_mx_records_are_generated_for_domains_without_explicit_ones() -> None:
    scenario = load_scenario(GOOD / "every-feature.yaml")
    records = [(r.name, r.exchange, r.preference) for r in scenario.mx_records()]
    assert records == [
        ("usa.com", "usa-mail", 10),
        ("usa.com", "usa-backup", 20),
        ("india.com", "india-mail", 10),
        ("India.org", "india-mail", 10),
        ("backup.usa.com", "usa-backup", 10),
    ]


def test_no_mx_records_are_generated_when_generate_is_false() -> None:
    assert small("dns: {generate: false}\n").mx_records() == []


def test_file_attachments_are_found_beside_the_scenario(tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"\xff\xd8")
    scenario_file = tmp_path / "lesson.yaml"
    scenario_file.write_text(
        SMALL_NODES
        + SMALL_LINKS
        + SMALL_USERS
        + "messages:\n  - {at: 0, from: ann@a.org, to: b@b.org, "
        "attachments: [{file: photos/cat.jpg}]}\n"
    )
    attachment = load_scenario(scenario_file).messages[0].attachments[0]
    assert isinstance(attachment, s.FileAttachment)
    assert attachment.file == (tmp_path / "photos" / "cat.jpg").resolve()


def test_yaml_anchors_and_merge_keys_work_and_written_keys_win() -> None:
    scenario = load_scenario(GOOD / "greylisting-exim.yaml")
    assert [(link.between, link.latency) for link in scenario.links[:3]] == [
        (("school-mail", "core"), 0.020),
        (("isp-mail", "core"), 0.020),
        (("resolver", "core"), 0.005),
    ]
    assert scenario.links[1].bandwidth == 1e9


def test_domains_match_without_regard_to_case() -> None:
    scenario = small(users="users:\n  - {address: Ann@A.ORG, password: pw, host: a-pc}\n")
    assert scenario.users[0].submission_server == "a-mail"


def test_empty_sections_count_as_empty() -> None:
    scenario = load_scenario("name: x\nnodes: {a: {kind: host}}\nlinks:\nusers:\nservers:\n")
    assert (scenario.links, scenario.users) == ([], [])
    assert scenario.servers == s.ServerSettings()


def test_load_scenario_takes_a_path_a_path_string_or_text() -> None:
    path = GOOD / "james-mails-steve.yaml"
    from_path = load_scenario(path)
    assert load_scenario(str(path)) == from_path
    assert load_scenario(path.read_text()) == from_path


def test_scenario_built_in_python_runs_the_same_reference_checks() -> None:
    data = {
        "name": "x",
        "nodes": {"a": {"kind": "host"}, "b": {"kind": "router"}},
        "links": [{"between": ["a", "bb"]}],
    }
    with pytest.raises(
        pydantic.ValidationError, match=r"links\[0\]\.between\[1\]: unknown node 'bb'"
    ):
        Scenario.model_validate(data)


def test_starter_scenario_loads() -> None:
    scenario = load_scenario(STARTER_SCENARIO)
    assert scenario.name == "James in India mails Steve in the USA"
    assert scenario.messages[0].body == "Do you have a Grammar Book?\nWhat about Atlas?\n"


def test_starter_scenario_still_loads_with_every_commented_example_switched_on() -> None:
    # Commented examples are YAML after '# ' (keys or list items); prose comments are not.
    uncommented = re.sub(r"^(\s*)# (?=\s*(- |[a-z_]+:( |$)))", r"\1", STARTER_SCENARIO, flags=re.M)
    scenario = load_scenario(uncommented)
    assert len(scenario.messages) == 2
    assert len(scenario.faults) == 5
    assert (len(scenario.traffic), len(scenario.telnet)) == (1, 1)
    assert scenario.telnet[0].lines[1] == "MAIL FROM:<james@india.com>"


@pytest.mark.parametrize("name", ["lab 3", 'He said: "hi"', "# not a comment", "yes"])
def test_starter_scenario_takes_any_name(name: str) -> None:
    assert load_scenario(starter_scenario(name)).name == name


def _models() -> list[type[pydantic.BaseModel]]:
    found: list[type[pydantic.BaseModel]] = []
    todo = list(_Section.__subclasses__())
    while todo:
        model = todo.pop()
        found.append(model)
        todo.extend(model.__subclasses__())
    return sorted(found, key=lambda m: m.__name__)


@pytest.mark.parametrize("model", _models(), ids=lambda m: m.__name__)
def test_every_field_is_documented_for_teachers(model: type[pydantic.BaseModel]) -> None:
    docs = DOCS.read_text()
    for name, info in model.model_fields.items():
        key = info.alias or name
        assert f"`{key}`" in docs or f"`reply.{key}`" in docs, f"{model.__name__}.{key}"


def test_models_name_python_words_differently() -> None:
    hints = {
        (model, name): info.alias
        for model in (s.Message, s.ReplySpec, s.TelnetSession)
        for name, info in model.model_fields.items()
        if info.alias
    }
    assert hints == {
        (s.Message, "sender"): "from",
        (s.ReplySpec, "address"): "for",
        (s.ReplySpec, "start"): "from",
        (s.TelnetSession, "client"): "from",
        (s.TelnetSession, "server"): "to",
    }
