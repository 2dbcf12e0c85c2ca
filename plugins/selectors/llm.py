"""What the LLM selectors (claude, openai_compat) share: prompt, schema, chunking and merging.

Only the transcript text leaves the machine, as compact lines ``[12.3] words of a phrase`` (start
in seconds), plus the clip constraints and the user's prompt: no file names, no account data.
Long talks (two hours and more) are split into overlapping chunks of ``chunk_seconds``; each chunk
is asked for moments inside its own time range, and the answers are merged: validated against the
chunk's range and the requested length, snapped to word boundaries, de-duplicated where chunks
overlap, best first. The fixed instructions come first and never change between calls, so they
are cached by providers that cache prompt prefixes.
"""

from __future__ import annotations

import math
import re
from abc import abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import Field

from kadrio_core.models import Moment, SelectionRequest, Transcript, Word
from kadrio_core.providers import Progress, ProviderOptions, Selector
from kadrio_core.remote import RemoteOptions
from kadrio_core.words import snap_to_words

TOOL_NAME = "report_moments"
TOOL_DESCRIPTION = "Report the moments of the transcript that make the best short clips."

INSTRUCTIONS = """\
You are the editor of a channel of short vertical videos (TikTok, Reels, Shorts). You receive
the transcript of a long talk, podcast, interview or webinar and pick the moments that work as
clips on their own.

The transcript comes one phrase per line as "[start] text", where start is the time in seconds
from the beginning of the recording; a phrase lasts until the next line starts. A line may begin
with a speaker label such as "A:" when the speaker changes.

A good moment:
- makes sense without the rest of the talk: it starts at the beginning of a sentence and of a
  thought (not with "and", "so", "but", "this" or "that" referring back), and ends when the
  thought is complete;
- hooks in the first three seconds: a question, a surprising claim, a number, a story, a strong
  opinion, a practical tip;
- carries one idea, with a payoff: an answer, a punchline, a conclusion, a takeaway;
- fits the requested length exactly, between the minimum and the maximum number of seconds.

For each moment give:
- start: the start time of its first line, in seconds, copied from the transcript;
- end: the time at which its last sentence ends, in seconds (the start of the following line);
- title: at most 8 words, no clickbait, in the language of the talk;
- hook: the opening line a viewer sees, one short sentence, in the language of the talk;
- reason: one sentence on why this moment works as a clip;
- hashtags: 3 to 5 relevant hashtags without spaces, each starting with #;
- score: 0 to 100, how likely the clip is to be watched to the end and shared (90+ rare).

Moments must not overlap. Use only times inside the part of the transcript you are given. If
the user says what they are looking for, prefer moments about it. Prefer fewer, better moments
to filling the quota with weak ones; return an empty list when nothing stands alone. Report the
moments with the report_moments tool.
"""

MOMENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "start": {"type": "number", "description": "seconds from the start of the recording"},
        "end": {"type": "number", "description": "seconds from the start of the recording"},
        "title": {"type": "string"},
        "hook": {"type": "string"},
        "reason": {"type": "string"},
        "hashtags": {"type": "array", "items": {"type": "string"}},
        "score": {"type": "integer", "minimum": 0, "maximum": 100},
    },
    "required": ["start", "end", "title", "hook", "reason", "hashtags", "score"],
    "additionalProperties": False,
}

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"moments": {"type": "array", "items": MOMENT_SCHEMA}},
    "required": ["moments"],
    "additionalProperties": False,
}

_HASHTAG = re.compile(r"[^\w]+", re.UNICODE)


class MalformedReply(ValueError):
    """The model answered, but not with moments in the agreed shape (worth another try)."""


class LLMOptions(RemoteOptions):
    model: str
    max_tokens: int = Field(default=4096, ge=256, description="longest answer per call")
    chunk_seconds: float = Field(default=1800.0, ge=120, description="transcript per request")
    overlap_seconds: float = Field(default=120.0, ge=0, description="shared by adjacent chunks")
    length_tolerance: float = Field(
        default=0.15, ge=0, le=1, description="accepted miss of min/max length, as a fraction"
    )


@dataclass
class Line:
    start: float
    end: float
    speaker: str | None
    text: str


def transcript_lines(words: list[Word], longest: float = 12.0, pause: float = 1.0) -> list[Line]:
    """Group words into short phrases: at sentence ends, long pauses, speaker changes or length."""
    lines: list[Line] = []
    group: list[Word] = []
    for i, w in enumerate(words):
        group.append(w)
        nxt = words[i + 1] if i + 1 < len(words) else None
        ends = w.text.rstrip('"»”)').endswith((".", "?", "!", "…"))
        if (
            nxt is None
            or ends
            or nxt.start - w.end >= pause
            or nxt.speaker != w.speaker
            or w.end - group[0].start >= longest
        ):
            text = " ".join(x.text for x in group)
            lines.append(Line(group[0].start, w.end, group[0].speaker, text))
            group = []
    return lines


def format_lines(lines: list[Line]) -> str:
    out: list[str] = []
    speaker: str | None = None
    for line in lines:
        label = f"{line.speaker}: " if line.speaker and line.speaker != speaker else ""
        speaker = line.speaker or speaker
        out.append(f"[{line.start:.1f}] {label}{line.text}")
    return "\n".join(out)


