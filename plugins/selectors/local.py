"""The local moment selector: no network, no model, English and Russian.

1. The transcript is split into sentences: at sentence punctuation, at a change of speaker, and
   (as a weaker boundary) at a long pause or deep into a run-on.
2. Candidate windows start and end on those boundaries and last within the requested range.
3. Each window is scored on 0-100 from a base of 50 by features worth a few points each: the hook
   of its opening (a question, a number, a bold claim), whether it starts self-contained (no
   dangling "and"/"it"/"это", no answer whose question is left out) and ends on a conclusion
   rather than mid-thought, its density in content words and in the talk's own vocabulary,
   topic coherence (TextTiling over bag-of-stems vectors: the window should sit between topic
   shifts, not across one), pace and dead air, short-turn banter and meta-talk (greetings,
   sponsors, "can you see my screen"), a length near the middle of the range, and the user's
   prompt. ``reason`` lists the features that counted, with their points.
4. Picks are the best windows that do not overlap, with a diversity penalty for windows on the
   same topic as earlier picks, and at most ``max_coverage`` of the talk in clips.
5. Titles are the window's key phrases (RAKE-style: runs of content words ranked by tf-idf),
   not its first sentence. Optionally filler words and long pauses inside a clip become
   ``Moment.cuts`` for the renderer to leave out.
"""

from __future__ import annotations

import bisect
import itertools
import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from importlib.resources import files
from typing import TYPE_CHECKING, ClassVar

from pydantic import Field

from kadrio_core.hookspecs import hookimpl
from kadrio_core.models import Moment, SelectionRequest, Transcript, Word
from kadrio_core.providers import Progress, ProviderOptions, Selector

if TYPE_CHECKING:
    import numpy as np

LEXICON = json.loads((files("kadrio_plugins.selectors") / "lexicon.json").read_text("utf-8"))
STOPWORDS = frozenset(LEXICON["stopwords"])
FILLERS = frozenset(LEXICON["fillers"])
FILLERS_NEED_PAUSE = frozenset(LEXICON["fillers_need_pause"])  # also ordinary words
DANGLING_STRONG = frozenset(LEXICON["dangling"]["strong"])  # refers back to something unsaid
DANGLING_WEAK = frozenset(LEXICON["dangling"]["weak"])  # continues a previous sentence
ANSWER_OPENERS = frozenset(LEXICON["answer_openers"])
STRONG = frozenset(LEXICON["strong"])  # words of a bold claim
NUMBER_WORDS = frozenset(LEXICON["numbers"])
BACK_REFERENCE = tuple(LEXICON["back_reference"])
CONCLUDING = tuple(LEXICON["concluding"])
META = tuple(LEXICON["meta"])  # greetings, sponsor reads, screen and microphone checks
SENTENCE_END = (".", "?", "!", "…")
CLOSERS = "\"'»”)]"
_TOKEN = re.compile(r"[\w'’-]+", re.UNICODE)
_CYRILLIC = re.compile(r"[а-яё]")
_RU_ENDINGS = sorted(LEXICON["russian_endings"], key=len, reverse=True)
_EN_SUFFIXES = ("ingly", "edly", "ing", "ies", "ied", "ed", "es", "ly", "s")
VERB_ENDINGS = {k: tuple(v) for k, v in LEXICON["verb_endings"].items()}
TITLE_STOPWORDS = frozenset(LEXICON["title_stopwords"])  # fine in a clip, empty in a title


class LocalOptions(ProviderOptions):
    pause_seconds: float = Field(
        default=1.2, gt=0, description="a silence this long ends a sentence (a weak boundary)"
    )
    lead_in: float = Field(default=0.25, ge=0, le=2)
    tail: float = Field(default=0.45, ge=0, le=3)
    min_gap: float = Field(default=1.0, ge=0, description="seconds between two picked moments")
    min_score: float = Field(default=40, ge=0, le=100, description="leave out weaker moments")
    max_coverage: float = Field(
        default=0.75, gt=0, le=1, description="at most this share of the talk goes into clips"
    )
    diversity: float = Field(
        default=20, ge=0, le=100, description="points taken off per unit of topic overlap"
    )
    cut_fillers: bool = Field(default=False, description="cut um/uh/ну/типа out of clips")
    max_pause: float | None = Field(
        default=None, gt=0, description="shorten silences longer than this inside a clip"
    )


