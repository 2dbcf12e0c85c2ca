"""A local moment selector: sentence-bounded windows scored by plain text features.

No network and no model. Each candidate window starts and ends on a sentence boundary (or a
long pause where the transcript has no punctuation) and is scored on: the hook of its first
sentence (a question, a number, a strong claim), whether it starts mid-thought (a dangling
connective or pronoun), how dense it is in content words, how much of the talk's salient
vocabulary it carries, whether its end sounds like a conclusion, and a match with the user's
prompt. The best non-overlapping windows win. Scores are relative to the other candidates of
the same talk; ``reason`` says which features counted.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from importlib.resources import files
from typing import ClassVar

from pydantic import Field

from kadrio_core.hookspecs import hookimpl
from kadrio_core.models import Moment, SelectionRequest, Transcript, Word
from kadrio_core.providers import Progress, ProviderOptions, Selector

LEXICON = json.loads((files("kadrio_plugins.selectors") / "lexicon.json").read_text("utf-8"))
STOPWORDS = frozenset(LEXICON["stopwords"])
DANGLING = frozenset(LEXICON["dangling"])  # a clip starting with these starts mid-thought
STRONG = frozenset(LEXICON["strong"])  # words of a bold claim in a hook
CONCLUDING = tuple(LEXICON["concluding"])  # phrases that close a thought
_TOKEN = re.compile(r"[\w'’-]+", re.UNICODE)
_NUMBER = re.compile(
    r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|hundred|thousand|"
    r"million|percent|half|twice|два|три|пять|десять|сто|тысяч|процент)",
    re.I,
)
SENTENCE_END = (".", "?", "!", "…")


class LocalOptions(ProviderOptions):
    pause_seconds: float = Field(default=1.2, gt=0, description="a pause this long ends a sentence")
    lead_in: float = Field(default=0.25, ge=0, le=2)
    tail: float = Field(default=0.45, ge=0, le=3)
    min_gap: float = Field(default=1.0, ge=0, description="seconds between two picked moments")


@dataclass
class Sentence:
    first: int
    last: int
    start: float
    end: float
    text: str
    tokens: list[str] = field(default_factory=list)


def tokens(text: str) -> list[str]:
    return [t.lower().strip("'’-") for t in _TOKEN.findall(text) if t.strip("'’-")]


def split_sentences(words: list[Word], pause: float, longest: float = 15.0) -> list[Sentence]:
    """Split at sentence punctuation or a long pause; run-ons (no punctuation) past ``longest``
    seconds break at the next short pause, and past twice that at any word."""
    sentences: list[Sentence] = []
    first = 0
    for i, w in enumerate(words):
        last_word = i + 1 == len(words)
        ends = w.text.rstrip('"»”)').endswith(SENTENCE_END)
        gap = 0.0 if last_word else words[i + 1].start - w.end
        length = w.end - words[first].start
        run_on = (length >= longest and gap >= 0.25) or length >= 2 * longest
        if ends or gap >= pause or run_on or last_word:
            chunk = words[first : i + 1]
            text = " ".join(x.text for x in chunk)
            sentences.append(Sentence(first, i, chunk[0].start, w.end, text, tokens(text)))
            first = i + 1
    return sentences


@dataclass
class Candidate:
    first: int  # sentence indexes
    last: int
    start: float
    end: float
    raw: float = 0.0
    features: dict[str, float] = field(default_factory=dict)


class LocalSelector(Selector):
    name = "local"
    description = "sentence-bounded windows scored by text features; no network"
    Options: ClassVar[type[ProviderOptions]] = LocalOptions
    options: LocalOptions

    def select(
        self, transcript: Transcript, request: SelectionRequest, progress: Progress = lambda _: None
    ) -> list[Moment]:
        words = [w for w in transcript.words if w.text.strip()]
        if not words:
            return []
        sentences = split_sentences(words, self.options.pause_seconds)
        idf = _idf(sentences)
        salience = _salience(sentences, idf)
        prompt_terms = {t for t in tokens(request.prompt or "") if t not in STOPWORDS}
        candidates = self._candidates(sentences, request)
        progress(0.3)
        for c in candidates:
            self._score(c, sentences, salience, prompt_terms)
        _normalise(candidates)
        progress(0.7)
        picked = self._pick(candidates, request.max_clips)
        moments = [self._moment(c, words, sentences, salience, transcript) for c in picked]
        progress(1.0)
        return moments

    def _candidates(self, sentences: list[Sentence], request: SelectionRequest) -> list[Candidate]:
        out = []
        pad = self.options.lead_in + self.options.tail
        for i in range(len(sentences)):
            for j in range(i, len(sentences)):
                length = sentences[j].end - sentences[i].start + pad
                if length > request.max_seconds:
                    break
                if length >= request.min_seconds:
                    out.append(Candidate(i, j, sentences[i].start, sentences[j].end))
        return out

    def _score(
        self,
        c: Candidate,
        sentences: list[Sentence],
        salience: dict[str, float],
        prompt_terms: set[str],
    ) -> None:
        span = sentences[c.first : c.last + 1]
        opening, closing = span[0], span[-1]
        toks = [t for s in span for t in s.tokens]
        content = [t for t in toks if t not in STOPWORDS and len(t) > 2]
        seconds = max(c.end - c.start, 1.0)
        f = c.features
        f["hook"] = (
            1.0 * opening.text.rstrip().endswith("?")
            + 0.6 * bool(_NUMBER.search(opening.text))
            + 0.5 * bool(STRONG.intersection(opening.tokens))
        )
        f["dangling_start"] = -1.5 * bool(opening.tokens and opening.tokens[0] in DANGLING)
        f["ends_sentence"] = 0.6 * closing.text.rstrip('"»”)').endswith(SENTENCE_END)
        closing_text = closing.text.lower()
        f["conclusion"] = 0.5 * any(cue in closing_text for cue in CONCLUDING)
        f["density"] = len(content) / seconds
        f["salience"] = sum(salience.get(t, 0.0) for t in set(content)) / math.sqrt(len(span))
        f["prompt"] = 2.0 * len(prompt_terms.intersection(toks)) / max(len(prompt_terms), 1)
        c.raw = sum(f.values())

    def _pick(self, candidates: list[Candidate], limit: int) -> list[Candidate]:
        picked: list[Candidate] = []
        gap = self.options.min_gap
        for c in sorted(candidates, key=lambda c: (-c.raw, c.start, c.end)):
            if all(c.end + gap <= p.start or c.start >= p.end + gap for p in picked):
                picked.append(c)
                if len(picked) == limit:
                    break
        return picked

    def _moment(
        self,
        c: Candidate,
        words: list[Word],
        sentences: list[Sentence],
        salience: dict[str, float],
        transcript: Transcript,
    ) -> Moment:
        first_word = sentences[c.first].first
        last_word = sentences[c.last].last
        floor = words[first_word - 1].end if first_word > 0 else 0.0
        ceiling = words[last_word + 1].start if last_word + 1 < len(words) else transcript.duration
        ceiling = max(ceiling, words[last_word].end)
        start = max(words[first_word].start - self.options.lead_in, floor, 0.0)
        end = min(words[last_word].end + self.options.tail, ceiling or words[last_word].end)
        span = sentences[c.first : c.last + 1]
        keywords = _keywords(span, salience)
        return Moment(
            start=round(start, 3),
            end=round(end, 3),
            score=c.features["score"],
            title=_title(keywords) or _shorten(span[0].text, 60),
            hook=_shorten(span[0].text, 120),
            reason=_reason(c.features),
            hashtags=["#" + k.replace("-", "") for k in keywords[:3]],
        )


def _idf(sentences: list[Sentence]) -> dict[str, float]:
    df: Counter[str] = Counter()
    for s in sentences:
        df.update(set(s.tokens))
    n = len(sentences)
    return {t: math.log((1 + n) / (1 + d)) + 1 for t, d in df.items()}


def _salience(sentences: list[Sentence], idf: dict[str, float]) -> dict[str, float]:
    """Terms that recur in the talk but are not everywhere: the talk's own vocabulary."""
    tf: Counter[str] = Counter(
        t for s in sentences for t in s.tokens if t not in STOPWORDS and len(t) > 2
    )
    if not tf:
        return {}
    top = max(tf.values())
    return {t: (n / top) * idf[t] for t, n in tf.items() if n >= 2}


