"""What a user installs: the sdist and wheel as built from this tree."""

from __future__ import annotations

import email.parser
import pathlib
import subprocess
import sys
import tarfile
import zipfile

import pytest

import aiomonitor

ROOT = pathlib.Path(__file__).parent.parent.parent


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> tuple[pathlib.Path, pathlib.Path]:
    out = tmp_path_factory.mktemp("dist")
    # --no-isolation: the dev extra brings hatchling, so no download is needed.
    command = [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)]
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    return wheel, sdist


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".")[:3])


def test_the_version_is_one_and_sorts_above_the_previous_line() -> None:
    assert version_key(aiomonitor.__version__) >= (1, 0, 0) > version_key("0.7.1")
    result = subprocess.run([sys.executable, "-m", "aiomonitor", "--version"], capture_output=True, text=True)
    assert aiomonitor.__version__ in result.stdout


def test_the_wheel_holds_the_package_its_types_and_license_only(dists: tuple[pathlib.Path, pathlib.Path]) -> None:
    wheel, _ = dists
    assert wheel.name == f"aiomonitor-{aiomonitor.__version__}-py3-none-any.whl"
    names = zipfile.ZipFile(wheel).namelist()
    assert "aiomonitor/py.typed" in names
    assert "aiomonitor/backends/asyncio.py" in names
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/", "examples/", "scripts/"))]
    on_top = [n for n in names if not n.startswith(("aiomonitor/", f"aiomonitor-{aiomonitor.__version__}.dist-info/"))]
    assert on_top == ["aiomonitor-follow.pth"], "beside the package, only the start-up hook of followed services"


def test_the_start_up_hook_does_nothing_unless_a_service_is_followed(
    dists: tuple[pathlib.Path, pathlib.Path],
) -> None:
    wheel, _ = dists
    hook = zipfile.ZipFile(wheel).read("aiomonitor-follow.pth").decode()
    assert hook.count("\n") == 1 and hook.startswith("import os; ")  # one line, which site.py executes
    assert 'os.environ.get("AIOMONITOR_FOLLOW") and ' in hook, "a lookup, then nothing, outside a service"
    code = "import sys; print(sorted(m for m in sys.modules if m.startswith('aiomonitor')))"
    plain = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert plain.stdout.strip() == "[]", "installed here too (the suite's own environment), and idle"


def test_the_wheel_metadata_says_what_this_is(dists: tuple[pathlib.Path, pathlib.Path]) -> None:
    wheel, _ = dists
    with zipfile.ZipFile(wheel) as archive:
        meta_name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = email.parser.Parser().parsestr(archive.read(meta_name).decode())
    assert metadata["Version"] == aiomonitor.__version__
    assert metadata["License-Expression"] == "Apache-2.0"
    assert "asyncio" in metadata["Keywords"]
    assert any(url.startswith("Changelog, ") for url in metadata.get_all("Project-URL", []))
    assert metadata.get_all("Requires-Dist", [])[0].startswith("anyio")  # the only hard dependency


def test_the_sdist_carries_license_changelog_and_tests(dists: tuple[pathlib.Path, pathlib.Path]) -> None:
    _, sdist = dists
    with tarfile.open(sdist) as archive:
        names = archive.getnames()
    prefix = f"aiomonitor-{aiomonitor.__version__}/"
    for required in (
        "LICENSE",
        "CHANGELOG.md",
        "README.md",
        "src/aiomonitor/py.typed",
        "src/aiomonitor-follow.pth",
        "tests/scenarios/test_packaging.py",
    ):
        assert prefix + required in names, required
    assert not [n for n in names if "/.venvs/" in n or "__pycache__" in n]
