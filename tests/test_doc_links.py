"""Every relative link in the README and docs/ leads to a file of the checkout."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: ``[text](target)``, the target without a scheme (http:, mailto:) or a bare anchor.
LINK = re.compile(r"\[[^\]]*\]\((?![a-z]+:|#)([^)\s]+)\)")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_leads_to_a_file(page: Path) -> None:
    targets = [m[1].split("#")[0] for m in LINK.finditer(page.read_text(encoding="utf-8"))]
    missing = [t for t in targets if not (page.parent / t).exists()]
    assert not missing, missing


def test_the_code_cites_only_documents_of_the_checkout() -> None:
    # help() shows these; about 20 cited a DESIGN.md that only the developers had.
    cited = {
        m[0]
        for path in (ROOT / "mailsim").rglob("*.py")
        for m in re.finditer(r"(?<![\w/.-])[\w/-]+\.md\b", path.read_text(encoding="utf-8"))
    }
    assert "docs/design.md" in cited
    assert not [c for c in sorted(cited) if not (ROOT / c).exists()], cited
