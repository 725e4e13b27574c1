"""Importing mailsim.plot is cheap: the heavy libraries load only when a figure is drawn."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_plot_package_loads_neither_matplotlib_nor_networkx():
    code = (
        "import sys, mailsim.plot; "
        "print(sorted(m for m in ('matplotlib', 'networkx', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
