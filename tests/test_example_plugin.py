"""The example third-party selector, installed with pip as a user would, run through Kadrio."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import FIXTURES, run_kadrio

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "examples" / "kadrio-example-selector"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """pip-install the example package (from a copy: the build leaves files) into a folder."""
    tmp = tmp_path_factory.mktemp("example")
    source = tmp / "src"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    target = tmp / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",  # everything it needs (kadrio, setuptools) is already installed
            "--no-build-isolation",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    yield target


def with_site(site: Path, **extra: str) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path, **extra}


def test_kadrio_lists_the_installed_plugin(site: Path) -> None:
    result = run_kadrio("plugins", "--json", env=with_site(site))
    assert result.code == 0, result.stderr
    rows = {r["name"]: r for r in json.loads(result.stdout) if r["kind"] == "selector"}
    assert rows["questions"]["package"] == "kadrio-example-selector"
    assert rows["questions"]["version"] == "0.1.0"
    assert rows["questions"]["plugin"] == "example_questions"  # the entry point's name


def test_clip_with_the_example_selector(site: Path, tmp_path: Path) -> None:
    out = tmp_path / "clips"
    env = with_site(
        site,
        KADRIO_OUTPUT__WIDTH="270",
        KADRIO_OUTPUT__HEIGHT="480",
        KADRIO_OUTPUT__PRESET="ultrafast",
    )
    result = run_kadrio(
        "clip",
        FIXTURES / "talk.mp4",
        "-o",
        out,
        "--selector",
        "questions",
        "--max-clips",
        "1",
        "--min-seconds",
        "6",
        "--max-seconds",
        "25",
        "-q",
        env=env,
    )
    assert result.code == 0, result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["providers"]["selector"] == "questions"
    assert len(manifest["clips"]) == 1
    (moment,) = json.loads((out / "moments.json").read_text())
    # the talk asks "So which plants should you grow?": the clip opens on it
    assert moment["reason"].startswith("opens with a question"), moment
    assert "which plant" in moment["title"].lower()
    assert (out / manifest["clips"][0]["files"]["mp4"]).stat().st_size > 0


def test_eval_selector_runs_the_example(site: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval.json"
    result = run_kadrio("eval-selector", "questions", "--json", out, env=with_site(site))
    assert result.code == 0, result.stderr
    assert "questions on dev" in result.stdout and "questions on heldout" in result.stdout
    report = json.loads(out.read_text())
    assert report["selector"] == "questions" and report["k"] == 5
    parts = {p["part"]: p for p in report["parts"]}
    assert set(parts) == {"dev", "heldout"}
    for part in parts.values():
        assert part["picks"] > 0 and 0 <= part["precision"] <= 1 and 0 <= part["recall"] <= 1
        assert part["on_sentence_share"] == 1.0  # it only cuts at sentence ends


def test_without_the_allow_list_it_is_not_loaded(site: Path, tmp_path: Path) -> None:
    env = with_site(site, KADRIO_LOAD_PLUGINS="")
    result = run_kadrio("eval-selector", "questions", "--dataset", ROOT / "datasets", env=env)
    assert result.code == 2
    assert "unknown selector 'questions'" in result.stderr


def test_the_examples_own_tests_pass(site: Path) -> None:
    """The example ships tests a plugin author can copy; they must keep passing."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE / "tests")],
        capture_output=True,
        text=True,
        env={**os.environ, **with_site(site)},
        cwd=EXAMPLE,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 passed" in proc.stdout
