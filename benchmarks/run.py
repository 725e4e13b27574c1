"""Run every benchmark in this folder and print what it measured (``make bench``).

Each ``bench_*.py`` module defines ``run() -> dict`` returning named figures, always including a
ratio against a baseline measured in the same run (bare SimPy timeouts, aiosmtpd), because absolute
speeds on a shared 2-core machine mean little. Results are also written to
``benchmarks/results.json`` so a change can be compared with the last run.
"""

from __future__ import annotations

import importlib.util
import json
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv: list[str]) -> int:
    wanted = set(argv)
    results: dict[str, dict] = {}
    for path in sorted(HERE.glob("bench_*.py")):
        name = path.stem.removeprefix("bench_")
        if wanted and name not in wanted:
            continue
        print(f"== {name}", flush=True)
        started = time.perf_counter()
        figures = _load(path).run()
        for key, value in figures.items():
            shown = f"{value:,.3f}" if isinstance(value, float) else str(value)
            print(f"   {key:<48} {shown}")
        print(f"   ({time.perf_counter() - started:.1f} s)", flush=True)
        results[name] = figures
    meta = {"python": platform.python_version(), "machine": platform.machine()}
    (HERE / "results.json").write_text(json.dumps({"meta": meta, **results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
