"""The ``mailsim serve``, ``send`` and ``grade`` commands (loaded lazily by :mod:`mailsim.cli`).

Only click and the standard library are imported at the top, so ``mailsim serve --help`` is
instant; the asyncio server, the protocol machines and the MIME code are imported inside the
command bodies.

Exit codes (docs/design.md): 0 success; 2 bad arguments (one line per problem, no traceback) or a
port that cannot be bound; 1 an internal error; 3 ``send`` could not deliver to every recipient;
4 ``grade``: some situation failed.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import click

_SERVE_HELP = """Run real mail servers on this machine: a scenario's, or one of your own.

With SCENARIO (a YAML file or a bundled name like link-outage), every mail server of the
scenario runs live on 127.0.0.1 with its users, domains and settings; mail between them is routed
by the scenario's MX records, queued on disk, retried on the scenario's policy and bounced, on a
clock sped up by --time-scale; the scenario's faults happen on that clock, and mailsim ctl stages
more by hand. It prints the port table; it writes events.jsonl and transcript.txt under --dir, so
mailsim plot DIR draws the live run. Example: mailsim serve link-outage --time-scale 60

Without SCENARIO, one server: SMTP, submission and POP3.

\b
  SMTP       (MX role)     127.0.0.1:2525  accepts mail for --domain, no AUTH needed
  submission (RFC 6409)    127.0.0.1:2587  AUTH required before MAIL (530 otherwise)
  POP3       (RFC 1939)    127.0.0.1:1100  each --user reads their own mailbox

It runs exactly the SMTP and POP3 state machines the simulation uses, so you can talk to it by
hand (nc -C 127.0.0.1 2525, or telnet 127.0.0.1 2525) or with any mail program.

Users are local parts at every domain: --domain India.com --user Steve:secret makes
Steve@India.com. Mail for them is stored in Maildirs under --maildir (one per user) and is
acknowledged only once it is safely on disk. Mail for other domains is refused (550 5.7.1 Relay
access denied) unless the client authenticated; then it is kept in the _outgoing Maildir. This
one server does not relay it onwards; a scenario's servers do (mailsim serve SCENARIO).

With --tls it also speaks TLS: STARTTLS on both SMTP ports (RFC 3207), STLS on POP3 (RFC
2595), and implicit TLS for submission on 2465 (RFC 8314) and POP3 on 1995. Passwords are then
taken only under TLS. A certificate for 127.0.0.1 and localhost is made on first use; clients
verify it with the CA written to MAILDIR/_tls/ca.pem.

Against hostile clients: at most --max-per-address connections from one address; a command
line must end within --line-timeout of its first byte and a message's content within
--data-timeout of the 354; a failed AUTH or POP3 login is answered
after --auth-failure-delay, and --auth-lockout failures from one address within
--auth-lockout-window refuse its logins (454 4.7.0 / -ERR) until the oldest is that old.