def _normalise(candidates: list[Candidate]) -> None:
    """Map raw sums to 0-100: the rank among this talk's candidates, tempered by the margin."""
    if not candidates:
        return
    for name in ("density", "salience"):
        values = sorted(c.features[name] for c in candidates)
        for c in candidates:
            c.features[name] = _percentile(values, c.features[name])
    for c in candidates:
        c.raw = sum(v for k, v in c.features.items())
    raws = sorted(c.raw for c in candidates)
    lo, hi = raws[0], raws[-1]
    for c in candidates:
        rank = _percentile(raws, c.raw)
        spread = (c.raw - lo) / (hi - lo) if hi > lo else 0.5
        c.features["score"] = round(100 * (0.5 * rank + 0.5 * spread), 1)


def _percentile(sorted_values: list[float], value: float) -> float:
    import bisect

    if len(sorted_values) < 2:
        return 0.5
    return bisect.bisect_left(sorted_values, value) / (len(sorted_values) - 1)


def _keywords(span: list[Sentence], salience: dict[str, float]) -> list[str]:
    counts = Counter(t for s in span for t in s.tokens if t in salience)
    ranked = sorted(counts, key=lambda t: (-counts[t] * salience[t], t))
    return ranked[:4]


def _title(keywords: list[str]) -> str:
    if not keywords:
        return ""
    words = [k.capitalize() for k in keywords[:3]]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


def _reason(f: dict[str, float]) -> str:
    notes = []
    if f["hook"] >= 1.0:
        notes.append("opens with a question")
    elif f["hook"] > 0:
        notes.append("opens with a number or a strong claim")
    if f["dangling_start"] < 0:
        notes.append("starts mid-thought (penalised)")
    if f["conclusion"] > 0:
        notes.append("ends on a conclusion")
    if f["density"] >= 0.7:
        notes.append("dense in content words")
    if f["salience"] >= 0.7:
        notes.append("covers the talk's key terms")
    if f.get("prompt", 0) > 0:
        notes.append("matches the prompt")
    if not f["ends_sentence"]:
        notes.append("ends at a pause, not a full stop")
    body = "; ".join(notes) or "complete sentences of average interest"
    return f"score {f['score']:.0f}/100 relative to this talk's other candidates: {body}"


@hookimpl
def register_selectors(register):  # type: ignore[no-untyped-def]
    register(LocalSelector)