@dataclass
class Sentence:
    first: int  # word indexes
    last: int
    start: float
    end: float
    text: str
    speaker: str | None
    end_kind: str  # punct | turn | pause | runon | last
    tokens: list[str] = field(default_factory=list)
    stems: list[str] = field(default_factory=list)

    @property
    def hard_end(self) -> bool:
        return self.end_kind in ("punct", "turn", "last")

    @property
    def question(self) -> bool:
        return self.text.rstrip(CLOSERS).endswith("?")

    @property
    def lowered(self) -> str:
        return " " + " ".join(self.tokens) + " "


@dataclass
class Candidate:
    first: int  # sentence indexes
    last: int
    start: float
    end: float
    score: float = 0.0
    points: dict[str, float] = field(default_factory=dict)


# -- text helpers ----------------------------------------------------------------------------


def tokens(text: str) -> list[str]:
    return [
        t.lower().strip("'’-").replace("’", "'") for t in _TOKEN.findall(text) if t.strip("'’-")
    ]


def stem(token: str) -> str:
    """A crude stemmer: enough to let "bees"/"bee" and "хлеба"/"хлеб" meet."""
    if _CYRILLIC.search(token):
        token = token.replace("ё", "е")
        for ending in _RU_ENDINGS:
            if token.endswith(ending) and len(token) - len(ending) >= 3:
                return token[: -len(ending)]
        return token
    for suffix in _EN_SUFFIXES:
        if token.endswith(suffix) and len(token) - len(suffix) >= 3:
            return token[: -len(suffix)]
    return token


def is_content(token: str) -> bool:
    return token not in STOPWORDS and token not in FILLERS and (len(token) > 2 or token.isdigit())


def ends_sentence(text: str) -> bool:
    return text.rstrip(CLOSERS).endswith(SENTENCE_END)


def has_phrase(sentence: Sentence, phrases: tuple[str, ...]) -> bool:
    text = sentence.lowered
    return any(f" {p} " in text for p in phrases)


def has_number(sentence: Sentence) -> bool:
    return any(t[:1].isdigit() or t in NUMBER_WORDS for t in sentence.tokens)


def split_sentences(words: list[Word], pause: float, longest: float = 15.0) -> list[Sentence]:
    """Split at sentence punctuation, a change of speaker, or a long pause; run-ons (no
    punctuation) past ``longest`` seconds break at the next short pause, past twice that at
    any word."""
    sentences: list[Sentence] = []
    first = 0
    for i, w in enumerate(words):
        last_word = i + 1 == len(words)
        nxt = None if last_word else words[i + 1]
        gap = 0.0 if nxt is None else nxt.start - w.end
        length = w.end - words[first].start
        kind = ""
        if last_word:
            kind = "last"
        elif ends_sentence(w.text):
            kind = "punct"
        elif nxt is not None and w.speaker and nxt.speaker and w.speaker != nxt.speaker:
            kind = "turn"
        elif gap >= pause:
            kind = "pause"
        elif (length >= longest and gap >= 0.25) or length >= 2 * longest:
            kind = "runon"
        if kind:
            chunk = words[first : i + 1]
            text = " ".join(x.text for x in chunk)
            toks = tokens(text)
            sentences.append(
                Sentence(
                    first,
                    i,
                    chunk[0].start,
                    w.end,
                    text,
                    chunk[0].speaker,
                    kind,
                    toks,
                    [stem(t) for t in toks if is_content(t)],
                )
            )
            first = i + 1
    return sentences


# -- the talk as a whole ---------------------------------------------------------------------


