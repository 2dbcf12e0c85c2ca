"""Measure a selector against a labelled dataset (``kadrio eval-selector``).

A dataset is a folder of parts (``dev/``, ``heldout/``), each a folder of sets; a set is a
folder with ``transcript.json`` (the Transcript contract) and ``labels.json`` (the highlights a
careful editor would cut, with why). ``datasets/README.md`` documents the format.

Metrics, per set and pooled per part (the selector is asked for ``k`` clips of the length range
in the set's labels):

- precision@k: of the picks returned (at most k), the share that match a labelled highlight
  (IoU >= 0.5, each highlight matched once); ``strict`` divides by k instead, so returning fewer
  clips is not rewarded;
- recall: the share of labelled highlights matched by one of the picks;
- boundary error: mean |start - label start| and |end - label end| in seconds, each pick against
  the label it overlaps most (picks overlapping no label are left out and counted);
- on sentence: the share of clips whose first word starts a sentence and whose last word ends
  one (sentence punctuation of the transcript, or its first or last word).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, ValidationError

from .errors import BadInput, first_problem
from .models import Contract, Moment, SelectionRequest, Transcript, Word

if TYPE_CHECKING:
    from rich.console import Console

    from .settings import Settings

IOU_THRESHOLD = 0.5
SENTENCE_END = (".", "?", "!", "…")
CLOSERS = "\"'»”)]"
DEFAULT_DATASET = Path(__file__).resolve().parent.parent / "datasets"


class Highlight(Contract):
    start: float = Field(ge=0)
    end: float = Field(ge=0)
    why: str = ""


class Labels(Contract):
    """``labels.json``: what an editor would cut from one transcript, and the request they had."""

    title: str = ""
    genre: str = ""
    language: str | None = None
    min_seconds: float = Field(default=20.0, gt=0)
    max_seconds: float = Field(default=60.0, gt=0)
    prompt: str | None = None
    highlights: list[Highlight]


class LabelledSet(BaseModel):
    name: str
    part: str
    folder: Path
    transcript: Transcript
    labels: Labels


class SetResult(BaseModel):
    name: str
    part: str
    language: str
    genre: str
    picks: int
    labels: int
    hits: int
    matched_labels: int
    precision: float
    strict_precision: float
    recall: float
    start_error: float | None
    end_error: float | None
    overlapping_picks: int
    on_sentence: int
    seconds: float
    moments: list[dict[str, Any]]


class PartResult(BaseModel):
    part: str
    sets: int
    picks: int
    labels: int
    precision: float
    strict_precision: float
    recall: float
    start_error: float | None
    end_error: float | None
    on_sentence_share: float
    results: list[SetResult]


class Report(BaseModel):
    selector: str
    k: int
    dataset: str
    parts: list[PartResult]


# -- dataset ---------------------------------------------------------------------------------


def _is_set(folder: Path) -> bool:
    return (folder / "transcript.json").is_file() or (folder / "labels.json").is_file()


def load_dataset(root: Path) -> list[LabelledSet]:
    """Every set under ``root``: a dataset root (parts of sets), one part, or one set."""
    if not root.is_dir():
        raise BadInput(f"dataset folder not found: {root}")
    if _is_set(root):
        return [load_set(root, root.parent.name or "dataset")]
    children = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if any(_is_set(c) for c in children):
        return [load_set(c, root.name) for c in children if _is_set(c)]
    sets = [
        load_set(s, part.name)
        for part in children
        for s in sorted(p for p in part.iterdir() if p.is_dir())
        if _is_set(s)
    ]
    if not sets:
        raise BadInput(f"no labelled sets (transcript.json + labels.json) under {root}")
    return sets


def load_set(folder: Path, part: str) -> LabelledSet:
    from .pipeline import read_transcript

    labels_path = folder / "labels.json"
    if not (folder / "transcript.json").is_file():
        raise BadInput(f"{folder} has labels.json but no transcript.json")
    if not labels_path.is_file():
        raise BadInput(f"{folder} has transcript.json but no labels.json")
    transcript = read_transcript(folder / "transcript.json")
    try:
        labels = Labels.model_validate_json(labels_path.read_bytes())
    except ValidationError as exc:
        raise BadInput(f"{labels_path} is not a labels file: {first_problem(exc)}") from None
    except UnicodeDecodeError:
        raise BadInput(f"{labels_path} is not UTF-8 text") from None
    for h in labels.highlights:
        if not 0 <= h.start < h.end <= transcript.duration + 1e-6:
            raise BadInput(
                f"{labels_path}: highlight {h.start:g}-{h.end:g} s is empty or outside the "
                f"transcript (0-{transcript.duration:g} s)"
            )
    if labels.max_seconds < labels.min_seconds:
        raise BadInput(f"{labels_path}: max_seconds is below min_seconds")
    return LabelledSet(
        name=folder.name, part=part, folder=folder, transcript=transcript, labels=labels
    )


# -- metrics ---------------------------------------------------------------------------------


def iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    inter = min(a[1], b[1]) - max(a[0], b[0])
    if inter <= 0:
        return 0.0
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union


def match(
    picks: list[tuple[float, float]],
    labels: list[tuple[float, float]],
    threshold: float = IOU_THRESHOLD,
) -> dict[int, int]:
    """Pick index -> label index, one to one, best IoU first, only pairs at ``threshold`` or up."""
    pairs = sorted(
        (
            (iou(p, lab), i, j)
            for i, p in enumerate(picks)
            for j, lab in enumerate(labels)
            if iou(p, lab) >= threshold
        ),
        reverse=True,
    )
    taken: dict[int, int] = {}
    used: set[int] = set()
    for _, i, j in pairs:
        if i not in taken and j not in used:
            taken[i] = j
            used.add(j)
    return taken


def ends_sentence(text: str) -> bool:
    return text.rstrip(CLOSERS).endswith(SENTENCE_END)


def sentence_aligned(span: tuple[float, float], words: list[Word]) -> tuple[bool, bool]:
    """Whether a clip starts at the start and ends at the end of a sentence.

    The clip holds the words whose middle lies inside it; a sentence starts at the first word of
    the transcript or after a word with sentence punctuation, and ends at such a word or the last
    word of the transcript.
    """
    inside = [i for i, w in enumerate(words) if span[0] <= (w.start + w.end) / 2 <= span[1]]
    if not inside:
        return False, False
    first, last = inside[0], inside[-1]
    starts = first == 0 or ends_sentence(words[first - 1].text)
    ends = last == len(words) - 1 or ends_sentence(words[last].text)
    return starts, ends


def score_set(lset: LabelledSet, moments: list[Moment], k: int, seconds: float) -> SetResult:
    picks = [(m.start, m.end) for m in moments[:k]]
    labels = [(h.start, h.end) for h in lset.labels.highlights]
    matched = match(picks, labels)
    start_errors, end_errors = [], []
    for p in picks:
        best = max(range(len(labels)), key=lambda j: iou(p, labels[j]), default=None)
        if best is not None and iou(p, labels[best]) > 0:
            start_errors.append(abs(p[0] - labels[best][0]))
            end_errors.append(abs(p[1] - labels[best][1]))
    words = [w for w in lset.transcript.words if w.text.strip()]
    aligned = [sentence_aligned(p, words) for p in picks]
    rows = []
    for i, (m, (s_ok, e_ok)) in enumerate(zip(moments[:k], aligned, strict=True)):
        rows.append(
            {
                "start": m.start,
                "end": m.end,
                "score": m.score,
                "title": m.title,
                "label": matched.get(i),
                "starts_sentence": s_ok,
                "ends_sentence": e_ok,
            }
        )
    return SetResult(
        name=lset.name,
        part=lset.part,
        language=lset.transcript.language,
        genre=lset.labels.genre,
        picks=len(picks),
        labels=len(labels),
        hits=len(matched),
        matched_labels=len(set(matched.values())),
        precision=len(matched) / len(picks) if picks else 0.0,
        strict_precision=len(matched) / k,
        recall=len(set(matched.values())) / len(labels) if labels else 0.0,
        start_error=_mean(start_errors),
        end_error=_mean(end_errors),
        overlapping_picks=len(start_errors),
        on_sentence=sum(s and e for s, e in aligned),
        seconds=round(seconds, 3),
        moments=rows,
    )


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 3) if values else None


def summarise(part: str, results: list[SetResult], k: int) -> PartResult:
    picks = sum(r.picks for r in results)
    labels = sum(r.labels for r in results)
    hits = sum(r.hits for r in results)

    def pooled(attr: str) -> float | None:
        total = sum(r.overlapping_picks for r in results if getattr(r, attr) is not None)
        if not total:
            return None
        weighted = sum(
            getattr(r, attr) * r.overlapping_picks for r in results if getattr(r, attr) is not None
        )
        return round(weighted / total, 3)

    return PartResult(
        part=part,
        sets=len(results),
        picks=picks,
        labels=labels,
        precision=round(hits / picks, 3) if picks else 0.0,
        strict_precision=round(hits / (k * len(results)), 3) if results else 0.0,
        recall=round(sum(r.matched_labels for r in results) / labels, 3) if labels else 0.0,
        start_error=pooled("start_error"),
        end_error=pooled("end_error"),
        on_sentence_share=round(sum(r.on_sentence for r in results) / picks, 3) if picks else 0.0,
        results=results,
    )


# -- running a selector ----------------------------------------------------------------------


def request_for(lset: LabelledSet, k: int) -> SelectionRequest:
    return SelectionRequest(
        max_clips=k,
        min_seconds=lset.labels.min_seconds,
        max_seconds=lset.labels.max_seconds,
        language=lset.labels.language or lset.transcript.language,
        prompt=lset.labels.prompt,
    )


def evaluate(
    selector: str,
    dataset: Path,
    k: int = 5,
    settings: Settings | None = None,
    progress: Any = None,
) -> Report:
    """Run ``selector`` as the pipeline would (snapped, at most k) over every set and score it."""
    from .pipeline import Pipeline
    from .plugins import registry
    from .settings import Settings

    settings = (settings or Settings()).model_copy(update={"selector": [selector]})
    registry("selector").create(selector, settings)  # unknown name or bad options: BadInput now
    sets = load_dataset(dataset)
    pipeline = Pipeline(settings)
    by_part: dict[str, list[SetResult]] = {}
    for n, lset in enumerate(sets):
        started = time.perf_counter()
        moments = pipeline.select(lset.transcript, request_for(lset, k))
        result = score_set(lset, moments, k, time.perf_counter() - started)
        by_part.setdefault(lset.part, []).append(result)
        if progress is not None:
            progress((n + 1) / len(sets))
    return Report(
        selector=selector,
        k=k,
        dataset=str(dataset),
        parts=[summarise(part, results, k) for part, results in by_part.items()],
    )


# -- output ----------------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_report(report: Report, console: Console) -> None:
    """One table per part: a row per set, then the pooled figures."""
    from rich.table import Table

    k = report.k
    if not console.is_terminal:
        console.width = max(console.width, 120)  # logs and pipes: keep set names whole
    for part in report.parts:
        table = Table(
            title=f"{report.selector} on {part.part} ({part.sets} sets, k={k})",
            title_justify="left",
        )
        for column in (
            "set",
            "lang",
            "picks",
            "labels",
            f"P@{k}",
            f"P@{k} strict",
            "recall",
            "start err s",
            "end err s",
            "on sentence",
        ):
            table.add_column(column, justify="left" if column in ("set", "lang") else "right")
        for r in part.results:
            table.add_row(
                r.name,
                r.language,
                str(r.picks),
                str(r.labels),
                _fmt(r.precision),
                _fmt(r.strict_precision),
                _fmt(r.recall),
                _fmt(r.start_error, 1),
                _fmt(r.end_error, 1),
                f"{r.on_sentence}/{r.picks}",
            )
        table.add_section()
        table.add_row(
            "all",
            "",
            str(part.picks),
            str(part.labels),
            _fmt(part.precision),
            _fmt(part.strict_precision),
            _fmt(part.recall),
            _fmt(part.start_error, 1),
            _fmt(part.end_error, 1),
            f"{part.on_sentence_share:.0%}",
            style="bold",
        )
        console.print(table)