\b
For a lab (grading a student's SMTP client by hand):
  --fault SPEC   a scripted reply, as a scenario's reply fault (repeatable):
                 'RCPT 550 5.1.1 User unknown'          (COMMAND CODE [TEXT])
                 '{command: RCPT, code: 451, first_attempt_only: true}'  (greylisting)
                 '{command: RCPT, code: 550, for: bob@usa.com}'
                 '{command: MAIL, code: 421}'            (and hang up)
                 '{command: EHLO, delay: 0.5s}'          (a slow, line-by-line reply)
                 '{command: dot, code: 552, text: [5.3.4 Too big, see the limit]}'
  --strict       a command sent before the previous reply (without PIPELINING, or message
                 text before the 354) gets 554 5.5.0 and the session ends (Postfix's rule)
  --report FILE  one JSON line per SMTP session: commands, replies, waits, verdicts

Example: mailsim serve --domain India.com --user Steve:secret --replies classic
"""

#: The options that belong to the one-server mode (not used with SCENARIO).
_SINGLE_SERVER_ONLY = (
    "domains",
    "users",
    "users_file",
    "replies",
    "maildir",
    "hostname",
    "host",
    "smtp_port",
    "submission_port",
    "pop3_port",
    "max_message_size",
    "max_connections",
    "idle_timeout",
    "pop3_idle_timeout",
)
#: The options that belong to SCENARIO mode.
_SCENARIO_ONLY = ("directory", "time_scale", "base_port", "json_ports", "fresh")


def _fail(lines: list[str]) -> None:
    """Print bad-input problems one per line and exit 2 (docs/design.md contract)."""
    for line in lines:
        click.echo(line, err=True)
    raise SystemExit(2)


@click.command(help=_SERVE_HELP)
@click.argument("scenario", required=False)
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="SCENARIO: the run's folder. [default: runs/<scenario>-live/]",
)
@click.option(
    "--time-scale",
    type=float,
    default=1.0,
    show_default=True,
    help="SCENARIO: scenario seconds per real second (60: a 30-minute retry in 30 s).",
)
@click.option(
    "--base-port",
    type=click.IntRange(0, 65000),
    default=2500,
    show_default=True,
    help="SCENARIO: server i gets SMTP base+10i, submission +1, POP3 +2 (0: free ports).",
)
@click.option(
    "--json-ports",
    type=click.Path(dir_okay=False, path_type=Path),
    help='SCENARIO: also write the port table as JSON {server: {"smtp": port, ...}}.',
)
@click.option("--fresh", is_flag=True, help="SCENARIO: start over instead of resuming --dir.")
@click.option(
    "--domain",
    "domains",
    multiple=True,
    metavar="DOMAIN",
    help="A domain this server receives mail for (repeatable). [default: localhost]",
)
@click.option(
    "--user", "users", multiple=True, metavar="NAME:PASSWORD", help="A mailbox (repeatable)."
)
@click.option(
    "--users-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A file of NAME:PASSWORD lines (# starts a comment).",
)
@click.option(
    "--replies",
    type=click.Choice(["classic", "modern"]),
    default="modern",
    show_default=True,
    help="SMTP reply wording: the tutorial's ('classic') or Postfix-like with 5.x.x codes.",
)
@click.option(
    "--maildir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("maildir"),
    show_default=True,
    help="Directory for the Maildirs (relative to the current directory).",
)
@click.option("--hostname", help="Name in the greeting and Received: [default: first domain]")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--smtp-port", type=click.IntRange(0, 65535), default=2525, show_default=True)
@click.option("--submission-port", type=click.IntRange(0, 65535), default=2587, show_default=True)
@click.option("--pop3-port", type=click.IntRange(0, 65535), default=1100, show_default=True)
@click.option(
    "--max-message-size",
    default="10MiB",
    show_default=True,
    help="Largest message accepted (SIZE, RFC 1870), e.g. 10MiB or 500kB.",
)
@click.option(
    "--max-connections",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Open connections per listener; one more gets 421 and is closed.",
)
@click.option(
    "--idle-timeout",
    default="300",
    show_default=True,
    help="Seconds an SMTP client may stay silent before 421 4.4.2 (RFC 5321 4.5.3.2.7).",
)
@click.option(
    "--pop3-idle-timeout",
    default="600",
    show_default=True,
    help="POP3 autologout in seconds (RFC 1939: at least 10 minutes).",
)
@click.option(
    "--max-per-address",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="Open connections from one client address, over all listeners.",
)
@click.option(
    "--line-timeout",
    default="120",
    show_default=True,
    help="Seconds a command line may take from its first byte to its end.",
)
@click.option(
    "--data-timeout",
    default="600",
    show_default=True,
    help="Seconds a message's content may take, from the 354 to the final dot.",
)
@click.option(
    "--auth-failure-delay",
    default="2",
    show_default=True,
    help="Seconds before a failed SMTP AUTH or POP3 login is answered.",
)
@click.option(
    "--auth-lockout",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="Failed logins from one address that lock it out (0: never).",
)
@click.option(
    "--auth-lockout-window",
    default="300",
    show_default=True,
    help="Seconds a failed login is remembered (the longest lockout).",
)
@click.option(
    "--tls", is_flag=True, help="STARTTLS, STLS and implicit TLS (465/995 roles); see above."
)
@click.option("--smtps-port", type=click.IntRange(0, 65535), default=2465, show_default=True)
@click.option("--pop3s-port", type=click.IntRange(0, 65535), default=1995, show_default=True)
@click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="SPEC",
    help="A scripted SMTP reply (repeatable); see above and docs/scenario-language.md.",
)
@click.option("--strict", is_flag=True, help="Refuse improper pipelining with 554 5.5.0.")
@click.option("--no-pipelining", is_flag=True, help="Do not advertise PIPELINING in EHLO.")
@click.option(
    "--report",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Append one JSON record per SMTP session to this file (JSON Lines).",
)
@click.option("--quiet", is_flag=True, help="Do not log connections and messages to stderr.")
@click.pass_context
def serve(
    ctx: click.Context,
    scenario: str | None,
    directory: Path | None,
    time_scale: float,
    base_port: int,
    json_ports: Path | None,
    fresh: bool,
    domains: tuple[str, ...],
    users: tuple[str, ...],
    users_file: Path | None,
    replies: str,
    maildir: Path,
    hostname: str | None,
    host: str,
    smtp_port: int,
    submission_port: int,
    pop3_port: int,
    max_message_size: str,
    max_connections: int,
    idle_timeout: str,
    pop3_idle_timeout: str,
    max_per_address: int,
    line_timeout: str,
    data_timeout: str,
    auth_failure_delay: str,
    auth_lockout: int,
    auth_lockout_window: str,
    tls: bool,
    smtps_port: int,
    pop3s_port: int,
    faults: tuple[str, ...],
    strict: bool,
    no_pipelining: bool,
    report: Path | None,
    quiet: bool,
) -> None:
    given = {
        name
        for name in ctx.params
        if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT
    }
    flag_of = {param.name: param.opts[0] for param in ctx.command.params}
    if scenario is not None:
        from mailsim.live.scenario_cli import serve_scenario

        wrong = sorted(given & set(_SINGLE_SERVER_ONLY))
        if wrong:
            _fail([f"{flag_of[w]}: not with SCENARIO (the scenario sets it)" for w in wrong])
        serve_scenario(
            scenario,
            directory=directory,
            time_scale=time_scale,
            base_port=base_port,
            json_ports=json_ports,
            fresh=fresh,
            quiet=quiet,
        )
        return
    wrong = sorted(given & set(_SCENARIO_ONLY))
    if wrong:
        _fail([f"{flag_of[w]}: only with a SCENARIO to serve" for w in wrong])
    from mailsim.live.server import ServeConfig, parse_user, read_users_file
    from mailsim.mail.units import parse_duration, parse_size
    from mailsim.protocol.smtp import ReplyTexts

    problems: list[str] = []
    accounts: dict[str, str] = {}
    if users_file is not None:
        try:
            accounts.update(read_users_file(users_file))
        except ValueError as error:
            problems.append(str(error))
        except OSError as error:
            problems.append(f"{users_file}: cannot read the users file: {error.strerror}")
    for text in users:
        try:
            name, password = parse_user(text)
        except ValueError as error:
            problems.append(f"--user: {error}")
            continue
        accounts[name] = password
    sizes: dict[str, float] = {}
    for option, value, parse in (
        ("--max-message-size", max_message_size, parse_size),
        ("--idle-timeout", idle_timeout, parse_duration),
        ("--pop3-idle-timeout", pop3_idle_timeout, parse_duration),
        ("--line-timeout", line_timeout, parse_duration),
        ("--data-timeout", data_timeout, parse_duration),
        ("--auth-failure-delay", auth_failure_delay, parse_duration),
        ("--auth-lockout-window", auth_lockout_window, parse_duration),
    ):
        try:
            sizes[option] = parse(value)
        except ValueError as error:
            problems.append(f"{option}: {error}")
    live_faults = parse_faults(faults, problems)
    if problems:
        _fail(problems)
    try:
        config = ServeConfig(
            domains=domains or ("localhost",),
            users=accounts,
            maildir=maildir,
            host=host,
            smtp_port=smtp_port,
            submission_port=submission_port,
            pop3_port=pop3_port,
            hostname=hostname,
            replies=ReplyTexts.CLASSIC if replies == "classic" else ReplyTexts.MODERN,
            max_message_size=int(sizes["--max-message-size"]),
            max_connections=max_connections,
            idle_timeout=sizes["--idle-timeout"],
            pop3_idle_timeout=sizes["--pop3-idle-timeout"],
            max_per_address=max_per_address,
            line_timeout=sizes["--line-timeout"],
            data_timeout=sizes["--data-timeout"],
            auth_failure_delay=sizes["--auth-failure-delay"],
            auth_lockout_failures=auth_lockout,
            auth_lockout_window=sizes["--auth-lockout-window"],
            tls=tls,
            smtps_port=smtps_port,
            pop3s_port=pop3s_port,
            strict=strict,
            pipelining=not no_pipelining,
            faults=live_faults,
            report=report,
        )
    except ValueError as error:
        _fail([str(error)])
    _configure_logging(quiet)
    import asyncio

    with contextlib.suppress(KeyboardInterrupt):  # platforms without loop signal handlers
        asyncio.run(_serve(config, replies))


def parse_faults(specs: tuple[str, ...], problems: list[str]) -> tuple[Any, ...]:
    """``--fault`` values as the core's :class:`~mailsim.mail.server.ReplyFault`; problems are
    appended.

    Each is a scenario reply fault (:mod:`mailsim.scenario.fault_spec`), named ``--fault[N]`` in
    problems when there are several.
    """
    if not specs:
        return ()
    from mailsim.scenario.builder import reply_fault
    from mailsim.scenario.errors import ScenarioError
    from mailsim.scenario.fault_spec import parse_fault
    from mailsim.scenario.schema.faults import fault_code_problem

    out = []
    for number, text in enumerate(specs, 1):
        name = "--fault" if len(specs) == 1 else f"--fault[{number}]"
        try:
            spec = parse_fault(text, name)
        except ScenarioError as error:
            problems.extend(error.lines)
            continue
        wrong = fault_code_problem(spec.command, spec.code) if spec.code is not None else None
        if wrong is not None:  # the scenario's rule: a code the step may get (RFC 5321 4.3.2)
            problems.append(f"{name}:1:1: code: {wrong}")
            continue
        out.append(reply_fault(spec, port=spec.port))
    return tuple(out)


def _configure_logging(quiet: bool) -> None:
    logger = logging.getLogger("mailsim.live")
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    logger.addHandler(handler)
    logger.propagate = False


async def _serve(config: Any, replies: str) -> None:
    import asyncio

    from mailsim.live.server import LiveServer, StartupError

    server = LiveServer(config)
    try:
        ports = await server.start()
    except StartupError as error:
        click.echo(f"mailsim serve: {error}", err=True)
        raise SystemExit(2) from None  # e.g. the port is taken: choose another (bad input)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        # Windows has no loop signal handlers: there Ctrl+C raises KeyboardInterrupt.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    _print_banner(config, ports, replies, server)
    await stop.wait()
    click.echo("mailsim serve: stopping (421 to connected clients) ...", err=True)
    await server.stop()
    click.echo(f"mailsim serve: stopped; {server.stored} messages stored this run", err=True)


def _print_banner(config: Any, ports: dict[str, int], replies: str, server: Any) -> None:
    host = config.host
    domains = ", ".join(config.domains)
    lines = [f"mailsim serve: mail server {config.server_name} for {domains} ({replies} replies)"]
    if "smtp" in ports:
        lines.append(f"  SMTP       (MX role)        {host}:{ports['smtp']}")
    if "submission" in ports:
        lines.append(f"  submission (AUTH required)  {host}:{ports['submission']}")
    if "pop3" in ports:
        lines.append(f"  POP3                        {host}:{ports['pop3']}")
    if "smtps" in ports:
        lines.append(f"  submission, implicit TLS    {host}:{ports['smtps']}")
    if "pop3s" in ports:
        lines.append(f"  POP3, implicit TLS          {host}:{ports['pop3s']}")
    if server.tls_ca is not None:
        lines.append(f"  TLS: STARTTLS/STLS offered; clients trust {server.tls_ca}")
    if config.faults:
        lines.append(f"  {len(config.faults)} scripted fault(s); strict: {config.strict}")
    elif config.strict:
        lines.append("  strict: improper pipelining gets 554 5.5.0")
    if config.report is not None:
        lines.append(f"  one JSON line per SMTP session in {config.report}")
    names = list(config.users)
    first_domain = config.domains[0]
    if names:
        shown = ", ".join(f"{name}@{first_domain}" for name in names[:5])
        more = f" and {len(names) - 5} more" if len(names) > 5 else ""
        lines.append(f"  mailboxes: {shown}{more}")
    else:
        lines.append("  no users: every local recipient gets 550 5.1.1 (add --user NAME:PASSWORD)")
    lines.append(f"  Maildirs in {server.store.root}")
    if "smtp" in ports:
        port = ports["smtp"]
        lines.append(
            f"Talk to it: nc -C {host} {port}   (or: telnet {host} {port}), then type HELO ..."
        )
    lines.append("Stop with Ctrl+C.")
    for line in lines:
        click.echo(line)
    sys.stdout.flush()
    warning = plaintext_auth_warning(config)
    if warning is not None:
        click.echo(f"mailsim serve: warning: {warning}", err=True)


def plaintext_auth_warning(config: Any) -> str | None:
    """Why listening on ``config.host`` without TLS exposes passwords, or None when it does not.

    AUTH PLAIN/LOGIN and POP3 PASS carry the password in the clear (base64 is no encryption);
    on loopback nobody else sees it, on any other address the network does.
    """
    import ipaddress

    if config.tls:
        return None
    host = config.host
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:
        if host == "localhost":
            return None
    return (
        f"listening on {host}, beyond loopback, with AUTH and POP3 passwords in plaintext: "
        "anyone on the network can read them; add --tls (or --host 127.0.0.1)"
    )


# --- send ----------------------------------------------------------------------------------------


def _split_server(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (or ``[v6]:PORT``, or ``HOST`` for port 25) -> (host, port)."""
    host, port_text = text, "25"
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise ValueError(f"expected HOST:PORT, got {text!r}")
        host, rest = text[1:close], text[close + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"expected HOST:PORT, got {text!r}")
            port_text = rest[1:]
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    if not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"expected HOST:PORT like 127.0.0.1:2525, got {text!r}")
    return host, int(port_text)


def _bare_address(text: str, option: str) -> str:
    """The address of ``Steve <Steve@India.com>`` or ``Steve@India.com``; ValueError if none.

    A quoted local part stays as written (``"john smith"@usa.com``, RFC 5321 4.1.2):
    ``email.utils.parseaddr`` would take its quotes off and leave a space in the address.
    """
    from mailsim.protocol.smtp_address import DOT_STRING, QUOTED_STRING

    address = text.strip()
    if address.endswith(">") and "<" in address:
        address = address[address.rindex("<") + 1 : -1].strip()
    written, at, domain = address.rpartition("@")
    local_ok = DOT_STRING.fullmatch(written) or QUOTED_STRING.fullmatch(written)
    if not (at and local_ok and domain) or any(c.isspace() or c in "<>@" for c in domain):
        raise ValueError(
            f"{option}: {text!r} is not an e-mail address like Steve@India.com "
            '(a local part with spaces is quoted: "john smith"@usa.com)'
        )
    return address


@click.command()
@click.option(
    "--server",
    default="127.0.0.1:2525",
    show_default=True,
    metavar="HOST:PORT",
    help="The SMTP server to talk to.",
)
@click.option("--from", "sender", required=True, help="The sender (From: and MAIL FROM).")
@click.option("--to", "to", multiple=True, required=True, help="A recipient (repeatable).")
@click.option("--cc", "cc", multiple=True, help="A Cc recipient (repeatable).")
@click.option("--bcc", "bcc", multiple=True, help="A Bcc recipient: envelope only (repeatable).")
@click.option("--subject", default="", help="The Subject.")
@click.option("--body", default="", help="The text of the message.")
@click.option(
    "--attach",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A file to attach, sent as base64 (repeatable).",
)
@click.option("--auth", metavar="USER:PASSWORD", help="Authenticate with AUTH PLAIN/LOGIN.")
@click.option("--helo", help="The name to give in EHLO. [default: this host's name]")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=30.0, show_default=True)
@click.option("--quiet", is_flag=True, help="Print only the outcome per recipient.")
def send(
    server: str,
    sender: str,
    to: tuple[str, ...],
    cc: tuple[str, ...],
    bcc: tuple[str, ...],
    subject: str,
    body: str,
    attach: tuple[Path, ...],
    auth: str | None,
    helo: str | None,
    timeout: float,
    quiet: bool,
) -> None:
    """Send one message with mailsim's SMTP client and show the dialogue, as swaks does.

    Server lines are shown as '<~ 220 ...', ours as ' ~> EHLO ...'. Exit code 0 when every
    recipient was accepted, 3 when the server did not take it for every recipient (refused,
    temporarily or permanently, or could not be reached), 2 on bad arguments.
    """
    from mailsim.live.client import compose_message, send_message
    from mailsim.protocol.smtp import Envelope

    problems: list[str] = []
    host, port = "", 0
    try:
        host, port = _split_server(server)
    except ValueError as error:
        problems.append(f"--server: {error}")
    credentials: tuple[str, str] | None = None
    if auth is not None:
        user, colon, password = auth.partition(":")
        if not colon or not user or not password:
            problems.append(f"--auth: expected USER:PASSWORD, got {auth!r}")
        else:
            credentials = (user, password)
    recipients: list[str] = []
    envelope_from = ""
    for option, values in (("--from", (sender,)), ("--to", to), ("--cc", cc), ("--bcc", bcc)):
        for value in values:
            try:
                address = _bare_address(value, option)
            except ValueError as error:
                problems.append(str(error))
                continue
            if option == "--from":
                envelope_from = address
            elif address not in recipients:
                recipients.append(address)
    name = helo or socket.gethostname() or "localhost"
    if not name.isascii() or not name.isprintable() or " " in name:
        if helo is not None:
            problems.append(f"--helo: {helo!r} must be printable ASCII without spaces")
        name = "localhost"
    if problems:
        _fail(problems)
    try:
        content = compose_message(
            sender=sender, to=list(to), cc=list(cc), subject=subject, body=body, attachments=attach
        )
        envelope = Envelope(envelope_from, tuple(recipients), content)
    except (ValueError, OSError) as error:
        _fail([f"cannot build the message: {error}"])
    echo = None if quiet else click.echo
    report = send_message(
        host, port, envelope, helo=name, auth=credentials, echo=echo, timeout=timeout
    )
    words = {
        "accepted": "accepted",
        "temporary": "failed temporarily",
        "permanent": "failed permanently",
    }
    for outcome in report.outcomes:
        click.echo(f"=== {outcome.address}: {words[outcome.status]} ({outcome.reply})")
    if not report.ok:
        failed = [o.address for o in report.outcomes if o.status != "accepted"]
        click.echo(f"mailsim send: not delivered to {', '.join(failed)}", err=True)
        # Not 1: that means an internal error (docs/design.md); a refusal is the server's answer.
        raise SystemExit(3)


