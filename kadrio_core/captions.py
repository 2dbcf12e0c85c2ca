"""Captions from word timings: cues, SubRip and WebVTT files, and word-highlight ASS for burn-in."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from .errors import BadInput
from .models import Word

FONT_NAME = "Inter"
SENTENCE_END = (".", "?", "!", "…")
# average advance of a character in Inter Bold, in font sizes (measured on mixed text, rounded up)
CHAR_WIDTH = 0.62
CHAR_WIDTH_UPPER = 0.74


def font_dir() -> Path:
    """The folder of the font shipped with Kadrio (Inter, Latin and Cyrillic, OFL)."""
    return Path(str(files("kadrio_core") / "fonts"))


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    words: tuple[Word, ...]

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)


class CaptionStyle(BaseModel):
    """A caption preset; sizes are fractions of the output height (width for nothing)."""

    model_config = ConfigDict(extra="forbid")

    description: str = ""
    font_size: float = Field(gt=0, lt=0.2)
    primary: str
    highlight: str
    outline: str
    outline_width: float = Field(ge=0)
    shadow: float = Field(ge=0)
    box: bool = False
    uppercase: bool = False
    alignment: int = Field(default=2, ge=1, le=9)
    margin_bottom: float = Field(ge=0, lt=0.9)
    max_chars: int = Field(gt=4)
    pop: bool = False


@cache
def caption_styles() -> dict[str, CaptionStyle]:
    raw = json.loads((files("kadrio_core") / "data" / "caption_styles.json").read_text("utf-8"))
    return {name: CaptionStyle(**value) for name, value in raw.items()}


def caption_style(name: str) -> CaptionStyle:
    styles = caption_styles()
    if name not in styles:
        raise BadInput(f"unknown caption style {name!r}; available: {', '.join(sorted(styles))}")
    return styles[name]


def clip_words(words: Iterable[Word], start: float, end: float) -> list[Word]:
    """The words whose middle falls inside [start, end], in clip time (0 = clip start)."""
    out = []
    length = end - start
    for w in words:
        middle = (w.start + w.end) / 2
        if start <= middle <= end:
            s = min(max(w.start - start, 0.0), length)
            e = min(max(w.end - start, s), length)
            out.append(w.model_copy(update={"start": s, "end": e}))
    return out


def make_cues(
    words: list[Word],
    *,
    max_chars: int = 32,
    max_gap: float = 0.8,
    max_duration: float = 4.0,
    hold: float = 0.6,
    until: float | None = None,
) -> list[Cue]:
    """Group words into short phrases; a phrase breaks at a sentence end or a pause.

    Each cue stays up ``hold`` seconds after its last word unless the next one starts, and
    never past ``until`` (the clip's end).
    """
    groups: list[list[Word]] = []
    for w in words:
        if not w.text.strip():
            continue
        current = groups[-1] if groups else None
        if current is None or _breaks(current, w, max_chars, max_gap, max_duration):
            groups.append([w])
        else:
            current.append(w)
    cues = []
    for i, group in enumerate(groups):
        end = group[-1].end + hold
        if i + 1 < len(groups):
            end = min(end, groups[i + 1][0].start)
        if until is not None:
            end = min(end, until)
        cues.append(Cue(group[0].start, max(end, group[-1].end), tuple(group)))
    return cues


def _breaks(current: list[Word], word: Word, max_chars: int, max_gap: float, limit: float) -> bool:
    text_len = sum(len(w.text) + 1 for w in current) + len(word.text)
    return (
        current[-1].text.rstrip('"»”').endswith(SENTENCE_END)
        or word.start - current[-1].end > max_gap
        or text_len > max_chars
        or word.end - current[0].start > limit
    )


def _clock(seconds: float, sep: str) -> str:
    ms = round(max(seconds, 0.0) * 1000)
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def to_srt(cues: list[Cue]) -> str:
    blocks = [
        f"{i}\n{_clock(c.start, ',')} --> {_clock(c.end, ',')}\n{c.text}\n"
        for i, c in enumerate(cues, 1)
    ]
    return "\n".join(blocks)


def to_vtt(cues: list[Cue]) -> str:
    def esc(text: str) -> str:
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    blocks = [f"{_clock(c.start, '.')} --> {_clock(c.end, '.')}\n{esc(c.text)}\n" for c in cues]
    return "WEBVTT\n\n" + "\n".join(blocks)


def _ass_time(seconds: float) -> str:
    # Rounded up to the centisecond: a word is never shown before its timestamp.
    cs = math.ceil(round(max(seconds, 0.0) * 100, 6))
    h, rest = divmod(cs, 360_000)
    m, rest = divmod(rest, 6_000)
    s, cs = divmod(rest, 100)
    return f"{h}:{m:02d}:{s:02d}.{cs:02d}"


def _ass_colour(hex_rgb: str, alpha: int = 0) -> str:
    rgb = hex_rgb.lstrip("#")
    return f"&H{alpha:02X}{rgb[4:6]}{rgb[2:4]}{rgb[0:2]}".upper()


def _ass_text(text: str) -> str:
    return text.replace("\\", "/").replace("{", "(").replace("}", ")").replace("\n", " ")


def to_ass(cues: list[Cue], style: CaptionStyle, width: int, height: int) -> str:
    """Word-by-word captions: words appear as they are spoken, the current one highlighted.

    Words not yet spoken are laid out but fully transparent, so the line does not jump as
    it fills up; boxed styles leave them out instead (a box would show around them).
    """
    size = round(style.font_size * height)
    outline = max(style.outline_width * height, 0.0)
    margin_lr = round(width * 0.1)
    usable = width - 2 * margin_lr
    margin_v = round(style.margin_bottom * height)
    border_style = 3 if style.box else 1
    back = _ass_colour(style.outline, 0x60)
    header = (
        "[Script Info]\nScriptType: v4.00+\nWrapStyle: 0\nScaledBorderAndShadow: yes\n"
        f"PlayResX: {width}\nPlayResY: {height}\n\n"
        "[V4+ Styles]\n"
        "Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, "
        "BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, "
        "BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding\n"
        f"Style: Caption,{FONT_NAME},{size},{_ass_colour(style.primary)},"
        f"{_ass_colour(style.highlight)},{_ass_colour(style.outline)},{back},-1,0,0,0,100,100,0,0,"
        f"{border_style},{outline:.1f},{style.shadow * height:.1f},{style.alignment},"
        f"{margin_lr},{margin_lr},{margin_v},1\n\n"
        "[Events]\n"
        "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
    )
    highlight = _ass_colour(style.highlight)
    primary = _ass_colour(style.primary)
    pop, unpop = (r"\fscx112\fscy112", r"\fscx100\fscy100") if style.pop else ("", "")
    char_width = CHAR_WIDTH_UPPER if style.uppercase else CHAR_WIDTH
    lines = []
    for cue in cues:
        words = [_ass_text(w.text.upper() if style.uppercase else w.text) for w in cue.words]
        # a word wider than the line cannot wrap: shrink this cue's text until it fits
        widest = max(len(w) for w in words) * size * char_width
        shrink = f"{{\\fs{int(size * usable / widest)}}}" if widest > usable else ""
        for i, word in enumerate(cue.words):
            start = word.start
            end = cue.words[i + 1].start if i + 1 < len(cue.words) else cue.end
            if end - start < 0.01:
                continue
            parts = []
            for j, text in enumerate(words):
                if j < i:
                    parts.append(text)
                elif j == i:
                    parts.append(f"{{\\c{highlight}{pop}}}{text}{{\\c{primary}{unpop}}}")
                elif not style.box:  # a box would still show around a transparent word
                    parts.append(f"{{\\alpha&HFF&}}{text}{{\\alpha&H00&}}")
            text = shrink + " ".join(parts)
            lines.append(f"Dialogue: 0,{_ass_time(start)},{_ass_time(end)},Caption,,0,0,0,,{text}")
    return header + "\n".join(lines) + "\n"
