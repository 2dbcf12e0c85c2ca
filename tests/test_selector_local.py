"""The local selector on a real transcript of the fixture talk and on edge cases."""

from __future__ import annotations

import itertools

import pytest
from kadrio_plugins.selectors.local import SENTENCE_END

from kadrio_core.models import SelectionRequest, Transcript, Word
from kadrio_core.plugins import registry
from kadrio_core.settings import Settings

from .conftest import FIXTURES


def spoken_transcript() -> Transcript:
    """The fixture talk's text with a steady speaking rate: 2.5 words a second."""
    text = (FIXTURES / "talk.txt").read_text().split()
    words = [Word(text=t, start=i * 0.4, end=i * 0.4 + 0.32) for i, t in enumerate(text)]
    return Transcript(language="en", duration=len(text) * 0.4 + 1, words=words, provider="test")


def selector():
    return registry("selector").create("local", Settings())


def test_moments_are_sentence_bounded_sorted_and_disjoint() -> None:
    t = spoken_transcript()
    request = SelectionRequest(max_clips=3, min_seconds=15, max_seconds=30)
    moments = selector().select(t, request)
    assert 1 <= len(moments) <= 3
    assert [m.score for m in moments] == sorted((m.score for m in moments), reverse=True)
    spans = sorted((m.start, m.end) for m in moments)
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert end <= start
    for m in moments:
        assert 15 <= m.duration <= 30
        assert 0 <= m.score <= 100 and m.title and m.reason.startswith("score ")
        inside = [w for w in t.words if m.start <= w.start and w.end <= m.end]
        assert inside[-1].text.endswith(SENTENCE_END)
        before = [w for w in t.words if w.end <= m.start + 1e-6]
        assert not before or before[-1].text.endswith(SENTENCE_END)
        assert m.title != inside[0].text  # a summary of keywords, not the first word


def test_selection_is_deterministic() -> None:
    t = spoken_transcript()
    request = SelectionRequest(max_clips=4, min_seconds=10, max_seconds=25)
    assert selector().select(t, request) == selector().select(t, request)


def test_a_question_opening_is_preferred() -> None:
    """Two halves alike but for their first sentence: the question wins."""
    half = "the soil stays cool under straw and the roots grow deep and strong all summer."
    question = "Why does mulch keep water in?"
    texts = ["Mulch keeps water in.", *half.split(), *question.split(), *half.split()]
    texts = " ".join(texts).split()
    words = [Word(text=x, start=i * 0.4, end=i * 0.4 + 0.3) for i, x in enumerate(texts)]
    t = Transcript(language="en", duration=len(texts) * 0.4, words=words, provider="test")
    (m,) = selector().select(t, SelectionRequest(max_clips=1, min_seconds=5, max_seconds=10))
    assert next(w.text for w in words if w.start >= m.start) == "Why"
    assert "opens with a question" in m.reason


def test_prompt_biases_the_choice() -> None:
    t = spoken_transcript()
    request = SelectionRequest(max_clips=1, min_seconds=10, max_seconds=20, prompt="straw leaves")
    (m,) = selector().select(t, request)
    text = " ".join(w.text for w in t.words if m.start <= w.start < m.end)
    assert "straw" in text and "matches the prompt" in m.reason


def test_unpunctuated_speech_still_gives_moments() -> None:
    words = [Word(text="word", start=i * 0.5, end=i * 0.5 + 0.4) for i in range(200)]
    t = Transcript(language="en", duration=100, words=words, provider="test")
    moments = selector().select(t, SelectionRequest(max_clips=2, min_seconds=20, max_seconds=40))
    assert len(moments) == 2
    assert "pause" in moments[0].reason


@pytest.mark.parametrize("n", [0, 3])
def test_too_little_speech_gives_no_moments(n: int) -> None:
    words = [Word(text="Hi.", start=i, end=i + 0.5) for i in range(n)]
    t = Transcript(language="en", duration=10, words=words, provider="test")
    assert selector().select(t, SelectionRequest(min_seconds=20, max_seconds=40)) == []
