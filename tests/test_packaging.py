"""A wheel works where it is installed: built from this checkout, installed into a fresh venv
outside it, `nrr demo` gives the README's demo answers (the population prior is package data)."""

from __future__ import annotations

import os
import re
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def _readme_demo_rows() -> list[tuple[str, str, str, str]]:
    """(proposal, verdict, P(keep), interval) from the README's demo table."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## The demo's answers") :]
    rows = re.findall(
        r"^\| ([^|]+?) \| (proceed|caution|avoid) \| ([\d.]+) \| (\[[\d., ]+\]) \|", section, re.M
    )
    assert len(rows) == 5, "the README's demo table has five rows"
    return rows


def _build_wheel(out: Path) -> Path:
    try:
        import setuptools  # noqa: F401
        import wheel  # noqa: F401
    except ImportError:
        pytest.skip("building the wheel needs setuptools and wheel (the dev extra has them)")
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        cwd=out,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel_file,) = out.glob("nrr_stats-*.whl")
    return wheel_file


@pytest.mark.slow
def test_the_installed_wheel_gives_the_readme_demo_answers(tmp_path: Path) -> None:
    if not README.exists():
        pytest.skip("needs the checkout's README.md")
    wheel_file = _build_wheel(tmp_path)
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
        check=True,
    )
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # The dependencies come from the environment running the tests (appended to sys.path,
    # after the venv's own site-packages, so the installed wheel is the nrr_stats imported).
    Path(purelib, "test-deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "--no-index",
            "-q",
            str(wheel_file),
        ],
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stderr[-2000:]

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NRR_", "PYTHON"))}
    env.update(HOME=str(outside), COLUMNS="200", NRR_CACHE_DIR=str(outside / "cache"))
    where = subprocess.run(
        [python, "-c", "import nrr_stats; print(nrr_stats.__file__)"],
        capture_output=True,
        text=True,
        cwd=outside,
        env=env,
        check=True,
    ).stdout.strip()
    assert where.startswith(purelib), f"imported {where}, not the installed wheel"
    assert not where.startswith(str(ROOT))

    nrr = shutil.which("nrr", path=str(venv / "bin"))
    assert nrr is not None
    demo = subprocess.run([nrr, "demo"], capture_output=True, text=True, cwd=outside, env=env)
    assert demo.returncode == 0, demo.stderr[-2000:]
    lines = demo.stdout.splitlines()
    for proposal, verdict, p_keep, interval in _readme_demo_rows():
        row = next((line for line in lines if line.strip().startswith(proposal)), None)
        assert row is not None, f"no demo row for {proposal!r}"
        assert verdict in row and p_keep in row and interval in row, row
    doctor = subprocess.run(
        [nrr, "doctor", "--format", "tsv"], capture_output=True, text=True, cwd=outside, env=env
    )
    prior = next(line for line in doctor.stdout.splitlines() if line.startswith("population prior"))
    assert "\tok\t" in prior and purelib in prior
