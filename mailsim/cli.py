"""The ``mailsim`` command.

Start-up is kept fast: this module imports only click. Subcommands that live in other layers
(``serve`` and ``send`` in :mod:`mailsim.live.cli`) are loaded by name only when invoked, and each
command here imports what it needs (simpy, pandas, matplotlib) inside its body.

Exit codes (DESIGN.md): 0 success; 2 bad input (scenario, arguments), one line per problem;
1 a failed invariant or an internal error.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from mailsim import __version__

#: Commands defined in other modules, loaded only when used: name -> "module:attribute".
LAZY_COMMANDS = {
    "serve": "mailsim.live.cli:serve",
    "send": "mailsim.live.cli:send",
    "grade": "mailsim.live.cli:grade",
}


class _LazyGroup(click.Group):
    """A click group that imports some subcommands only when they are asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *LAZY_COMMANDS])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = LAZY_COMMANDS.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module_name, attribute = target.split(":")
        command: click.Command = getattr(importlib.import_module(module_name), attribute)
        return command


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mailsim")
def main() -> None:
    """mailsim: watch Internet e-mail move, from SMTP dialogue to queues, retries and bounces."""


def _fail_input(lines: list[str]) -> None:
    """Print bad-input problems one per line and exit 2 (DESIGN.md contract)."""
    for line in lines:
        click.echo(line, err=True)
    raise SystemExit(2)


def _load(scenario: str) -> Any:
    """A scenario by path or bundled name, or exit 2 with its problems."""
    from mailsim.scenario import ScenarioError
    from mailsim.scenario.catalog import load

    try:
        return load(scenario)
    except ScenarioError as error:
        _fail_input(str(error).splitlines())
    except FileNotFoundError as error:
        _fail_input([str(error)])


def _parse_until(text: str | None) -> float | None:
    if text is None:
        return None
    from mailsim.mail.units import parse_duration

    try:
        value = parse_duration(text)
    except ValueError as error:
        _fail_input([f"--until: {error}"])
    if value <= 0:
        _fail_input([f"--until: must be a positive duration like '2h', got {text!r}"])
    return value


@main.command()
@click.argument("scenario")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    help="Output folder (default: runs/<scenario name>/).",
)
@click.option("--seed", type=click.IntRange(min=0), help="Random seed (default: the scenario's).")
@click.option(
    "--until", help="Run until this simulated time instead of the scenario's duration, like 3h."
)
@click.option("--pcap", is_flag=True, help="Also write trace.pcap for Wireshark.")
@click.option("--no-figures", is_flag=True, help="Skip the PNG figures (faster).")
@click.option(
    "--trace",
    type=click.Choice(["full", "summary", "off"]),
    default="full",
    show_default=True,
    help="How much to record: every line, only what summary.json and the timeline need "
    "(no transcript, much faster), or nothing but summary.json.",
)
@click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors.")
def run(
    scenario: str,
    out_dir: str | None,
    seed: int | None,
    until: str | None,
    pcap: bool,
    no_figures: bool,
    trace: str,
    quiet: bool,
) -> None:
    """Run SCENARIO (a YAML file, or the name of a bundled one like james-to-steve)."""
    from mailsim.cli_report import run_command

    model = _load(scenario)
    raise SystemExit(
        run_command(
            model,
            scenario,
            out_dir=out_dir,
            seed=seed,
            until=_parse_until(until),
            pcap=pcap,
            figures=not no_figures,
            trace=trace,
            quiet=quiet,
        )
    )


@main.command()
@click.argument("scenarios", nargs=-1, required=True)
def validate(scenarios: tuple[str, ...]) -> None:
    """Check SCENARIOS for mistakes; print one line per problem (exit 2 if any)."""
    from mailsim.scenario import ScenarioError
    from mailsim.scenario.catalog import load

    problems: list[str] = []
    for name in scenarios:
        try:
            load(name)
        except ScenarioError as error:
            problems.extend(str(error).splitlines())
        except FileNotFoundError as error:
            problems.append(str(error))
        else:
            click.echo(f"{name}: ok")
    if problems:
        _fail_input(problems)


@main.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
def plot(directory: str) -> None:
    """Redraw the figures of a run folder from its events.jsonl."""
    from pathlib import Path

    from mailsim.plot import render_all
    from mailsim.trace import load_events

    events = Path(directory) / "events.jsonl"
    if not events.is_file():
        _fail_input([f"{directory}: no events.jsonl here; give the folder 'mailsim run' wrote"])
    try:
        records = load_events(events)
    except ValueError as error:
        _fail_input([f"{events}: not a mailsim trace ({error})"])
    for path in render_all(records, Path(directory)):
        click.echo(f"wrote {path}")


@main.command()
@click.argument("name")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def new(name: str, force: bool) -> None:
    """Write a commented starter scenario NAME.yaml to edit."""
    from pathlib import Path

    from mailsim.scenario import starter_scenario

    path = Path(name if name.endswith((".yaml", ".yml")) else f"{name}.yaml")
    if path.exists() and not force:
        _fail_input([f"{path}: already exists; choose another name or add --force"])
    path.write_text(starter_scenario(path.stem), encoding="utf-8")
    click.echo(f"wrote {path}; run it with: mailsim run {path}")


@main.command("scenarios")
def list_scenarios() -> None:
    """List the bundled scenarios and what each teaches."""
    from mailsim.scenario.catalog import bundled

    for name, first_line in bundled():
        click.echo(f"{name:<24} {first_line}")


@main.command()
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default="runs/james-to-steve",
    show_default=True,
    help="Output folder.",
)
def demo(out_dir: str) -> None:
    """Run the James-to-Steve story and show where its outputs are."""
    from mailsim.cli_report import run_command

    raise SystemExit(
        run_command(_load("james-to-steve"), "james-to-steve", out_dir=out_dir, demo=True)
    )


if __name__ == "__main__":  # pragma: no cover
    main()
