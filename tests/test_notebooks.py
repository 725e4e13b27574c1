"""The classroom course runs from top to bottom, its exercises check, and it is committed clean.

Every notebook in ``notebooks/`` and every worked answer in ``notebooks/solutions/`` is executed
with nbclient in a fresh kernel of this very Python (a kernelspec written for the test run, so a
``python3`` kernel installed elsewhere cannot stand in), headless (inline PNGs), in a temporary
working directory, within :data:`NOTEBOOK_SECONDS`. Any cell error fails the test.

An exercise is a markdown cell whose first line starts with ``**Exercise``, then the answer cell
(assignments only: ``answer = ...``), then the check cell, whose result shows ``right`` or
``not yet, hint: ...``. In the students' notebooks every check must say "not yet" (nothing is
answered); in the solutions every check must say "right", and the same check run once more with
each answer changed (a wrong answer of the same kind) must say "not yet". The solutions are the
same notebooks as the students' but for the answer cells. Committed files carry no outputs.
"""

from __future__ import annotations

import ast
import re
import sys
import time
from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
SOLUTIONS = NOTEBOOKS / "solutions"
ALL_NOTEBOOKS = sorted(NOTEBOOKS.glob("*.ipynb"))
ALL_SOLUTIONS = sorted(SOLUTIONS.glob("*.ipynb"))

#: The course this suite holds to the exercise rules, in teaching order.
COURSE = [
    "00-start-here.ipynb",
    "01-meet-smtp.ipynb",
    "02-journey-of-a-message.ipynb",
    "03-when-links-fail.ipynb",
    "04-giving-up.ipynb",
    "05-when-servers-say-no.ipynb",
    "06-seven-bit-ascii.ipynb",
    "07-push-and-pull.ipynb",
    "08-trust.ipynb",
]
#: Checked exercises each notebook of the course has at least.
MIN_EXERCISES = 2
#: Text that must appear in a notebook's outputs after it ran: the point of a lesson that no
#: exercise checks (notebooks outside the course keep their lessons this way).
EXPECTED_TEXT: dict[str, list[str]] = {
    "09-mail-client-lab.ipynb": [
        # Bob forgot dot-stuffing; Carol blasted every command before reading a reply.
        "bob    dot-line         the message arrived cut short",
        "carol  no-pipelining    a command was sent before the reply to the previous one",
        "(sent ",
    ],
    "10-parameter-study.ipynb": [
        # Replication 57 of the outage study: point 5 (3h, exim), seed 1000 + 7.
        "--seed 1007 --set 'faults[0].down_for=3h' --set servers.retry.policy=exim",
        "Exim's default rules keep the mail",
        "identical rows on the cluster: True",
    ],
    "11-real-sockets.ipynb": [
        # The live servers tell the simulation's story: queued through a cut, retried, delivered.
        "cut the route between india-mail and usa-mail: link india-gw - usa-gw down",
        "Connection timed out",
        "each followed by a wait of 30 to 40 minutes, as the tutorial says",
        "india-mail -> usa-mail.usa.com: 250 2.0.0 Ok: queued as",
        "steve has 1 message",
        "Delivered-To: steve@usa.com",
        "india-mail -> usa-mail:25 (SMTP)",
    ],
}
#: Figures (inline PNGs) a notebook outside the course must show; each course notebook shows one.
EXPECTED_FIGURES = {
    "10-parameter-study.ipynb": 1,  # delay and attempts against outage length, per policy
    "11-real-sockets.ipynb": 1,  # the live run's delivery timeline
}
#: Wall-clock budget of one notebook run, seconds.
NOTEBOOK_SECONDS = 60

_KERNEL_CHECK = "import sys\nprint('kernel python:', sys.executable)"
_RIGHT = "right"
_NOT_YET = "not yet, hint: "

#: Defined in the kernel before a solution runs: a wrong answer of the same kind as a right one.
_WRONG_HELPER = """
def _mailsim_wrong(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value * 3 + 7
    if isinstance(value, str):
        return value + " (not this)"
    if isinstance(value, dict):
        return {key: _mailsim_wrong(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return type(value)([*value, "(not this)"])
    raise TypeError(f"no wrong answer for {value!r}")
"""


