"""``mailsim serve SCENARIO`` and ``mailsim ctl``: a scenario's servers live, and outages by hand.

Loaded by :mod:`mailsim.live.cli` only when a scenario is served, so ``mailsim serve --help``
stays instant. Exit codes: 0 after a clean stop (Ctrl+C or SIGTERM); 2 bad input (an
unknown scenario, a bad option, a port in use, a folder that holds another run); for ``ctl``, 2
when no run answers or the run refuses the command.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

import click

from mailsim.live.ctl import COMMANDS


def _fail(lines: list[str]) -> None:
    """Print bad-input problems one per line and exit 2 (docs/design.md contract)."""
    for line in lines:
        click.echo(line, err=True)
    raise SystemExit(2)


def default_directory(scenario: str) -> Path:
    """``runs/<scenario>-live/``, where a live run of ``scenario`` writes by default."""
    return Path("runs") / f"{Path(scenario).stem}-live"


def serve_scenario(
    scenario: str,
    *,
    directory: Path | None,
    time_scale: float,
    base_port: int,
    json_ports: Path | None,
    fresh: bool,
    quiet: bool,
) -> None:
    """Load ``scenario``, start its servers live and run until Ctrl+C or SIGTERM."""
    from mailsim.live.clock import MAX_TIME_SCALE
    from mailsim.scenario import ScenarioError
    from mailsim.scenario.builder import build_world
    from mailsim.scenario.catalog import load

    if not 0 < time_scale <= MAX_TIME_SCALE:
        _fail(
            [f"--time-scale: must be above 0 and at most {MAX_TIME_SCALE:,.0f}, got {time_scale:g}"]
        )
    try:
        model = load(scenario)
    except ScenarioError as error:
        _fail(str(error).splitlines())
    except FileNotFoundError as error:
        _fail([str(error)])
    name = Path(scenario).stem
    folder = directory if directory is not None else default_directory(scenario)
    world = build_world(model)
    logging.getLogger("mailsim.live").setLevel(logging.WARNING if quiet else logging.INFO)
    echo = None if quiet else _echo
    with contextlib.suppress(KeyboardInterrupt):  # platforms without loop signal handlers
        asyncio.run(
            _run(world, folder, name, model.seed, time_scale, base_port, json_ports, fresh, echo)
        )


def _echo(line: str) -> None:
    click.echo(line)
    sys.stdout.flush()


async def _run(
    world: Any,
    folder: Path,
    name: str,
    seed: int,
    time_scale: float,
    base_port: int,
    json_ports: Path | None,
    fresh: bool,
    echo: Any,
) -> None:
    from mailsim.live.world import LiveError, LiveWorld, vars_of

    try:
        live = LiveWorld(
            world,
            folder,
            scenario=name,
            seed=seed,
            time_scale=time_scale,
            base_port=base_port,
            echo=echo,
            fresh=fresh,
        )
        ports = await live.start()
    except (LiveError, OSError) as error:
        click.echo(f"mailsim serve: {error}", err=True)
        raise SystemExit(2) from None
    if json_ports is not None:
        document = {node: vars_of(p) for node, p in ports.items()}
        tmp = json_ports.with_name(json_ports.name + ".tmp")
        tmp.write_text(json.dumps(document, indent=2) + "\n", "utf-8")
        os.replace(tmp, json_ports)  # whoever waits for the file sees it whole
    _print_table(live, ports, folder)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        click.echo("mailsim serve: stopping (the queues stay on disk) ...", err=True)
        await live.stop()
        click.echo(f"mailsim serve: stopped; the run is in {folder}", err=True)


def _print_table(live: Any, ports: dict[str, Any], folder: Path) -> None:
    from mailsim.mail.units import format_duration

    scale = live.clock.scale
    pace = (
        "real time" if scale == 1 else f"time x{scale:g}: a real second is {format_duration(scale)}"
    )
    lines = [f"mailsim serve: the mail servers of {live.scenario}, live on 127.0.0.1 ({pace})"]
    if live.resumed:
        lines.append(
            f"  resuming the run in {folder} (start {live.starts}; scenario time now "
            f"{_clock(live.clock())}); --fresh starts over"
        )
    rows = [("server", "domains", "SMTP", "submission", "POP3")]
    for node, (_n, domains, _u, _s) in zip(ports, live.world.mail_server_specs(), strict=True):
        p = ports[node]
        rows.append((node, ", ".join(domains), str(p.smtp), str(p.submission), str(p.pop3)))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for row in rows:
        lines.append(
            "  "
            + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    users = live.world.user_addresses()
    if users:
        lines.append(f"  users: {', '.join(users)} (passwords as in the scenario)")
    server, first = next(iter(ports.items()))
    lines += [
        f"Be a user of {server}: nc -C 127.0.0.1 {first.submission} (EHLO, then AUTH PLAIN with "
        "the base64 of \\0user\\0password); its MX port takes mail for its own domains only",
        f"Stage an outage: mailsim ctl --dir {folder} stop|start SERVER, cut|heal NODE NODE "
        "(no command: a prompt)",
        f"Watch it drawn: mailsim plot {folder}      Stop with Ctrl+C.",
    ]
    for line in lines:
        click.echo(line)
    sys.stdout.flush()


def _clock(seconds: float) -> str:
    from mailsim.trace.clock import format_time

    return format_time(seconds)


_CTL_HELP = "\n".join(
    [
        "Stage an outage in a live run (mailsim serve SCENARIO) by hand.",
        "",
        "\b",
        *(f"  {name} {args}".ljust(24) + what for name, (args, what) in COMMANDS.items()),
        "",
        "Without a COMMAND, an interactive prompt takes one command per line.",
        "",
        "Example: mailsim ctl --dir runs/link-outage-live cut india-mail usa-mail",
    ]
)


@click.command(help=_CTL_HELP)
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="The live run's folder (mailsim serve SCENARIO --dir).",
)
@click.argument("command", required=False)
@click.argument("args", nargs=-1)
def ctl(directory: Path, command: str | None, args: tuple[str, ...]) -> None:
    from mailsim.live.ctl import ControlError, prompt, send_command

    try:
        if command is None:
            prompt(directory)
            return
        if command not in COMMANDS:
            _fail([f"mailsim ctl: unknown command {command!r}; use one of {', '.join(COMMANDS)}"])
        click.echo(send_command(directory, command, list(args)))
    except ControlError as error:
        _fail([f"mailsim ctl: {error}"])