@dataclass
class Talk:
    words: list[Word]
    sentences: list[Sentence]
    vocabulary: dict[str, int]
    idf: np.ndarray
    salience: np.ndarray
    prefix: np.ndarray  # cumulative tf-idf sentence vectors: window vector = prefix[j+1]-prefix[i]
    depth: list[float]  # TextTiling depth of the gap before sentence g (0..1); [0] unused
    speakers: int
    soft_penalty: float  # for a boundary at a pause: high when the talk is punctuated at all
    density_values: list[float] = field(default_factory=list)
    salience_values: list[float] = field(default_factory=list)
    pace_values: list[float] = field(default_factory=list)


def analyse(words: list[Word], pause: float) -> Talk:
    import numpy as np

    sentences = split_sentences(words, pause)
    vocabulary: dict[str, int] = {}
    for s in sentences:
        for st in s.stems:
            vocabulary.setdefault(st, len(vocabulary))
    n, v = len(sentences), max(len(vocabulary), 1)
    counts = np.zeros((n, v), dtype=np.float32)
    for i, s in enumerate(sentences):
        for st in s.stems:
            counts[i, vocabulary[st]] += 1
    df = (counts > 0).sum(axis=0)
    idf = np.log((1 + n) / (1 + df)) + 1
    tf = counts.sum(axis=0)
    # terms the talk keeps coming back to, but not in every sentence: its own vocabulary
    salience = np.where(tf >= 2, tf / max(tf.max(), 1) * idf, 0.0)
    vectors = counts * idf.astype(np.float32)
    del counts
    prefix = np.vstack([np.zeros((1, v), dtype=np.float32), np.cumsum(vectors, axis=0)])
    speakers = len({w.speaker for w in words if w.speaker})
    punctuated = sum(s.end_kind == "punct" for s in sentences) / n
    soft_penalty = round(max(3.0, 25 * min(1.0, 2 * punctuated)), 1)
    depth = texttiling(vectors)
    return Talk(words, sentences, vocabulary, idf, salience, prefix, depth, speakers, soft_penalty)


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    import numpy as np

    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    return float(a @ b) / (na * nb) if na and nb else 0.0


def texttiling(vectors: np.ndarray, block: int = 3) -> list[float]:
    """Hearst's depth scores: how sharply the vocabulary changes at each sentence gap."""
    n = len(vectors)
    sims = [0.0] * n
    for g in range(1, n):
        left = vectors[max(0, g - block) : g].sum(axis=0)
        right = vectors[g : g + block].sum(axis=0)
        sims[g] = _cosine(left, right)
    depth = [0.0] * n
    for g in range(1, n):
        lpeak = sims[g]
        for h in range(g - 1, 0, -1):
            if sims[h] < lpeak:
                break
            lpeak = sims[h]
        rpeak = sims[g]
        for h in range(g + 1, n):
            if sims[h] < rpeak:
                break
            rpeak = sims[h]
        depth[g] = (lpeak - sims[g]) + (rpeak - sims[g])
    top = max(depth) or 1.0
    return [d / top for d in depth]


# -- the selector ----------------------------------------------------------------------------


