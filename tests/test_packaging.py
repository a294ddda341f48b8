"""Packaging: building the project prints no setuptools warnings (a first ``make run`` is quiet).

Not a database test: it uses no app fixture and runs once.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What setuptools says when data folders (templates, static) are shipped without being
# listed as packages: "absent from 'packages'" in new versions, "as data is deprecated" before.
WARNINGS = ("absent from 'packages'", "as data is deprecated", "Warning", "warning: ")
# build_py says this itself when run with -B-like settings; it is not about the project.
HARMLESS = ("byte-compiling is disabled",)


def _copy_project(target: Path) -> None:
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, target / name)
    shutil.copytree(
        ROOT / "webapp", target / "webapp", ignore=shutil.ignore_patterns("__pycache__")
    )


def test_build__setup_cfg__no_packaging_warnings(tmp_path: Path) -> None:
    # Given a copy of the project (the build writes egg-info next to setup.cfg)
    project = tmp_path / "project"
    project.mkdir()
    _copy_project(project)
    # When setuptools collects the packages and their data files, as pip install does
    result = subprocess.run(
        [sys.executable, "-W", "always", "-c", "import setuptools; setuptools.setup()",
         "--quiet", "build_py", "--build-lib", str(tmp_path / "lib")],
        cwd=project, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    # Then it succeeds without a warning, and ships every template and static file
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    lines = [
        line for line in output.splitlines()
        if any(w in line for w in WARNINGS) and not any(h in line for h in HARMLESS)
    ]  # fmt: skip
    assert not lines, "\n".join(lines)
    built = tmp_path / "lib" / "webapp"
    for folder in ("templates", "static"):
        sources = {p.relative_to(ROOT / "webapp") for p in (ROOT / "webapp" / folder).rglob("*")
                   if p.is_file() and "__pycache__" not in p.parts}  # fmt: skip
        shipped = {p.relative_to(built) for p in (built / folder).rglob("*") if p.is_file()}
        assert sources <= shipped, sorted(map(str, sources - shipped))[:10]