def chunk_lines(lines: list[Line], chunk_seconds: float, overlap: float) -> list[list[Line]]:
    """Chunks of about ``chunk_seconds``; each shares ``overlap`` seconds with the next."""
    if not lines:
        return []
    chunks: list[list[Line]] = []
    first = 0
    while True:
        limit = lines[first].start + chunk_seconds
        last = first
        while last + 1 < len(lines) and lines[last + 1].end <= limit:
            last += 1
        chunks.append(lines[first : last + 1])
        if last + 1 >= len(lines):
            return chunks
        restart = lines[last].end - overlap
        nxt = next((i for i in range(first + 1, last + 1) if lines[i].start >= restart), last + 1)
        first = max(nxt, first + 1)


def user_message(
    lines: list[Line],
    request: SelectionRequest,
    part: int,
    parts: int,
    wanted: int,
    language: str | None = None,
) -> str:
    head = [
        f"Pick up to {wanted} moments, each {request.min_seconds:g} to "
        f"{request.max_seconds:g} seconds long."
    ]
    language = request.language or language
    if language and language != "und":
        head.append(f"The talk is in the language '{language}'.")
    if request.prompt:
        head.append(f"The user is looking for: {request.prompt.strip()}")
    if parts > 1:
        head.append(
            f"This is part {part} of {parts} of the talk, from {lines[0].start:.1f} s to "
            f"{lines[-1].end:.1f} s; use only times inside it."
        )
    else:
        head.append(f"The transcript ends at {lines[-1].end:.1f} s.")
    return "\n".join(head) + "\n\nTranscript:\n" + format_lines(lines)


def moments_from_reply(
    data: Any,
    chunk: list[Line],
    transcript: Transcript,
    request: SelectionRequest,
    tolerance: float,
) -> list[Moment]:
    """Validate the model's moments: inside the chunk, of the requested length, on word bounds."""
    lo, hi = chunk[0].start - 1.0, chunk[-1].end + 1.0
    shortest = request.min_seconds * (1 - tolerance)
    longest = request.max_seconds * (1 + tolerance)
    out: list[Moment] = []
    for item in checked(data):
        if not isinstance(item, dict):
            continue
        try:
            start, end = float(item["start"]), float(item["end"])
            score = float(item.get("score", 50))
        except (KeyError, TypeError, ValueError):
            continue
        if not (math.isfinite(start) and math.isfinite(end) and math.isfinite(score)):
            continue
        if start < lo or end > hi or end <= start:
            continue
        start = max(start, 0.0)
        end = min(end, transcript.duration) if transcript.duration else end
        if end <= start:
            continue
        title = str(item.get("title") or "").strip()
        if not title:
            title = " ".join([w.text for w in transcript.words if start <= w.start < end][:6])
        moment = Moment(
            start=start,
            end=end,
            score=round(min(max(score, 0.0), 100.0), 1),
            title=title[:120] or "Moment",
            hook=str(item.get("hook") or "").strip()[:300],
            reason=str(item.get("reason") or "").strip()[:500],
            hashtags=hashtags(item.get("hashtags")),
        )
        snapped = snap_to_words(moment, transcript.words, transcript.duration)
        if snapped is None or not (shortest <= snapped.duration <= longest):
            continue
        out.append(snapped)
    return out


def checked(data: Any) -> list[Any]:
    """The list of moments of a reply; MalformedReply when the reply has another shape."""
    if not isinstance(data, dict) or not isinstance(data.get("moments"), list):
        raise MalformedReply("the answer has no list of moments")
    return data["moments"]


def hashtags(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    tags: list[str] = []
    for raw in value:
        tag = _HASHTAG.sub("", str(raw))
        if tag and f"#{tag}" not in tags:
            tags.append(f"#{tag}")
    return tags[:8]


def merge(moments: list[Moment], max_clips: int) -> list[Moment]:
    """Best first, without overlaps (chunks overlap, so the same moment may come twice)."""
    picked: list[Moment] = []
    for m in sorted(moments, key=lambda m: (-m.score, m.start)):
        if all(m.end <= p.start or m.start >= p.end for p in picked):
            picked.append(m)
        if len(picked) == max_clips:
            break
    return picked


class LLMSelector(Selector):
    """A selector that asks a language model; subclasses only make the call."""

    Options: ClassVar[type[ProviderOptions]] = LLMOptions
    options: LLMOptions

    @abstractmethod
    def ask(self, system: str, user: str) -> Any:
        """Send one request (with retries); return the reply, already :func:`checked`."""

    def select(
        self, transcript: Transcript, request: SelectionRequest, progress: Progress = lambda _: None
    ) -> list[Moment]:
        lines = transcript_lines(transcript.words)
        if not lines or lines[-1].end - lines[0].start < request.min_seconds:
            return []
        chunks = chunk_lines(lines, self.options.chunk_seconds, self.options.overlap_seconds)
        wanted = request.max_clips if len(chunks) == 1 else min(request.max_clips, 10)
        found: list[Moment] = []
        for part, chunk in enumerate(chunks, 1):
            user = user_message(chunk, request, part, len(chunks), wanted, transcript.language)
            reply = self.ask(INSTRUCTIONS, user)
            found += moments_from_reply(
                reply, chunk, transcript, request, self.options.length_tolerance
            )
            progress(part / len(chunks))
        return merge(found, request.max_clips)
