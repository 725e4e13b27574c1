"""Fixtures shared by the study tests: a small study file and its serial results."""

from __future__ import annotations

from pathlib import Path

import pytest
from study_helpers import write_small_study


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small study of :mod:`study_helpers` as a file."""
    return write_small_study(tmp_path_factory.mktemp("study"))


@pytest.fixture(scope="module")
def serial_csv(small: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The results.csv of the small study run in this process, one run after another."""
    from mailsim.study import load_study, run_study

    out = tmp_path_factory.mktemp("serial")
    run_study(load_study(small), workers=1, out=out)
    return (out / "results.csv").read_text()
