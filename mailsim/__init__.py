"""mailsim: a discrete-event simulator and teaching environment for Internet e-mail.

The package is layered (see docs/design.md): ``protocol`` holds the pure SMTP and POP3
state machines, ``net`` the simulated network, ``mail`` messages, queues and retry policies,
``nodes`` the simulated mail servers and user agents, ``trace`` the single record of what happened,
``scenario`` the YAML language, ``plot`` the figures, and ``live`` the same machines on real
sockets.

Importing ``mailsim`` is cheap: heavy libraries load only when the part that needs them is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from mailsim.live.background import BackgroundRun
    from mailsim.scenario.schema import Scenario
    from mailsim.study import Study

__version__ = "0.1.0"

__all__ = ["__version__", "load", "serve", "sweep"]


def load(path_or_name: str) -> Scenario:
    """A scenario from a YAML file or by the name of a bundled one (``"james-to-steve"``).

    The result is editable in Python; ``scenario.run(seed=None, until=None)`` runs it.

    Raises:
        FileNotFoundError: no such file and no bundled scenario of that name.
        mailsim.scenario.ScenarioError: the scenario has problems (one line each in ``str()``).
    """
    from mailsim.scenario.catalog import load as load_scenario

    return load_scenario(path_or_name)


def serve(
    path_or_name: str,
    directory: str | Path | None = None,
    *,
    time_scale: float = 60.0,
    base_port: int = 0,
    fresh: bool = False,
    echo: Callable[[str], None] | None = None,
) -> BackgroundRun:
    """Start a scenario's mail servers live on 127.0.0.1, in the background (``mailsim serve``).

    Returns a started :class:`~mailsim.live.background.BackgroundRun`: ``run.ports`` is the port
    table, ``run.control("cut", "india-mail", "usa-mail")`` stages an outage, ``run.stop()`` (or
    a ``with`` block) stops it. Its folder (default ``runs/<scenario>-live/``) holds the trace,
    so ``mailsim plot`` draws it.

    Args:
        path_or_name: a scenario file or a bundled scenario's name.
        directory: the run's folder.
        time_scale: scenario seconds per real second (60: a 30-minute retry in 30 s).
        base_port: the port table's base; 0 picks free ports.
        fresh: start over instead of resuming an earlier run in ``directory``.
        echo: where to send the console log, e.g. ``print`` (default: nowhere).
    """
    from pathlib import Path

    from mailsim.live.background import BackgroundRun
    from mailsim.scenario.builder import build_world

    scenario = load(path_or_name)
    name = Path(path_or_name).stem
    folder = Path(directory) if directory is not None else Path("runs") / f"{name}-live"
    run = BackgroundRun(
        build_world(scenario),
        folder,
        scenario=name,
        seed=scenario.seed,
        time_scale=time_scale,
        base_port=base_port,
        fresh=fresh,
        echo=echo,
    )
    return run.start()


def sweep(study_or_scenario: Study | Scenario | str, grid: Any = None, **options: Any) -> Any:
    """Run a parameter study; returns one row per run as a pandas DataFrame.

    ``mailsim.sweep("outage-study")`` runs a bundled study; ``mailsim.sweep("link-outage",
    grid={"faults[0].down_for": ["1h", "3h"]}, replications=5)`` varies a scenario; pass
    ``client=distributed.Client(...)`` to run on a Dask cluster. See :func:`mailsim.study.sweep`
    for every option.
    """
    from mailsim.study import sweep as run_sweep

    return run_sweep(study_or_scenario, grid, **options)
