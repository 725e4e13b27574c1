"""The README's Python examples run and print what the README says they print."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_tcp_handshake_example_prints_the_times_shown() -> None:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("The layers underneath") :]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    shown = re.search(r"arrives at 2 RTT.*?```\n(.*?)```", section, re.S)
    assert code and shown
    out = subprocess.run(
        [sys.executable, "-c", code.group(1)], capture_output=True, text=True, check=True
    ).stdout
    assert out == shown.group(1)


def test_the_python_api_example_runs(tmp_path: Path) -> None:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Python API") :]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code
    program = "import matplotlib\nmatplotlib.use('Agg')\n" + code.group(1)
    subprocess.run([sys.executable, "-c", program], cwd=tmp_path, check=True, capture_output=True)
    assert (tmp_path / "runs" / "my-run" / "summary.json").is_file()
