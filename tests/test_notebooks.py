"""The classroom notebooks run from top to bottom, show what they promise, and are committed clean.

Each notebook in ``notebooks/`` is executed with nbclient in a fresh kernel of this very Python
(a kernelspec written for the test run, so a ``python3`` kernel installed elsewhere on the machine
cannot stand in), in a temporary working directory so nothing a notebook writes is left behind.
Any cell error fails the test; the notebooks hold their own visible ``assert`` checks, and the tests
below also look for the outputs that carry each notebook's lesson. The committed files must have
no outputs and no execution counts (outputs belong to the student's run, not to git).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
ALL_NOTEBOOKS = sorted(NOTEBOOKS.glob("*.ipynb"))

#: Text that must appear in a notebook's outputs after it ran: each line is the point of a lesson.
EXPECTED_TEXT: dict[str, list[str]] = {
    "01-six-steps.ipynb": [
        # Step 4: SYN, SYN-ACK, ACK and the greeting cross the 112 ms path four times.
        "ms = 4.0 crossings",
        "The server said exactly what the tutorial says.",
        # HELO typed by hand waits for 6 replies; EHLO with PIPELINING for 4.
        "typed by hand (HELO, one command at a time): 6",
        "india-mail (EHLO and PIPELINING):            4",
        "Do you have a Grammar Book?",
    ],
    "02-retries-and-bounces.ipynb": [
        "each followed by a wait of 30 to 40 minutes",
        "Action:         failed",
        "Status:         5.4.7",
    ],
    "03-inside-smtp.ipynb": [
        "250 Message accepted for delivery.",
        "503 Error: need MAIL command",
        "MessageReceived from 'james@india.com'",
        # 2,000,000 bytes of photo become 4/3 x 78/76 as much base64 (plus headers).
        "4/3 x 78/76 = 1.368",
        "messages still in the mailbox: 1",
    ],
    "10-parameter-study.ipynb": [
        # Replication 57 of the outage study: point 5 (3h, exim), seed 1000 + 7.
        "--seed 1007 --set 'faults[0].down_for=3h' --set servers.retry.policy=exim",
        "Exim's default rules keep the mail",
        "identical rows on the cluster: True",
    ],
}

#: Figures each notebook must display (inline PNGs): a figure left as a cell's last expression
#: shows only if ``%matplotlib inline`` is in force.
EXPECTED_TEXT["09-mail-client-lab.ipynb"] = [
    # Bob forgot dot-stuffing; Carol blasted every command before reading a reply.
    "bob    dot-line         the message arrived cut short",
    "carol  no-pipelining    a command was sent before the reply to the previous one",
    "(sent ",
]

EXPECTED_TEXT["11-real-sockets.ipynb"] = [
    # The live servers tell the simulation's story: queued through a cut, retried, delivered.
    "cut the route between india-mail and usa-mail: link india-gw - usa-gw down",
    "Connection timed out",
    "each followed by a wait of 30 to 40 minutes, as the tutorial says",
    "india-mail -> usa-mail.usa.com: 250 2.0.0 Ok: queued as",
    "steve has 1 message",
    "Delivered-To: steve@usa.com",
    "india-mail -> usa-mail:25 (SMTP)",
]

EXPECTED_FIGURES = {
    "01-six-steps.ipynb": 3,  # topology, sequence diagram, timeline
    "02-retries-and-bounces.ipynb": 3,  # outage timeline, retry policies, bounce timeline
    "03-inside-smtp.ipynb": 3,  # simple and complete SMTP server, POP3 server
    "10-parameter-study.ipynb": 1,  # delay and attempts against outage length, per policy
    "11-real-sockets.ipynb": 1,  # the live run's delivery timeline
}

_KERNEL_CHECK = "import sys\nprint('kernel python:', sys.executable)"


@pytest.fixture
def this_python_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A ``python3`` kernelspec that runs this interpreter, found before any other on the path."""
    from ipykernel.kernelspec import write_kernel_spec

    kernels = tmp_path / "jupyter" / "kernels"
    kernels.mkdir(parents=True)
    write_kernel_spec(str(kernels / "python3"))
    # JUPYTER_PATH comes first in Jupyter's data path, ahead of user and system kernelspecs.
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    return "python3"


def _outputs(nb: Any, kind: str) -> list[Any]:
    return [
        output
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.output_type == kind
    ]


def _printed(nb: Any) -> str:
    """Everything the notebook printed to stdout, and the plain text of its results."""
    # A kernel may split one print() across several stream messages (it flushes on a timer, so
    # a loaded machine splits more): stdout is concatenated as written, never joined with "\n".
    parts = ["".join(o.text for o in _outputs(nb, "stream") if o.name == "stdout")]
    for kind in ("execute_result", "display_data"):
        parts += [o.data.get("text/plain", "") for o in _outputs(nb, kind)]
    return "\n".join(parts)


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_clean_and_shows_its_lessons(
    path: Path, tmp_path: Path, this_python_kernel: str
) -> None:
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(_KERNEL_CHECK))
    workdir = tmp_path / "work"
    workdir.mkdir()
    client = nbclient.NotebookClient(
        nb,
        timeout=300,
        kernel_name=this_python_kernel,
        resources={"metadata": {"path": str(workdir)}},
    )
    client.execute()  # raises CellExecutionError, with the cell and traceback, on any error

    printed = _printed(nb)
    assert f"kernel python: {sys.executable}" in printed, "the kernel ran another Python"
    for text in EXPECTED_TEXT.get(path.name, []):
        assert text in printed, f"{path.name}: expected output {text!r} is missing"
    figures = [o for kind in ("execute_result", "display_data") for o in _outputs(nb, kind)]
    pngs = sum("image/png" in o.data for o in figures)
    assert pngs >= EXPECTED_FIGURES.get(path.name, 0), f"{path.name}: only {pngs} figures shown"
    stderr = "".join(o.text for o in _outputs(nb, "stream") if o.name == "stderr")
    assert "Warning" not in stderr, f"{path.name} shows warnings to the student:\n{stderr}"


def test_the_three_classroom_notebooks_are_there() -> None:
    assert set(EXPECTED_TEXT) <= {p.name for p in ALL_NOTEBOOKS}


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebook_has_no_outputs_or_execution_counts(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"
    for index, cell in enumerate(nb.cells):
        where = f"{path.name} cell {index} ({cell.get('id')})"
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{where} has outputs; clear them before committing"
            assert cell.execution_count is None, f"{where} has an execution count"
        assert "execution" not in cell.metadata, f"{where} carries execution timings"
    assert "widgets" not in nb.metadata, f"{path.name} carries widget state"