class LocalSelector(Selector):
    name = "local"
    description = "sentence-bounded windows scored by hook, completeness, topic; no network"
    Options: ClassVar[type[ProviderOptions]] = LocalOptions
    options: LocalOptions

    def select(
        self, transcript: Transcript, request: SelectionRequest, progress: Progress = lambda _: None
    ) -> list[Moment]:
        words = [w for w in transcript.words if w.text.strip()]
        if not words:
            return []
        talk = analyse(words, self.options.pause_seconds)
        candidates = self._candidates(talk, request)
        if not candidates:
            return []
        progress(0.2)
        prompt = _prompt_stems(request.prompt)
        self._prepare_relative(talk, candidates)
        for c in candidates:
            self._score(c, talk, request, prompt)
        progress(0.7)
        picked = self._pick(candidates, talk, request, transcript.duration)
        moments = [self._moment(c, talk, transcript.duration) for c in picked]
        progress(1.0)
        return moments

    # -- candidates and features -------------------------------------------------------------

    def _candidates(self, talk: Talk, request: SelectionRequest) -> list[Candidate]:
        out = []
        pad = self.options.lead_in + self.options.tail
        ss = talk.sentences
        for i in range(len(ss)):
            for j in range(i, len(ss)):
                length = ss[j].end - ss[i].start + pad
                if length > request.max_seconds:
                    break
                if length >= request.min_seconds:
                    out.append(Candidate(i, j, ss[i].start, ss[j].end))
        return out

    def _prepare_relative(self, talk: Talk, candidates: list[Candidate]) -> None:
        """Density and vocabulary are judged against this talk's other windows."""
        talk.density_values = sorted(_density(c, talk) for c in candidates)
        talk.salience_values = sorted(_salience(c, talk) for c in candidates)
        talk.pace_values = sorted(_pace(c, talk) for c in candidates)

    def _score(
        self, c: Candidate, talk: Talk, request: SelectionRequest, prompt: list[str]
    ) -> None:
        ss = talk.sentences
        span = ss[c.first : c.last + 1]
        previous = ss[c.first - 1] if c.first > 0 else None
        following = ss[c.last + 1] if c.last + 1 < len(ss) else None
        p = c.points

        # the opening: a very short first sentence ("Okay.") hands the hook to the next one
        opening = span[0]
        hook_span = [opening] + ([span[1]] if len(opening.tokens) < 4 and len(span) > 1 else [])
        if any(s.question and len(s.tokens) >= 4 and not has_phrase(s, META) for s in hook_span):
            p["opens with a question"] = 10
        if any(has_number(s) for s in hook_span):
            p["a number up front"] = 4
        if any(STRONG.intersection(s.tokens) for s in hook_span):
            p["a bold claim up front"] = 5

        # a clean start: after a full stop or a turn, not leaning on what came before
        first_token = opening.tokens[0] if opening.tokens else ""
        if previous is not None and not previous.hard_end:
            p["starts mid-sentence"] = -talk.soft_penalty
        elif first_token in DANGLING_STRONG:
            p["starts with a reference to something earlier"] = -14
        elif first_token in DANGLING_WEAK:
            p["starts with a connective"] = -3 if opening.question else -6
        if (
            previous is not None
            and previous.question
            and previous.speaker != opening.speaker
            and first_token in ANSWER_OPENERS | DANGLING_STRONG | DANGLING_WEAK
        ):
            p["answers a question it leaves out"] = -10
        if has_phrase(opening, META):
            p["opens with housekeeping"] = -10
        if has_phrase(opening, BACK_REFERENCE):
            p["refers back"] = -8
        if talk.speakers > 1 and (previous is None or previous.speaker != opening.speaker):
            p["starts a turn"] = 3

        # a clean end: a finished thought, ideally a conclusion
        closing = span[-1]
        if not closing.hard_end:
            p["ends at a pause, not a full stop"] = -talk.soft_penalty
        elif closing.question:
            p["ends on an open question"] = -8
        if (
            following is not None
            and following.speaker == closing.speaker
            and following.tokens
            and following.tokens[0] in DANGLING_STRONG | DANGLING_WEAK
            and not has_phrase(following, META)
            and talk.depth[c.last + 1] < 0.5
        ):
            p["the thought goes on after the end"] = -6
        tail = span[-2:] if len(span) > 1 else span
        if any(has_phrase(s, CONCLUDING) for s in tail):
            p["ends on a conclusion"] = 8
        if len(span) > 2 and 3 <= len(closing.tokens) <= 10 and not closing.question:
            p["ends on a short punchline"] = 3
        if talk.speakers > 1 and (following is None or following.speaker != closing.speaker):
            p["ends a turn"] = 3

        # what is inside
        total_tokens = sum(len(s.tokens) for s in span) or 1
        meta = sum(len(s.tokens) for s in span if has_phrase(s, META)) / total_tokens
        if meta > 0:
            p["greetings, sponsors or housekeeping"] = round(-30 * meta, 1)
        banter = sum(len(s.tokens) < 4 for s in span) / len(span)
        if banter > 0.25:
            p["short back-and-forth"] = round(-12 * banter, 1)
        density = _percentile(talk.density_values, _density(c, talk))
        p["dense in content words"] = round(12 * (density - 0.5), 1)
        vocab = _percentile(talk.salience_values, _salience(c, talk))
        p["covers the talk's key terms"] = round(12 * (vocab - 0.5), 1)
        pace = _percentile(talk.pace_values, _pace(c, talk))
        p["lively pace"] = round(4 * (pace - 0.5), 1)
        inside = talk.words[span[0].first : span[-1].last + 1]
        dead_air = sum(b.start - a.end > 1.5 for a, b in itertools.pairwise(inside))
        if dead_air:
            p["long silences"] = -min(12, 4 * dead_air)

        # topic: sit between topic shifts, not across one
        edges = (talk.depth[c.first] if c.first > 0 else 1.0) + (
            talk.depth[c.last + 1] if c.last + 1 < len(ss) else 1.0
        )
        p["one topic, cut at its edges"] = round(4 * edges, 1)
        inner = max((talk.depth[g] for g in range(c.first + 1, c.last + 1)), default=0.0)
        if inner > 0.5:
            p["crosses a change of topic"] = round(-20 * (inner - 0.5), 1)

        # length: near the middle of the asked range
        spread = max(request.max_seconds - request.min_seconds, 1.0)
        target = request.min_seconds + 0.4 * spread
        p["length off the middle of the range"] = round(
            -8 * abs(c.end - c.start - target) / spread, 1
        )

        if prompt:
            p["matches the prompt"] = _prompt_points(c, talk, prompt)

        c.score = round(min(100.0, max(0.0, 50 + sum(p.values()))), 1)

    # -- picking -----------------------------------------------------------------------------

    def _pick(
        self, candidates: list[Candidate], talk: Talk, request: SelectionRequest, duration: float
    ) -> list[Candidate]:
        gap = self.options.min_gap
        budget = self.options.max_coverage * max(duration, talk.words[-1].end)
        pool = sorted(
            (c for c in candidates if c.score >= self.options.min_score),
            key=lambda c: (-c.score, c.start),
        )
        vectors: dict[int, np.ndarray] = {}

        def vector(c: Candidate) -> np.ndarray:
            if id(c) not in vectors:
                vectors[id(c)] = talk.prefix[c.last + 1] - talk.prefix[c.first]
            return vectors[id(c)]

        picked: list[Candidate] = []
        used = 0.0
        while pool and len(picked) < request.max_clips:
            best, best_value = None, -math.inf
            for c in pool:
                if c.score < best_value:  # the value is the score less a penalty: none can win
                    break
                penalty = max((_cosine(vector(c), vector(q)) for q in picked), default=0.0)
                value = c.score - self.options.diversity * penalty
                if value > best_value or (
                    value == best_value and best is not None and c.start < best.start
                ):
                    best, best_value = c, value
            if best is None:
                break
            length = best.end - best.start
            if picked and used + length > budget:
                pool = [c for c in pool if c is not best]
                continue
            picked.append(best)
            used += length
            pool = [c for c in pool if c.end + gap <= best.start or c.start >= best.end + gap]
        return sorted(picked, key=lambda c: (-c.score, c.start))

    # -- the moment ----------------------------------------------------------------------------

    def _moment(self, c: Candidate, talk: Talk, duration: float) -> Moment:
        words = talk.words
        first_word = talk.sentences[c.first].first
        last_word = talk.sentences[c.last].last
        floor = words[first_word - 1].end if first_word > 0 else 0.0
        ceiling = words[last_word + 1].start if last_word + 1 < len(words) else duration
        ceiling = max(ceiling, words[last_word].end)
        start = max(words[first_word].start - self.options.lead_in, floor, 0.0)
        end = min(words[last_word].end + self.options.tail, ceiling or words[last_word].end)
        span = talk.sentences[c.first : c.last + 1]
        phrases = key_phrases(span, talk)
        return Moment(
            start=round(start, 3),
            end=round(end, 3),
            score=c.score,
            title=_title(phrases) or _shorten(span[0].text, 60),
            hook=_shorten(
                " ".join(s.text for s in span[:2]) if len(span[0].tokens) < 4 else span[0].text, 120
            ),
            reason=_reason(c),
            hashtags=_hashtags(span, talk),
            cuts=self._cuts(words[first_word : last_word + 1]),
        )

    def _cuts(self, words: list[Word]) -> list[tuple[float, float]]:
        """Silences and fillers inside the clip to leave out, in source seconds."""
        keep = 0.12  # the pause left where something was cut, so speech does not collide
        cuts: list[tuple[float, float]] = []
        if self.options.cut_fillers:
            i = 1
            while i < len(words) - 1:
                j = i
                while j < len(words) - 1 and _is_filler(words, j):
                    j += 1
                if j > i:  # words[i:j] are fillers between two kept words
                    a, b = words[i - 1].end + keep / 2, words[j].start - keep / 2
                    if b - a > 0.05:
                        cuts.append((round(a, 3), round(b, 3)))
                i = j + 1
        if self.options.max_pause is not None:
            for a, b in itertools.pairwise(words):
                if b.start - a.end > self.options.max_pause:
                    cuts.append(
                        (round(a.end + self.options.max_pause / 2, 3), round(b.start - keep, 3))
                    )
        return _merge(cuts)


