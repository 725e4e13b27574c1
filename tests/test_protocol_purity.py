"""The protocol machines import only the standard library: no simulator, event loop or socket."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mailsim.protocol

PROTOCOL_DIR = Path(mailsim.protocol.__file__).parent


def test_protocol_modules_import_no_io_or_simulation() -> None:
    modules = ["mailsim.protocol.smtp"]
    if (PROTOCOL_DIR / "pop3.py").exists():  # written in parallel; tested once it exists
        modules.append("mailsim.protocol.pop3")
    code = (
        f"import sys, {', '.join(modules)}; "
        "bad = {'simpy', 'asyncio', 'socket'} & set(sys.modules); "
        "assert not bad, sorted(bad)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
