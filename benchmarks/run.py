"""Run every benchmark in this folder and print what it measured (``make bench``).

Each ``bench_*.py`` module defines ``run() -> dict`` returning named figures, always including a
ratio against a baseline measured in the same run (bare SimPy timeouts, aiosmtpd), because absolute
speeds on a shared 2-core machine mean little. A module may also return a list of target rows under
``"targets"`` (see ``targets.py``); they are printed together at the end, as one table of every
target, the figure measured, and whether it was met and by how much. Results are also written to
``benchmarks/results.json`` so a change can be compared with the last run.

Usage: ``python benchmarks/run.py [NAME...] [--million] [--sizes 10000,40000]``; names pick
modules (``scale``, ``mail``, ``net``, ``smtp_live``), options go to the modules that take them
(``bench_scale.py``: ``--million`` adds the 1M-message day, ``--sizes`` picks the days).
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the modules share naive_peer.py and targets.py

from targets import table  # noqa: E402


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _split(argv: list[str]) -> tuple[set[str], list[str]]:
    """Module names, and the options (``--x`` and the value after ``--sizes``)."""
    names: set[str] = set()
    options: list[str] = []
    taking_value = False
    for arg in argv:
        if taking_value or arg.startswith("--"):
            options.append(arg)
            taking_value = arg == "--sizes"
        else:
            names.add(arg)
    return names, options


def main(argv: list[str]) -> int:
    wanted, options = _split(argv)
    results: dict[str, dict] = {}
    rows: list[dict] = []
    for path in sorted(HERE.glob("bench_*.py")):
        name = path.stem.removeprefix("bench_")
        if wanted and name not in wanted:
            continue
        print(f"== {name}", flush=True)
        started = time.perf_counter()
        module = _load(path)
        takes_argv = "argv" in inspect.signature(module.run).parameters
        figures = module.run(options) if takes_argv else module.run()
        rows.extend(figures.get("targets", ()))
        for key, value in figures.items():
            if key == "targets":
                continue
            shown = f"{value:,.3f}" if isinstance(value, float) else str(value)
            print(f"   {key:<48} {shown}")
        print(f"   ({time.perf_counter() - started:.1f} s)", flush=True)
        results[name] = figures
    meta = {"python": platform.python_version(), "machine": platform.machine()}
    (HERE / "results.json").write_text(json.dumps({"meta": meta, **results}, indent=2) + "\n")
    if rows:
        print("\n== targets (every figure measured in this run)")
        print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