def _is_filler(words: list[Word], i: int) -> bool:
    raw = words[i].text
    bare = raw.lower().strip(".,!?…;:-—\"'»«”“")
    if bare not in FILLERS:
        return False
    if bare in FILLERS_NEED_PAUSE:  # "ну"/"типа" are also ordinary words: only as an aside
        return raw.rstrip().endswith(",") or words[i + 1].start - words[i].end >= 0.2
    return True


def _merge(cuts: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for a, b in sorted(c for c in cuts if c[1] > c[0]):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _density(c: Candidate, talk: Talk) -> float:
    span = talk.sentences[c.first : c.last + 1]
    content = sum(len(s.stems) for s in span)
    return content / max(c.end - c.start, 1.0)


def _pace(c: Candidate, talk: Talk) -> float:
    """Words a second of speech, pauses between sentences left out."""
    span = talk.sentences[c.first : c.last + 1]
    spoken = sum(s.end - s.start for s in span)
    return sum(s.last - s.first + 1 for s in span) / max(spoken, 1.0)


def _salience(c: Candidate, talk: Talk) -> float:
    span = talk.sentences[c.first : c.last + 1]
    distinct = {talk.vocabulary[st] for s in span for st in s.stems}
    return float(sum(talk.salience[i] for i in distinct)) / math.sqrt(len(span))


def _percentile(sorted_values: list[float], value: float) -> float:
    if len(sorted_values) < 2:
        return 0.5
    lo = bisect.bisect_left(sorted_values, value)
    hi = bisect.bisect_right(sorted_values, value)
    return (lo + hi - 1) / 2 / (len(sorted_values) - 1)


def _prompt_stems(prompt: str | None) -> list[str]:
    return [stem(t) for t in tokens(prompt or "") if is_content(t)]


def _prompt_points(c: Candidate, talk: Talk, prompt: list[str]) -> float:
    """Up to 30 points: the share of the prompt's terms the window uses, more for a phrase."""
    span = talk.sentences[c.first : c.last + 1]
    stems = [st for s in span for st in s.stems]
    present = set(stems)
    share = sum(st in present for st in prompt) / len(prompt)
    pairs = set(itertools.pairwise(stems))
    phrase = any(pair in pairs for pair in itertools.pairwise(prompt))
    return round(25 * share + 5 * phrase, 1)


# -- titles and hashtags ---------------------------------------------------------------------


def _surface(span: list[Sentence], talk: Talk) -> list[list[tuple[str, str]]]:
    """Runs of content words (surface form, stem) between stopwords and punctuation."""
    runs: list[list[tuple[str, str]]] = []
    for s in span:
        run: list[tuple[str, str]] = []
        for k, w in enumerate(talk.words[s.first : s.last + 1]):
            raw = w.text.strip(".,!?…;:\"'»«”“()")
            low = raw.lower().replace("’", "'")
            breaks = w.text != raw and w.text.rstrip() != raw  # punctuation after the word
            if not is_content(low) or low in TITLE_STOPWORDS or not _TOKEN.fullmatch(raw or "-"):
                if run:
                    runs.append(run)
                run = []
                continue
            keep_case = k > 0 and raw[:1].isupper() and low not in ("i",)
            run.append((raw if keep_case else low, stem(low)))
            if breaks:
                runs.append(run)
                run = []
        if run:
            runs.append(run)
    return runs


def key_phrases(span: list[Sentence], talk: Talk, limit: int = 3) -> list[str]:
    """RAKE-style key phrases of one to three content words, ranked by tf-idf in the window."""
    counts = Counter(st for s in span for st in s.stems)

    def weight(st: str) -> float:
        i = talk.vocabulary.get(st)
        if i is None:
            return 0.0
        return counts[st] * float(talk.idf[i]) * (1 + float(talk.salience[i]))

    scored: dict[tuple[str, ...], tuple[float, str]] = {}
    for run in _surface(span, talk):
        for size in (1, 2, 3):
            for a in range(len(run) - size + 1):
                part = run[a : a + size]
                key = tuple(st for _, st in part)
                if len(set(key)) < size or _verbish(part[-1][0]):
                    continue
                value = sum(weight(st) for st in key) * (1.0, 1.5, 1.6)[size - 1] / size**0.5
                text = " ".join(surface for surface, _ in part)
                if key not in scored or scored[key][0] < value:
                    scored[key] = (value, text)
    ranked = sorted(scored.items(), key=lambda kv: (-kv[1][0], kv[1][1]))
    out: list[str] = []
    seen: set[str] = set()
    for key, (_, text) in ranked:
        if seen.intersection(key):
            continue
        out.append(text)
        seen.update(key)
        if len(out) == limit:
            break
    return out


def _verbish(word: str) -> bool:
    """A title should end on a thing, not an action: a crude look at the ending."""
    endings = VERB_ENDINGS["ru" if _CYRILLIC.search(word) else "en"]
    return len(word) > 4 and word.lower().endswith(endings)


def _title(phrases: list[str]) -> str:
    if not phrases:
        return ""
    first = phrases[0][:1].upper() + phrases[0][1:]
    if len(phrases) == 1:
        return first
    title = f"{first}: {phrases[1]}"
    return title if len(title) <= 60 else first


def _hashtags(span: list[Sentence], talk: Talk) -> list[str]:
    counts = Counter(st for s in span for st in s.stems)
    surface: dict[str, Counter[str]] = {}
    for s in span:
        for t in s.tokens:
            if is_content(t) and t.isalpha():
                surface.setdefault(stem(t), Counter())[t] += 1
    ranked = sorted(
        (
            st
            for st in counts
            if st in surface
            and talk.salience[talk.vocabulary[st]] > 0
            and not _verbish(surface[st].most_common(1)[0][0])
            and surface[st].most_common(1)[0][0] not in TITLE_STOPWORDS
        ),
        key=lambda st: (-counts[st] * float(talk.idf[talk.vocabulary[st]]), st),
    )
    return ["#" + surface[st].most_common(1)[0][0] for st in ranked[:3]]


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


def _reason(c: Candidate) -> str:
    """The score and the features that moved it, biggest first."""
    items = sorted(
        ((k, v) for k, v in c.points.items() if abs(v) >= 1.5), key=lambda kv: -abs(kv[1])
    )
    plus = [f"{k} (+{v:g})" for k, v in items if v > 0][:5]
    minus = [f"{k} ({v:g})" for k, v in items if v < 0][:4]
    body = "; ".join(plus) or "complete sentences of average interest"
    if minus:
        body += "; against it: " + "; ".join(minus)
    return f"score {c.score:.0f}/100 from a base of 50: {body}"


@hookimpl
def register_selectors(register):  # type: ignore[no-untyped-def]
    register(LocalSelector)
