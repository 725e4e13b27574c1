"""The ready-made scenarios shipped inside the package, and loading by path or by name.

``mailsim run james-to-steve`` works from any folder: a name that is not an existing file is
looked up among the bundled scenarios (``mailsim/scenarios/*.yaml``, also reachable as the
``scenarios/`` folder of a source checkout).
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from mailsim.scenario.errors import ScenarioError, did_you_mean
from mailsim.scenario.loader import load_scenario
from mailsim.scenario.overrides import Override
from mailsim.scenario.schema import Scenario


def bundled_dir() -> Path:
    """The folder of the bundled scenarios."""
    return Path(str(resources.files("mailsim") / "scenarios"))


def bundled() -> list[tuple[str, str]]:
    """(name, one line on what it shows) for every bundled scenario, by name.

    The line is the scenario's first comment, ``# name: what it shows``.
    """
    out = []
    for path in sorted(bundled_dir().glob("*.yaml")):
        first = path.read_text(encoding="utf-8").split("\n", 1)[0]
        headline = first.lstrip("#").strip()
        prefix = f"{path.stem}:"
        out.append(
            (path.stem, headline[len(prefix) :].strip() if headline.startswith(prefix) else "")
        )
    return out


def find(name_or_path: str) -> Path:
    """The scenario file for a path or a bundled name.

    Raises:
        FileNotFoundError: neither a file nor a bundled scenario of that name; the message lists
            the bundled names.
    """
    path = Path(name_or_path)
    if path.is_file():
        return path
    stem = path.stem if path.suffix in (".yaml", ".yml") else name_or_path
    candidate = bundled_dir() / f"{stem}.yaml"
    if candidate.is_file() and len(path.parts) == 1:
        return candidate
    if path.is_dir():
        files = sorted(p.name for p in path.glob("*.y*ml"))
        inside = (
            f"; its scenario files: {', '.join(files)}" if files else ", and has no .yaml files"
        )
        raise FileNotFoundError(f"{name_or_path}: a folder, not a scenario file{inside}")
    known = [name for name, _ in bundled()]
    raise FileNotFoundError(
        f"{name_or_path}: no such file, and no bundled scenario of that name"
        f"{did_you_mean(stem, known)} (bundled: {', '.join(known)})"
    )


def load(name_or_path: str, overrides: Sequence[Override] = ()) -> Scenario:
    """Load and validate a scenario by path or bundled name, with ``overrides`` applied.

    Raises:
        FileNotFoundError: see :func:`find`.
        ScenarioError: the file has problems; ``str()`` gives one line per problem.
    """
    path = find(name_or_path)
    return load_scenario(path, overrides=overrides)


__all__ = ["ScenarioError", "bundled", "bundled_dir", "find", "load"]
