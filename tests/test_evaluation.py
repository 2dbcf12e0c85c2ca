"""The selector evaluation harness: metrics, the dataset and its loader, `kadrio eval-selector`."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from kadrio_core.errors import BadInput
from kadrio_core.evaluation import (
    Highlight,
    LabelledSet,
    Labels,
    evaluate,
    iou,
    load_dataset,
    match,
    score_set,
    sentence_aligned,
)
from kadrio_core.hookspecs import hookimpl
from kadrio_core.models import Moment, Transcript, Word
from kadrio_core.plugins import get_plugin_manager
from kadrio_core.providers import Selector
from kadrio_core.settings import Settings

from .conftest import run_kadrio
from .fakes.providers import FakeClaude, FakeOpenAI
from .test_bad_input import assert_one_line_error

ROOT = Path(__file__).parent.parent
DATASET = ROOT / "datasets"


# -- metrics ---------------------------------------------------------------------------------


def test_iou() -> None:
    assert iou((0, 10), (0, 10)) == 1
    assert iou((0, 10), (5, 15)) == pytest.approx(5 / 15)
    assert iou((0, 10), (10, 20)) == 0
    assert iou((0, 10), (2, 7)) == pytest.approx(0.5)


def test_match_is_one_to_one_and_needs_half_overlap() -> None:
    labels = [(0.0, 40.0), (100.0, 130.0)]
    # both picks overlap the first label by exactly half; only one may claim it
    picks = [(0.0, 20.0), (20.0, 40.0), (100.0, 114.0), (200.0, 230.0)]
    matched = match(picks, labels)
    assert matched == {0: 0} or matched == {1: 0}
    assert match([(100.0, 116.0)], labels) == {0: 1}  # 16/30 >= 0.5


def words_of(text: str, step: float = 0.5) -> list[Word]:
    return [Word(text=t, start=i * step, end=i * step + 0.4) for i, t in enumerate(text.split())]


def test_sentence_alignment() -> None:
    words = words_of("One two three. Four five six? Seven eight nine.")
    # words: One 0.0, two 0.5, three. 1.0, Four 1.5, five 2.0, six? 2.5, Seven 3.0 ...
    assert sentence_aligned((1.4, 2.95), words) == (True, True)  # "Four five six?"
    assert sentence_aligned((0.0, 4.4), words) == (True, True)  # the whole text
    assert sentence_aligned((0.4, 2.95), words) == (False, True)  # from "two"
    assert sentence_aligned((1.4, 2.45), words) == (True, False)  # ends on "five"
    assert sentence_aligned((9.0, 10.0), words) == (False, False)  # no word inside


def labelled(highlights: list[tuple[float, float]], words: list[Word]) -> LabelledSet:
    transcript = Transcript(language="en", duration=60, words=words, provider="test")
    labels = Labels(highlights=[Highlight(start=a, end=b) for a, b in highlights])
    return LabelledSet(name="s", part="p", folder=Path("."), transcript=transcript, labels=labels)


def test_score_set_figures() -> None:
    words = words_of("A b. " * 60, step=0.5)  # a sentence end every second
    lset = labelled([(0.0, 10.0), (20.0, 30.0), (40.0, 50.0)], words)
    moments = [
        Moment(start=1.0, end=10.0, score=90, title="t"),  # label 0, errors 1.0 and 0.0
        Moment(start=22.0, end=33.0, score=80, title="t"),  # label 1 (IoU 8/13), errors 2, 3
        Moment(start=41.0, end=42.0, score=70, title="t"),  # overlaps label 2, IoU 0.1: a miss
        Moment(start=55.0, end=58.0, score=60, title="t"),  # overlaps nothing
    ]
    r = score_set(lset, moments, k=5, seconds=0.1)
    assert (r.picks, r.hits, r.matched_labels) == (4, 2, 2)
    assert r.precision == pytest.approx(2 / 4)
    assert r.strict_precision == pytest.approx(2 / 5)
    assert r.recall == pytest.approx(2 / 3)
    assert r.overlapping_picks == 3
    assert r.start_error == pytest.approx((1 + 2 + 1) / 3, abs=1e-3)
    assert r.end_error == pytest.approx((0 + 3 + 8) / 3, abs=1e-3)
    assert r.on_sentence == 4
    assert [m["label"] for m in r.moments] == [0, 1, None, None]
    # only the first k picks count
    assert score_set(lset, moments, k=1, seconds=0).precision == 1.0


# -- the dataset -----------------------------------------------------------------------------


def test_the_bundled_dataset_is_what_the_issue_asks_for() -> None:
    sets = load_dataset(DATASET)
    parts = {s.part for s in sets}
    assert parts == {"dev", "heldout"}
    assert len(sets) >= 12
    heldout = [s for s in sets if s.part == "heldout"]
    assert len(heldout) >= 4
    assert {s.transcript.language for s in heldout} == {"en", "ru"}
    assert len({s.labels.genre for s in heldout}) >= 4
    assert {s.labels.genre for s in sets} >= {"interview", "lecture", "podcast", "demo", "story"}
    for lang in ("en", "ru"):
        assert sum(s.transcript.language == lang for s in sets) >= 5
    for s in sets:
        speech = s.transcript.words[-1].end - s.transcript.words[0].start
        assert 120 <= speech <= 360, s.name
        assert 2 <= len(s.labels.highlights) <= 5, s.name
        for h in s.labels.highlights:
            assert s.labels.min_seconds <= h.end - h.start <= s.labels.max_seconds, s.name
            assert h.why.strip(), s.name
            assert sentence_aligned((h.start, h.end), s.transcript.words) == (True, True), s.name


def test_the_committed_dataset_matches_its_scripts() -> None:
    """transcript.json and labels.json are what datasets/generate.py makes of script.txt."""
    proc = subprocess.run(
        [sys.executable, str(DATASET / "generate.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_generator_is_deterministic_and_whisper_like(tmp_path: Path) -> None:
    sys.path.insert(0, str(DATASET))
    try:
        import generate
    finally:
        sys.path.remove(str(DATASET))
    folder = DATASET / "dev" / "en-interview-beekeeper"
    assert generate.render(folder) == generate.render(folder)
    transcript = json.loads(generate.render(folder)["transcript.json"])
    words = transcript["words"]
    assert all(w["end"] > w["start"] for w in words)
    assert all(b["start"] >= a["end"] for a, b in itertools.pairwise(words))
    rate = len(words) / (words[-1]["end"] - words[0]["start"])
    assert 2.0 <= rate <= 3.2  # words a second: conversational English
    assert {w["speaker"] for w in words} == {"A", "B"}
    assert any(w["text"].lower().startswith("um") for w in words)  # fillers are kept


def copy_set(dest: Path, name: str = "en-demo-notes-app") -> Path:
    target = dest / name
    shutil.copytree(DATASET / "dev" / name, target, ignore=shutil.ignore_patterns("script.txt"))
    return target


def test_loader_accepts_a_root_a_part_or_a_set(tmp_path: Path) -> None:
    copy_set(tmp_path / "root" / "mine")
    assert [(s.part, s.name) for s in load_dataset(tmp_path / "root")] == [
        ("mine", "en-demo-notes-app")
    ]
    assert [s.part for s in load_dataset(tmp_path / "root" / "mine")] == ["mine"]
    (one,) = load_dataset(tmp_path / "root" / "mine" / "en-demo-notes-app")
    assert len(one.labels.highlights) == 4


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / "labels.json").unlink(), "has transcript.json but no labels.json"),
        (lambda d: (d / "labels.json").write_text("{}"), "labels.json is not a labels file"),
        (
            lambda d: (d / "labels.json").write_text(
                json.dumps({"highlights": [{"start": 5, "end": 9999}]})
            ),
            "outside the transcript",
        ),
        (lambda d: (d / "transcript.json").write_text("[]"), "is not a Kadrio transcript"),
    ],
)
def test_loader_names_a_broken_set(tmp_path: Path, damage, message: str) -> None:  # type: ignore[no-untyped-def]
    folder = copy_set(tmp_path)
    damage(folder)
    with pytest.raises(BadInput, match=message):
        load_dataset(tmp_path)


def test_an_empty_folder_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="no labelled sets"):
        load_dataset(tmp_path)
    with pytest.raises(BadInput, match="not found"):
        load_dataset(tmp_path / "missing")


# -- the harness tells a good selector from a poor one ---------------------------------------


class EvenlySpaced(Selector):
    """A baseline with no judgement: windows of the longest length laid end to end."""

    name = "evenly-spaced"

    def select(self, transcript, request, progress=lambda _: None):  # type: ignore[no-untyped-def]
        length = request.max_seconds
        n = min(request.max_clips, int(transcript.duration // length))
        return [
            Moment(start=i * length, end=(i + 1) * length, score=50, title=f"part {i + 1}")
            for i in range(n)
        ]


@pytest.fixture
def baseline() -> Iterator[None]:
    pm = get_plugin_manager()
    pm.register(
        SimpleNamespace(register_selectors=hookimpl(lambda register: register(EvenlySpaced))),
        name="test-baseline",
    )
    yield
    pm.unregister(name="test-baseline")


def test_the_local_selector_beats_a_blind_baseline(baseline: None) -> None:
    local = evaluate("local", DATASET / "dev", k=5)
    blind = evaluate("evenly-spaced", DATASET / "dev", k=5)
    (lp,) = local.parts
    (bp,) = blind.parts
    # windows of 60 s contain many 30-45 s labels at IoU >= 0.5 by chance: the margins are real
    # but not huge (the blind baseline scores about 0.57 / 0.52 on dev)
    assert lp.precision >= bp.precision + 0.15
    assert lp.recall >= bp.recall + 0.25
    assert lp.on_sentence_share >= 0.95 > 0.5 > bp.on_sentence_share
    assert lp.end_error < bp.end_error


# -- the command -----------------------------------------------------------------------------


def test_eval_selector_prints_a_table_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "local.json"
    result = run_kadrio("eval-selector", "local", "--json", out)
    assert result.code == 0, result.stderr
    assert "local on dev" in result.stdout and "local on heldout" in result.stdout
    assert "P@5" in result.stdout and "en-interview-beekeeper" in result.stdout
    report = json.loads(out.read_text())
    parts = {p["part"]: p for p in report["parts"]}
    assert set(parts) == {"dev", "heldout"}
    for part in parts.values():
        assert part["sets"] == len(part["results"]) and part["picks"] > 0
        for r in part["results"]:
            assert len(r["moments"]) == r["picks"] <= 5


def test_local_selector_meets_its_held_out_targets() -> None:
    """The issue's targets on the held-out part: precision@5 >= 0.6, >= 95 % on sentences."""
    result = run_kadrio("eval-selector", "local", "--dataset", DATASET / "heldout", "--json", "-")
    assert result.code == 0, result.stderr
    (part,) = json.loads(result.stdout)["parts"]
    assert part["part"] == "heldout"
    assert part["precision"] >= 0.6
    assert part["on_sentence_share"] >= 0.95


