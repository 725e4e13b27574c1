"""The ``mailsim`` command.

Start-up is kept fast: this module imports only click. Subcommands that live in other layers
(``serve`` and ``send`` in :mod:`mailsim.live.cli`) are loaded by name only when invoked, and each
command here imports what it needs (simpy, pandas, matplotlib) inside its body.

Exit codes (docs/design.md): 0 success; 2 bad input (scenario, arguments), one line per problem;
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
    "ctl": "mailsim.live.scenario_cli:ctl",
    "telnet": "mailsim.live.telnet:telnet",
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
    """Print bad-input problems one per line and exit 2 (docs/design.md contract)."""
    for line in lines:
        click.echo(line, err=True)
    raise SystemExit(2)


def _load(scenario: str, assignments: tuple[str, ...] = ()) -> Any:
    """A scenario by path or bundled name, changed by ``--set``; or exit 2 with its problems."""
    from mailsim.scenario import ScenarioError
    from mailsim.scenario.catalog import load
    from mailsim.scenario.overrides import in_context, parse_assignment

    overrides = []
    for text in assignments:
        try:
            overrides.append(parse_assignment(text))
        except ValueError as error:
            _fail_input([f"--set {error}"])
    try:
        return load(scenario, overrides)
    except ScenarioError as error:
        _fail_input([str(problem) for problem in in_context(error.problems, overrides)])
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
    from mailsim.scenario.schema.fields import MAX_DURATION

    if value > MAX_DURATION:
        _fail_input(
            [f"--until: must be at most 365d, the longest run mailsim simulates, got {text!r}"]
        )
    return value


def _format_option(command: Any) -> Any:
    """``--format table|json|tsv``; without it, a table on a terminal and JSON elsewhere."""
    return click.option(
        "--format",
        "output_format",
        type=click.Choice(["table", "json", "tsv"]),
        help="Output for people (table) or programs (json, tsv); default: table on a "
        "terminal, json when piped (docs/cli-output.md).",
    )(command)


def _message_option(command: Any) -> Any:
    return click.option(
        "--message",
        default="auto",
        show_default=True,
        metavar="ID|auto|all",
        help="What sequence.png shows: one message's journey (its id, like m260@usa.com), "
        "the whole run (all), or the whole run unless it is busy, then the journey of a "
        "message that was retried (auto).",
    )(command)


def _chart_message(message: str) -> str | None:
    """``--message`` as ``render_all`` takes it: all is None."""
    return None if message == "all" else message


def _figure_size_option(command: Any) -> Any:
    return click.option(
        "--figure-size",
        type=click.Choice(["default", "slide"]),
        default="default",
        show_default=True,
        help="slide: 16:9 figures with large type, readable at 1920x1080 on a projector.",
    )(command)


@main.command()
@click.argument("scenario")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    help="Output folder (default: runs/NAME/ for a bundled NAME, runs/STEM/ for STEM.yaml).",
)
@click.option("--seed", type=click.IntRange(min=0), help="Random seed (default: the scenario's).")
@click.option(
    "--until", help="Run until this simulated time instead of the scenario's duration, like 3h."
)
@click.option("--pcap", is_flag=True, help="Also write trace.pcap for Wireshark.")
@click.option(
    "--pcap-filter",
    "pcap_filter",
    multiple=True,
    metavar="PROTO",
    help="Only these packets in the pcap files: smtp, pop3, dns (repeat or comma list; "
    "implies --pcap).",
)
@click.option(
    "--pcap-per-node",
    is_flag=True,
    help="Also write pcap/<node>.pcap: the packets each node sent or was sent.",
)
@click.option("--no-figures", is_flag=True, help="Skip the PNG figures (faster).")
@click.option(
    "--trace",
    type=click.Choice(["full", "summary", "off"]),
    default="full",
    show_default=True,
    help="How much to record: every line, only what summary.json and the timeline need "
    "(no transcript, much faster), or nothing but summary.json.",
)
@_figure_size_option
@_message_option
@click.option(
    "--mailboxes",
    type=click.Path(file_okay=False),
    help="Also write every user's mail into this folder, for mutt or Thunderbird.",
)
@click.option(
    "--mailbox-format",
    type=click.Choice(["maildir", "mbox"]),
    default="maildir",
    show_default=True,
    help="A Maildir folder per user, or one mbox file per user.",
)
@_format_option
@click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors.")
@click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="PATH=VALUE",
    help="Change one field, like faults[0].down_for=3h or servers.retry.policy=exim (repeatable).",
)
def run(
    scenario: str,
    out_dir: str | None,
    seed: int | None,
    until: str | None,
    pcap: bool,
    pcap_filter: tuple[str, ...],
    pcap_per_node: bool,
    no_figures: bool,
    trace: str,
    figure_size: str,
    message: str,
    mailboxes: str | None,
    mailbox_format: str,
    output_format: str | None,
    quiet: bool,
    assignments: tuple[str, ...],
) -> None:
    """Run SCENARIO (a YAML file, or the name of a bundled one like james-to-steve)."""
    from mailsim.cli_formats import choose_format
    from mailsim.cli_report import run_command
    from mailsim.plot import PlotError
    from mailsim.scenario.mailboxes import MailboxExportError

    if pcap_filter:
        from mailsim.trace.pcap import check_protocols

        try:
            check_protocols(pcap_filter)
        except ValueError as error:
            _fail_input([f"--pcap-filter: {error}"])
    model = _load(scenario, assignments)
    try:
        code = run_command(
            model,
            scenario,
            out_dir=out_dir,
            seed=seed,
            until=_parse_until(until),
            pcap=pcap or bool(pcap_filter),
            pcap_filter=pcap_filter or None,
            pcap_per_node=pcap_per_node,
            figures=not no_figures,
            trace=trace,
            figure_size=figure_size,
            message=_chart_message(message),
            mailboxes=mailboxes,
            mailbox_format=mailbox_format,
            quiet=quiet,
            output_format=choose_format(output_format),
        )
    except MailboxExportError as error:
        _fail_input([f"--mailboxes: {error}"])
    except PlotError as error:  # the run's events and summary are written already
        _fail_input([f"figures: {error}; the run's events.jsonl and summary.json are written"])
    raise SystemExit(code)


@main.command()
@click.argument("scenarios", nargs=-1, required=True)
@click.option("--strict", is_flag=True, help="Count warnings as errors (exit 2).")
@_format_option
def validate(scenarios: tuple[str, ...], strict: bool, output_format: str | None) -> None:
    """Check SCENARIOS for mistakes; print one line per problem (exit 2 if any).

    Warnings (valid, but probably not meant: a recipient nobody serves, a bare number where a
    unit belongs, a mail server others cannot reach) are printed too; they fail only with
    --strict.
    """
    from mailsim.cli_formats import (
        VALIDATE_COLUMNS,
        choose_format,
        problem_record,
        validate_rows,
        write_json,
        write_tsv,
    )
    from mailsim.scenario import Problem, ScenarioError
    from mailsim.scenario.catalog import find, load

    fmt = choose_format(output_format)
    checked: list[dict[str, Any]] = []
    failed = False
    for name in scenarios:
        errors: list[Problem] = []
        warnings: list[Problem] = []
        file = name
        try:
            file = str(find(name))
            warnings = load(name).warnings
        except ScenarioError as error:
            errors = error.problems
        except FileNotFoundError as error:
            errors = [Problem(name, 0, 0, "", str(error).removeprefix(f"{name}: "))]
        ok = not errors and not (strict and warnings)
        failed |= not ok
        for problem in [*errors, *warnings]:
            click.echo(str(problem), err=True)
        if fmt == "table" and not errors:
            count = len(warnings)
            noted = f" ({count} warning{'s' if count != 1 else ''})" if count else ""
            click.echo(f"{name}: {'ok' if ok else 'fails under --strict'}{noted}")
        checked.append(
            {
                "scenario": name,
                "file": file,
                "ok": ok,
                "errors": [problem_record(p) for p in errors],
                "warnings": [problem_record(p) for p in warnings],
            }
        )
    if fmt == "json":
        write_json({"ok": not failed, "strict": strict, "scenarios": checked})
    elif fmt == "tsv":
        write_tsv(VALIDATE_COLUMNS, validate_rows(checked))
    if failed:
        raise SystemExit(2)


@main.command()
@click.argument("study")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Local worker processes (default: the cores; 1 runs in this process).",
)
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    help="Send the runs to a Dask cluster, like tcp://127.0.0.1:8786.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    help="Output folder (default: runs/<study file name>/).",
)
@click.option("--resume", is_flag=True, help="Keep the runs the folder's results.csv holds.")
@click.option("--no-figures", is_flag=True, help="Skip sweep.png.")
@_figure_size_option
@click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors.")
@click.option(
    "--command",
    "show_run",
    type=click.IntRange(min=0),
    metavar="RUN",
    help="Print the 'mailsim run' command that repeats run RUN (results.csv's run) and exit.",
)
def sweep(
    study: str,
    workers: int | None,
    scheduler: str | None,
    out_dir: str | None,
    resume: bool,
    no_figures: bool,
    figure_size: str,
    quiet: bool,
    show_run: int | None,
) -> None:
    """Run every combination of a STUDY's parameters, each replication with its own seed.

    STUDY is a study file or a bundled study (outage-study, persistence-study). Writes
    results.csv, aggregate.csv (means, 95% intervals), study.json and sweep.png. Exit 3 when
    some runs failed (the rest are kept), 130 when interrupted (go on with --resume).
    """
    from pathlib import Path

    from mailsim.study import StudyError, load_study
    from mailsim.study.loader import find_study, is_study_file

    if scheduler is not None and workers is not None:
        _fail_input(
            ["--workers: the cluster's workers run the tasks; leave it out with --scheduler"]
        )
    try:
        path = find_study(study)
        if not is_study_file(path):
            _fail_input(
                [
                    f"{study}: this is a scenario, not a study; a study file names its scenario: "
                    "and the parameters: to vary (see docs/studies.md)"
                ]
            )
        model = load_study(study)
    except StudyError as error:
        _fail_input(error.lines)
    except FileNotFoundError as error:
        _fail_input([str(error)])
    if show_run is not None:
        runs = model.runs()
        if show_run >= len(runs):
            _fail_input([f"--command: the study has runs 0 to {len(runs) - 1}, got {show_run}"])
        click.echo(model.command(runs[show_run]))
        return
    from mailsim.study.report import SchedulerError, connect, sweep_command

    client = None
    if scheduler is not None:
        try:
            client = connect(scheduler)
        except SchedulerError as error:
            _fail_input([str(error)])
    figure = None
    if not no_figures:
        from functools import partial

        from mailsim.plot.sweep import save_sweep_figure

        figure = partial(save_sweep_figure, size=figure_size)
    out = Path(out_dir) if out_dir else Path("runs") / path.stem
    try:
        code = sweep_command(
            model, out, workers=workers, client=client, resume=resume, figure=figure, quiet=quiet
        )
    except StudyError as error:  # --resume found another study's results.csv
        _fail_input(error.lines)
    finally:
        if client is not None:
            client.close()
    raise SystemExit(code)


@main.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@_figure_size_option
@_message_option
def plot(directory: str, figure_size: str, message: str) -> None:
    """Redraw the figures of a run folder from its events.jsonl, or of a sweep folder."""
    from pathlib import Path

    from mailsim.plot import PlotError, render_all
    from mailsim.trace import load_events

    if (Path(directory) / "study.json").is_file():
        from mailsim.plot.sweep import save_sweep_figure

        if message != "auto":
            _fail_input([f"--message: {directory} is a sweep folder; it has no sequence chart"])

        try:
            click.echo(f"wrote {save_sweep_figure(Path(directory), size=figure_size)}")
        except PlotError as error:
            _fail_input([f"{directory}: {error}"])
        return
    events = Path(directory) / "events.jsonl"
    if not events.is_file():
        _fail_input([f"{directory}: no events.jsonl here; give the folder 'mailsim run' wrote"])
    try:
        records = load_events(events)
    except ValueError as error:
        _fail_input([f"{events}: not a mailsim trace ({error})"])
    try:
        written = render_all(
            records, Path(directory), size=figure_size, message=_chart_message(message)
        )
    except PlotError as error:
        _fail_input([f"--message: {error}"])
    for path in written:
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
@_format_option
def list_scenarios(output_format: str | None) -> None:
    """List the bundled scenarios and what each teaches."""
    from mailsim.cli_formats import choose_format, write_json, write_tsv
    from mailsim.scenario.catalog import bundled, bundled_dir

    fmt = choose_format(output_format)
    listed = [
        {"name": name, "teaches": line, "file": str(bundled_dir() / f"{name}.yaml")}
        for name, line in bundled()
    ]
    if fmt == "json":
        write_json({"scenarios": listed})
    elif fmt == "tsv":
        write_tsv(
            ("name", "teaches", "file"), ([s["name"], s["teaches"], s["file"]] for s in listed)
        )
    else:
        for entry in listed:
            click.echo(f"{entry['name']:<24} {entry['teaches']}")


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