# --- grade ---------------------------------------------------------------------------------------

_GRADE_HELP = """Grade a student's SMTP client: run it once per situation against a fresh server.

\b
  mailsim grade -- python student.py {host} {port}

Each run gets a new mail server on 127.0.0.1 for usa.com set up for one situation (a scripted
fault, TLS, no PIPELINING). The client must send the message in {message} (lines end in LF;
send CRLF) from {from} to every address of {to} (comma-separated), then QUIT. The same values
are in the environment: SMTP_HOST, SMTP_PORT, MAIL_FILE, MAIL_FROM, MAIL_TO, and SMTP_CAFILE
(the CA to trust after STARTTLS).

Only what is observable counts: the message delivered intact (headers, CRLF line ends,
dot-stuffing), each command sent after its reply, multi-line replies read whole, no DATA after
every RCPT was refused, no message text after a refused DATA, nothing after a 421, QUIT, and
an exit within --timeout.

\b
Situations (--situations, comma-separated; default: all):
  plain, dot-line, multiline-ehlo, unknown-recipient, greylisting, too-big,
  service-closing, no-pipelining, starttls

Exit codes: 0 every situation passed, 4 some failed, 2 bad arguments.
"""


@click.command(help=_GRADE_HELP, context_settings={"ignore_unknown_options": True})
@click.option("--situations", metavar="LIST", help="Only these situations (comma-separated).")
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the results, with every session's dialogue, as JSON to this file.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1.0),
    default=20.0,
    show_default=True,
    help="Seconds each run of the client may take before it is killed.",
)
@click.argument("command", nargs=-1, type=click.UNPROCESSED, required=True)
def grade(
    situations: str | None, json_path: Path | None, timeout: float, command: tuple[str, ...]
) -> None:
    import json

    from mailsim.live.grade import EXIT_SOME_FAILED, report_card
    from mailsim.live.grade import grade as run_grade
    from mailsim.live.situations import SITUATIONS

    names = [name.strip() for name in situations.split(",") if name.strip()] if situations else []
    unknown = [name for name in names if name not in SITUATIONS]
    if unknown:
        _fail(
            [
                f"--situations: unknown {', '.join(repr(n) for n in unknown)}; "
                f"expected some of {', '.join(SITUATIONS)}"
            ]
        )
    if not command:
        _fail(["give the client's command after --, like: mailsim grade -- python c.py {host}"])
    results = run_grade(command, names or None, timeout=timeout)
    click.echo(report_card(results, command))
    if json_path is not None:
        document = {
            "command": list(command),
            "passed": sum(r.passed for r in results),
            "situations": [r.as_json() for r in results],
        }
        try:
            json_path.write_text(json.dumps(document, indent=1), encoding="utf-8")
        except OSError as error:
            _fail([f"--json: cannot write {json_path}: {error.strerror}"])
    if not all(result.passed for result in results):
        raise SystemExit(EXIT_SOME_FAILED)
