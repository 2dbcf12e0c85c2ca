"""How a plugin author tests a selector: transcripts built in code, then Kadrio's own registry."""

from __future__ import annotations

import pytest
from kadrio_example_selector import QuestionSelector

from kadrio_core.models import SelectionRequest, Transcript, Word
from kadrio_core.plugins import get_plugin_manager, registry


def transcript(text: str, step: float = 0.4) -> Transcript:
    words = [Word(text=t, start=i * step, end=i * step + 0.3) for i, t in enumerate(text.split())]
    return Transcript(language="en", duration=len(words) * step + 1, words=words, provider="test")


TALK = transcript(
    "Hello and welcome. Today is about soil. "
    "Why does straw keep the ground wet? It shades the soil and slows evaporation a lot. "
    "That is all for now. Thanks."
)


def test_a_clip_opens_on_the_question_and_ends_on_its_answer() -> None:
    request = SelectionRequest(max_clips=1, min_seconds=3, max_seconds=10)
    (moment,) = QuestionSelector().select(TALK, request)
    first = next(w for w in TALK.words if w.start >= moment.start)
    last = [w for w in TALK.words if w.end <= moment.end][-1]
    assert first.text == "Why" and last.text == "lot."
    assert moment.reason.startswith("opens with a question")


def test_options_are_validated() -> None:
    with pytest.raises(ValueError, match="min_question_words"):
        QuestionSelector.Options(min_question_words=0)


def test_kadrio_finds_it_through_the_entry_point() -> None:
    """Installed, the plugin is loaded by Kadrio's plugin manager like a built-in."""
    get_plugin_manager()
    assert registry("selector").get("questions") is QuestionSelector
