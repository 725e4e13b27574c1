"""`make demo` checks the Python version first and rebuilds a .venv made by another Python.

The Makefile is run for real in a scratch folder, with fake interpreters: shell scripts that
answer the version question as Python 3.10 or 3.11 would, and make a fake .venv whose mailsim
only says it ran. No real old Python is needed.
"""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")

#: A fake interpreter of version MAJOR.MINOR: `-c` prints what `python -c 'print(*version,
#: ok)'` would, `-m venv DIR` makes a venv holding a fake python of the same version and a fake
#: mailsim, `-m pip` does nothing.
FAKE_PYTHON = """#!/bin/sh
case "$1" in
  -c) echo "{major} {minor} {ok}" ;;
  -m)
    if [ "$2" = venv ]; then
      mkdir -p "$3/bin"
      cp "$0" "$3/bin/python"
      printf '#!/bin/sh\\necho "fake mailsim $*"\\n' > "$3/bin/mailsim"
      chmod +x "$3/bin/mailsim"
    fi ;;
esac
"""


def fake_python(path: Path, major: int, minor: int) -> Path:
    ok = int((major, minor) >= (3, 11))
    path.write_text(FAKE_PYTHON.format(major=major, minor=minor, ok=ok), encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n", encoding="utf-8")
    return tmp_path


def make(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(project), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_python_older_than_3_11_gets_one_line_saying_what_to_do(project: Path) -> None:
    old = fake_python(project / "python3.10", 3, 10)
    done = make(project, "demo", f"PYTHON={old}")
    assert done.returncode != 0
    said = [line for line in done.stdout.splitlines() if line.strip()]
    assert len(said) == 1, done.stdout
    assert "3.10" in said[0] and "make demo PYTHON=python3.11" in said[0]
    assert not (project / ".venv").exists()


def test_a_python_that_does_not_run_is_named(project: Path) -> None:
    done = make(project, "demo", "PYTHON=no-such-python3.11")
    assert done.returncode != 0
    assert "'no-such-python3.11' does not run" in done.stdout


def test_a_venv_made_by_another_python_is_rebuilt(project: Path) -> None:
    # What a machine whose python3 was 3.10 leaves behind after a failed `make demo`.
    stale = project / ".venv"
    fake_python(project / "python3.10", 3, 10)
    subprocess.run([str(project / "python3.10"), "-m", "venv", str(stale)], check=True)
    (stale / "left-by-3.10").touch()
    new = fake_python(project / "python3.11", 3, 11)
    done = make(project, "demo", f"PYTHON={new}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "rebuilding .venv: it was made by Python 3.10, not 3.11" in done.stdout
    assert not (stale / "left-by-3.10").exists()
    assert "fake mailsim demo" in done.stdout
    # Ready now: a second run neither rebuilds nor reinstalls.
    again = make(project, "demo", f"PYTHON={new}")
    assert "rebuilding" not in again.stdout and "pip install" not in again.stdout
    assert "fake mailsim demo" in again.stdout


def test_without_python_given_a_new_enough_one_is_found_on_the_path(project: Path) -> None:
    bin_dir = project / "bin"
    bin_dir.mkdir()
    fake_python(bin_dir / "python3", 3, 10)
    fake_python(bin_dir / "python3.12", 3, 12)
    env_path = f"{bin_dir}:/usr/bin:/bin"
    done = subprocess.run(
        ["make", "--no-print-directory", "-C", str(project), "demo"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": env_path},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "python3.12 -m venv .venv" in done.stdout