@pytest.fixture
def this_python_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A ``python3`` kernelspec that runs this interpreter, found before any other on the path."""
    from ipykernel.kernelspec import write_kernel_spec

    kernels = tmp_path / "jupyter" / "kernels"
    kernels.mkdir(parents=True)
    write_kernel_spec(str(kernels / "python3"))
    # JUPYTER_PATH comes first in Jupyter's data path, ahead of user and system kernelspecs.
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("MPLBACKEND", "agg")  # headless, whatever the machine says
    return "python3"


def exercises(nb: Any) -> list[tuple[int, int, int]]:
    """(markdown, answer, check) cell positions of each exercise."""
    found = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown" and cell.source.lstrip().startswith("**Exercise"):
            found.append((index, index + 1, index + 2))
    return found


def answer_names(source: str) -> list[str]:
    """The names an answer cell assigns; it must hold nothing but assignments to names."""
    names = []
    for statement in ast.parse(source).body:
        if not isinstance(statement, ast.Assign) or not all(
            isinstance(target, ast.Name) for target in statement.targets
        ):
            raise AssertionError(f"an answer cell holds only `name = value` lines:\n{source}")
        names += [target.id for target in statement.targets]  # type: ignore[union-attr]
    return names


def _execute(nb: Any, workdir: Path, kernel: str) -> float:
    client = nbclient.NotebookClient(
        nb,
        timeout=NOTEBOOK_SECONDS,
        kernel_name=kernel,
        resources={"metadata": {"path": str(workdir)}},
    )
    started = time.perf_counter()
    client.execute()  # raises CellExecutionError, with the cell and traceback, on any error
    return time.perf_counter() - started


def _results(cell: Any) -> str:
    return "\n".join(
        o.data.get("text/plain", "")
        for o in cell.get("outputs", [])
        if o.output_type in ("execute_result", "display_data")
    )


def _check_common(name: str, nb: Any, took: float) -> None:
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    printed = "".join(o.text for o in outputs if o.output_type == "stream" and o.name == "stdout")
    assert f"kernel python: {sys.executable}" in printed, "the kernel ran another Python"
    shown = printed + "\n".join(_results(c) for c in nb.cells if c.cell_type == "code")
    for text in EXPECTED_TEXT.get(name, []):
        assert text in shown, f"{name}: expected output {text!r} is missing"
    stderr = "".join(o.text for o in outputs if o.output_type == "stream" and o.name == "stderr")
    assert "Warning" not in stderr, f"{name} shows warnings to the student:\n{stderr}"
    assert took < NOTEBOOK_SECONDS, f"{name} took {took:.0f} s (budget {NOTEBOOK_SECONDS} s)"
    pngs = sum(
        "image/png" in o.data
        for o in outputs
        if o.output_type in ("display_data", "execute_result")
    )
    wanted = 1 if name in COURSE else EXPECTED_FIGURES.get(name, 0)
    assert pngs >= wanted, f"{name} shows {pngs} figures, want {wanted}"


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_clean_and_every_unanswered_check_says_not_yet(
    path: Path, tmp_path: Path, this_python_kernel: str
) -> None:
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(_KERNEL_CHECK))
    took = _execute(nb, tmp_path, this_python_kernel)
    _check_common(path.name, nb, took)
    for _, _, check in exercises(nb):
        shown = _results(nb.cells[check])
        assert shown.startswith(_NOT_YET), f"{path.name} cell {check}: {shown!r}"


@pytest.mark.parametrize("path", ALL_SOLUTIONS, ids=lambda p: p.name)
def test_solution_checks_say_right_and_a_wrong_answer_says_not_yet(
    path: Path, tmp_path: Path, this_python_kernel: str
) -> None:
    nb = nbformat.read(path, as_version=4)
    found = exercises(nb)
    # After each check, the same check again with every answer made wrong, then put back.
    for _, answer, check in reversed(found):
        names = answer_names(nb.cells[answer].source)
        saved = ", ".join(f"{n!r}: {n}" for n in names)
        spoil = "\n".join(f"{n} = _mailsim_wrong({n})" for n in names)
        wrong = nbformat.v4.new_code_cell(
            f"_mailsim_saved = {{{saved}}}\n{spoil}\n{nb.cells[check].source}"
        )
        restore = nbformat.v4.new_code_cell("globals().update(_mailsim_saved)")
        nb.cells[check + 1 : check + 1] = [wrong, restore]
    nb.cells.insert(0, nbformat.v4.new_code_cell(_WRONG_HELPER))
    nb.cells.append(nbformat.v4.new_code_cell(_KERNEL_CHECK))
    took = _execute(nb, tmp_path, this_python_kernel)
    _check_common(path.name, nb, took)
    found = exercises(nb)
    assert found, f"{path.name} has no exercises"
    for _, _, check in found:
        assert _results(nb.cells[check]) == _RIGHT, (
            f"{path.name} cell {check}: {_results(nb.cells[check])!r}\n{nb.cells[check].source}"
        )
        wrong = _results(nb.cells[check + 1])
        assert wrong.startswith(_NOT_YET), (
            f"{path.name}: a wrong answer passed the check of cell {check}: {wrong!r}"
        )


def test_the_course_is_complete_and_in_order() -> None:
    names = {p.name for p in ALL_NOTEBOOKS}
    missing = [name for name in COURSE if name not in names]
    assert not missing, f"missing from the course: {missing}"
    for name in COURSE:
        assert (SOLUTIONS / name).is_file(), f"{name} has no worked answers in solutions/"
    strays = {p.name for p in ALL_SOLUTIONS} - names
    assert not strays, f"solutions without a notebook: {sorted(strays)}"


@pytest.mark.parametrize("name", COURSE)
def test_each_exercise_is_a_question_an_answer_cell_and_a_check(name: str) -> None:
    path = NOTEBOOKS / name
    if not path.is_file():
        pytest.skip(f"{name} is not written yet")
    nb = nbformat.read(path, as_version=4)
    found = exercises(nb)
    assert len(found) >= MIN_EXERCISES, f"{name}: {len(found)} exercises, want {MIN_EXERCISES}"
    for _, answer, check in found:
        assert nb.cells[answer].cell_type == "code" and nb.cells[check].cell_type == "code"
        names = answer_names(nb.cells[answer].source)
        assert names, f"{name} cell {answer} assigns no answer"
        assert "..." in nb.cells[answer].source, f"{name} cell {answer} is answered already"
        assert any(n in nb.cells[check].source for n in names), (
            f"{name} cell {check} does not check the answer of cell {answer}"
        )
    numbers = [re.match(r"\*\*Exercise ([\d.]+)", nb.cells[q].source.lstrip()) for q, _, _ in found]
    assert all(numbers), f"{name}: each exercise is headed **Exercise N.M"


@pytest.mark.parametrize("path", ALL_SOLUTIONS, ids=lambda p: p.name)
def test_solutions_are_the_notebooks_with_the_answers_filled_in(path: Path) -> None:
    student = nbformat.read(NOTEBOOKS / path.name, as_version=4)
    worked = nbformat.read(path, as_version=4)
    assert len(student.cells) == len(worked.cells), f"{path.name}: the cells differ in number"
    answers = {answer for _, answer, _ in exercises(student)}
    for index, (mine, theirs) in enumerate(zip(student.cells, worked.cells, strict=True)):
        if index in answers:
            assert answer_names(mine.source) == answer_names(theirs.source)
            assert "..." not in theirs.source.replace('"..."', ""), (
                f"{path.name} cell {index} is not answered"
            )
        else:
            assert mine.source == theirs.source, f"{path.name} cell {index} differs"


@pytest.mark.parametrize(
    "path", ALL_NOTEBOOKS + ALL_SOLUTIONS, ids=lambda p: p.parent.name + "/" + p.name
)
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
