"""Every complete code example in the README and the documentation runs.

A block is complete when it runs a loop itself (``asyncio.run(`` or
``trio.run(``); the others are fragments of a bigger program.  Each runs in
a fresh interpreter, from an empty directory, and must end by itself with
status 0.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def complete_examples() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        for number, block in enumerate(_BLOCK.findall(page.read_text()), 1):
            if "asyncio.run(" in block or "trio.run(" in block:
                found.append((f"{page.relative_to(ROOT)}#{number}", block))
    return found


def test_the_docs_have_complete_examples() -> None:
    """Guards the test below: finding none would pass it."""
    assert len(complete_examples()) >= 3


@pytest.mark.parametrize(("where", "source"), complete_examples(), ids=[w for w, _ in complete_examples()])
def test_a_complete_example_runs(where: str, source: str, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(source)
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, f"{where} failed:\n{done.stderr}"


#: What a reader's page must not carry: a lab notebook's commit hashes,
#: scratch paths and the weather of the machine a figure was taken on.
_NOTEBOOK = re.compile(r"\b[0-9a-f]{7}\b(?<![0-9]{7})|/tmp/|this machine|that day|slow phase|fast phase")


@pytest.mark.parametrize("page", [*PAGES, ROOT / "CHANGELOG.md"], ids=lambda p: p.name)
def test_pages_read_as_documentation_not_a_notebook(page: Path) -> None:
    found = [match.group(0) for match in _NOTEBOOK.finditer(page.read_text())]
    assert not found, f"{page.name}: {found}"


def test_docstrings_state_the_contract_not_the_history() -> None:
    offending = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in (ROOT / "src").rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if "used to " in line or "slow machine" in line
    ]
    assert not offending, offending


def test_the_readme_is_for_a_newcomer_s_first_ten_minutes() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 300
    assert "    bash scripts/demo\n" in readme and "    bash scripts/test\n" in readme
