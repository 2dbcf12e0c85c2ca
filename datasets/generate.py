"""Turn each set's ``script.txt`` into ``transcript.json`` + ``labels.json``, deterministically.

    python datasets/generate.py            # every set under datasets/
    python datasets/generate.py --check    # fail when a committed file differs from the script

A script is plain text written as it would be spoken, with Whisper-like punctuation and
capitalisation (fillers such as "um," or "ну" included where a speaker would say them):

    # title: How bees get through the winter
    # language: en
    # genre: interview
    # speakers: yes          (no: words carry no speaker, as from local Whisper)
    # min_seconds: 20        (the length range the editor cut for; default 20-60)
    # max_seconds: 60
    # prompt: honey          (optional: a prompt the labels were chosen for)

    A: Welcome back to the show. [pause 1.2] Today my guest keeps bees.
    B: Thanks for having me.
    {why: opens with a surprising claim and closes on the takeaway}
    A: What actually happens inside a hive in January?
    B: ... so the cluster is the whole trick.
    {/}

``A:``/``B:`` at the start of a line begins a speaker turn (a line without one continues the
turn); ``[pause S]`` inserts a silence of about S seconds; ``{why: ...}`` opens a labelled
highlight at the next word and ``{/}`` closes it after the previous word.

Timing model: each word lasts about (syllables x the speaker's syllable time), jittered; words
are separated by short gaps, longer after commas, sentence ends, turns and fillers, with an
occasional hesitation mid-sentence. A few sentence ends are merged with a comma, as Whisper
does with fast speech (never at a turn or a label boundary, so labels stay where an editor put
them). Everything is drawn from a random generator seeded by the set's name: the same script
always gives the same files.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).parent
VOWELS = re.compile(r"[aeiouyаеёиоуыэюя]+", re.I)
FILLERS = {"um", "uh", "er", "erm", "hmm", "mm", "ну", "э", "эм", "типа", "ээ"}
SENTENCE_END = (".", "?", "!", "…")
TOKEN = re.compile(r"\[pause\s+([\d.]+)\]|\{why:\s*([^}]*)\}|\{/\}|(\S+)")
# syllable time (s) per speaker, for English and Russian: a speaker's own pace
SYLLABLE_TIME = {"en": (0.16, 0.21), "ru": (0.12, 0.16)}


@dataclass
class Token:
    text: str
    speaker: str | None
    turn_start: bool = False
    pause_before: float = 0.0
    opens: str | None = None  # a highlight's "why" opening at this word
    closes: bool = False  # a highlight closing after this word


@dataclass
class Script:
    meta: dict[str, str]
    tokens: list[Token] = field(default_factory=list)


def parse(text: str) -> Script:
    meta: dict[str, str] = {}
    tokens: list[Token] = []
    speaker: str | None = None
    pending_pause = 0.0
    pending_why: str | None = None
    new_turn = False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            key, _, value = stripped.lstrip("# ").partition(":")
            meta[key.strip()] = value.strip()
            continue
        turn = re.match(r"^([A-Z]):\s*", stripped)
        if turn:
            speaker = turn.group(1)
            new_turn = True
            stripped = stripped[turn.end() :]
        for m in TOKEN.finditer(stripped):
            pause, why, word = m.groups()
            if pause is not None:
                pending_pause += float(pause)
            elif why is not None:
                if pending_why is not None:
                    raise ValueError(f"highlight opened twice near {why!r}")
                pending_why = why.strip()
            elif word is None:  # {/}
                if not tokens:
                    raise ValueError("a highlight closes before any word")
                tokens[-1].closes = True
            else:
                tokens.append(Token(word, speaker, new_turn, pending_pause, pending_why))
                new_turn, pending_pause, pending_why = False, 0.0, None
    return Script(meta, tokens)


def syllables(word: str) -> int:
    core = re.sub(r"[^\w]", "", word)
    digits = sum(c.isdigit() for c in core)
    return max(1, len(VOWELS.findall(core)) + 2 * digits)


def bare(word: str) -> str:
    return re.sub(r"[^\w]", "", word).lower()


def add_whisper_noise(tokens: list[Token], rng: random.Random) -> None:
    """Merge a few sentences with a comma, as Whisper does in fast speech."""
    for i, tok in enumerate(tokens[:-1]):
        nxt = tokens[i + 1]
        if (
            tok.text.endswith(".")
            and not tok.text.endswith("..")
            and not nxt.turn_start
            and not tok.closes
            and nxt.opens is None
            and nxt.pause_before == 0
            and nxt.text[:1].isupper()
            and nxt.text not in ("I", "I'm", "I've", "I'll", "I'd")
            and rng.random() < 0.06
        ):
            tok.text = tok.text[:-1] + ","
            nxt.text = nxt.text[0].lower() + nxt.text[1:]


def timed(script: Script, name: str) -> tuple[dict, dict]:
    rng = random.Random(zlib.crc32(name.encode()))
    meta = script.meta
    language = meta.get("language", "en")
    add_whisper_noise(script.tokens, rng)
    lo, hi = SYLLABLE_TIME[language]
    pace: dict[str | None, float] = {}
    with_speakers = meta.get("speakers", "yes") == "yes"
    words: list[dict] = []
    highlights: list[dict] = []
    open_label: dict | None = None
    t = round(rng.uniform(0.4, 1.5), 3)
    previous: Token | None = None
    for tok in script.tokens:
        if tok.speaker not in pace:
            pace[tok.speaker] = rng.uniform(lo, hi)
        if previous is not None:
            t += gap(previous, tok, rng)
        t += tok.pause_before * rng.uniform(0.9, 1.1)
        filler = bare(tok.text) in FILLERS
        per_syllable = pace[tok.speaker] * rng.lognormvariate(0, 0.15)
        length = 0.06 + syllables(tok.text) * per_syllable
        if filler:
            length = rng.uniform(0.25, 0.6)
        start, end = round(t, 3), round(t + length, 3)
        words.append(
            {
                "text": tok.text,
                "start": start,
                "end": end,
                "confidence": round(
                    rng.uniform(0.35, 0.7) if filler else min(0.999, rng.betavariate(12, 1)), 3
                ),
                "speaker": tok.speaker if with_speakers else None,
            }
        )
        if tok.opens is not None:
            open_label = {"start": start, "why": tok.opens}
        if tok.closes:
            if open_label is None:
                raise ValueError(f"{name}: a highlight closes at {tok.text!r} but none is open")
            highlights.append({"start": open_label["start"], "end": end, "why": open_label["why"]})
            open_label = None
        t = end
        previous = tok
    if open_label is not None:
        raise ValueError(f"{name}: a highlight is never closed")
    duration = round(t + rng.uniform(0.8, 2.5), 3)
    transcript = {
        "language": language,
        "duration": duration,
        "words": words,
        "provider": "script",
        "source": None,
    }
    labels = {
        "title": meta.get("title", name),
        "genre": meta.get("genre", "talk"),
        "language": language,
        "min_seconds": float(meta.get("min_seconds", 20)),
        "max_seconds": float(meta.get("max_seconds", 60)),
        "prompt": meta.get("prompt") or None,
        "highlights": highlights,
    }
    return transcript, labels


def gap(previous: Token, tok: Token, rng: random.Random) -> float:
    if tok.turn_start:
        return rng.uniform(0.25, 1.0)
    if bare(previous.text) in FILLERS or bare(tok.text) in FILLERS:
        return rng.uniform(0.15, 0.6)
    if previous.text.endswith(SENTENCE_END):
        return rng.uniform(0.3, 0.85)
    if previous.text.endswith((",", ";", ":", "—", "-")):
        return rng.uniform(0.1, 0.4)
    if rng.random() < 0.03:  # a hesitation in the middle of a sentence
        return rng.uniform(0.4, 1.3)
    return max(0.0, rng.gauss(0.05, 0.04))


def sets(root: Path = ROOT) -> list[Path]:
    return sorted(p.parent for p in root.glob("*/*/script.txt"))


def render(folder: Path) -> dict[str, str]:
    script = parse((folder / "script.txt").read_text(encoding="utf-8"))
    transcript, labels = timed(script, folder.name)
    dump = {"transcript.json": transcript, "labels.json": labels}
    return {k: json.dumps(v, indent=1, ensure_ascii=False) + "\n" for k, v in dump.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    parser.add_argument("folders", nargs="*", type=Path, help="sets (default: all)")
    args = parser.parse_args()
    stale = []
    for folder in args.folders or sets():
        for file_name, text in render(folder).items():
            path = folder / file_name
            if args.check:
                if not path.is_file() or path.read_text(encoding="utf-8") != text:
                    stale.append(str(path))
            else:
                path.write_text(text, encoding="utf-8")
    if stale:
        print("out of date (run python datasets/generate.py):", *stale, sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