def test_k_bounds_the_picks() -> None:
    result = run_kadrio(
        "eval-selector", "local", "--dataset", DATASET / "dev", "--k", "1", "--json", "-"
    )
    assert result.code == 0, result.stderr
    (part,) = json.loads(result.stdout)["parts"]
    assert part["picks"] == part["sets"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope"], "unknown selector 'nope'"),
        (["local", "--dataset", "missing-folder"], "dataset folder not found"),
    ],
)
def test_eval_selector_bad_input(args: list[str], message: str) -> None:
    result = run_kadrio("eval-selector", *args)
    assert_one_line_error(result, message)


def test_eval_selector_k_out_of_range_is_a_usage_error() -> None:
    result = run_kadrio("eval-selector", "local", "--k", "0")
    assert result.code == 2 and "Invalid value for '--k'" in result.stderr


def test_eval_selector_json_into_a_folder_is_bad_input(tmp_path: Path) -> None:
    result = run_kadrio("eval-selector", "local", "--dataset", DATASET / "dev", "--json", tmp_path)
    assert_one_line_error(result, "is a folder")


# -- the LLM selectors through the harness, against loopback fakes ---------------------------


def test_llm_selectors_can_be_evaluated(
    fake_claude: FakeClaude, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real SDK (claude) and httpx (openai_compat) against fakes on 127.0.0.1.

    The fakes answer with a heuristic, not a model: the figures measure the harness and the
    selectors' reply handling (validation, snapping, merging), not a language model.
    """
    for name, value in fake_claude.env.items():
        monkeypatch.setenv(name, value)
    fast = {"retries": 0, "timeout": 5}
    settings = Settings(
        providers={
            "claude": {**fast, "model": "claude-test-model"},
            "openai_compat": {**fast, "base_url": fake_openai.base_url, "api_key": "sk-local-test"},
        }
    )
    for name in ("claude", "openai_compat"):
        report = evaluate(name, DATASET / "dev" / "en-lecture-memory", k=3, settings=settings)
        (part,) = report.parts
        (result,) = part.results
        assert report.selector == name and 1 <= result.picks <= 3
        assert 0 <= part.precision <= 1 and 0 <= part.on_sentence_share <= 1
        assert all(m["starts_sentence"] for m in result.moments)  # lines start sentences
    assert len(fake_claude.server.calls("POST", "/v1/messages")) == 1
    assert len(fake_openai.server.calls("POST", "/v1/chat/completions")) == 1
