"""The local selector on a real transcript of the fixture talk and on edge cases."""

from __future__ import annotations

import itertools

import pytest

from kadrio_core.models import SelectionRequest, Transcript, Word
from kadrio_core.plugins import registry
from kadrio_core.settings import Settings
from kadrio_plugins.selectors.local import SENTENCE_END

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


def timed(text: str, speaker_turns: dict[int, str] | None = None, step: float = 0.4) -> list[Word]:
    """Words at a steady pace; ``[pause]`` adds two seconds of silence before the next word."""
    words: list[Word] = []
    t = 0.0
    speaker = None
    for token in text.split():
        if token == "[pause]":
            t += 2.0
            continue
        speaker = (speaker_turns or {}).get(len(words), speaker)
        words.append(Word(text=token, start=round(t, 3), end=round(t + 0.3, 3), speaker=speaker))
        t += step
    return words


def talk_of(words: list[Word], language: str = "en") -> Transcript:
    return Transcript(language=language, duration=words[-1].end + 1, words=words, provider="t")


def local_with(**options: object):  # type: ignore[no-untyped-def]
    return registry("selector").create("local", Settings(providers={"local": options}))


def test_fillers_and_long_pauses_become_cuts() -> None:
    text = (
        "Why do bees dance in the hive? Well, um, a bee that found flowers tells the others. "
        "She walks in a figure of eight, uh, and the angle points to the food. "
        "The longer she wiggles [pause] the further away the flowers are. That is the trick."
    )
    words = timed(text)
    request = SelectionRequest(max_clips=1, min_seconds=16, max_seconds=40)
    (plain,) = selector().select(talk_of(words), request)
    assert plain.cuts == []  # off unless asked for
    (m,) = local_with(cut_fillers=True, max_pause=1.0).select(talk_of(words), request)
    assert len(m.cuts) == 3  # "um,", "uh," and the two-second pause
    cut_words = [w.text for w in words if any(a <= w.start and w.end <= b for a, b in m.cuts)]
    assert cut_words == ["um,", "uh,"]
    for a, b in m.cuts:
        assert m.start < a < b < m.end
        # a cut never clips a word that stays
        assert not any(w.start < a < w.end or w.start < b < w.end for w in words)
    pause = next((a, b) for a, b in m.cuts if b - a > 1)
    assert (pause[0] - 1.0) >= 0.5 and pause[1] - pause[0] < 2.0  # some silence is kept


def test_russian_fillers_only_as_asides() -> None:
    words = timed(
        "Почему хлеб черствеет так быстро? Ну, всё дело в дрожжах и во времени брожения. "
        "Это типа данных не касается, ну а закваска, типа, живёт долго и делает хлеб кислым. "
        "Поэтому хороший хлеб лежит неделю."
    )
    (m,) = local_with(cut_fillers=True).select(
        talk_of(words, "ru"), SelectionRequest(max_clips=1, min_seconds=10, max_seconds=40)
    )
    cut = [w.text for w in words if any(a <= w.start and w.end <= b for a, b in m.cuts)]
    assert cut == ["Ну,", "типа,"]  # "типа данных" and "ну а" are ordinary words here


def test_a_dangling_start_is_avoided_in_russian_too() -> None:
    body = "хлеб на закваске лежит неделю, потому что кислота не даёт расти плесени."
    words = timed(f"Это {body} Закваска {body}")
    (m,) = selector().select(
        talk_of(words, "ru"), SelectionRequest(max_clips=1, min_seconds=4, max_seconds=8)
    )
    assert next(w.text for w in words if w.start >= m.start) == "Закваска"


def test_an_answer_without_its_question_is_penalised() -> None:
    question = "A: How long should dough rest before baking?"
    answer = "Yes, at least twelve hours, because the acid needs time to form and keep it fresh."
    text = f"{question} B: {answer} A: Good. B: Twelve hours is the rule for every loaf we bake."
    turns: dict[int, str] = {}
    tokens = []
    for token in text.split():
        if token in ("A:", "B:"):
            turns[len(tokens)] = token[0]
        else:
            tokens.append(token)
    words = timed(" ".join(tokens), turns)
    candidates = {}
    for m in selector().select(
        talk_of(words), SelectionRequest(max_clips=3, min_seconds=3, max_seconds=12)
    ):
        candidates[next(w.text for w in words if w.start >= m.start)] = m
    assert "How" in candidates  # the question and its answer together
    assert "Yes," not in candidates


def test_housekeeping_is_not_a_clip() -> None:
    text = (
        "Hi everyone, can you see my screen? Thanks for joining, welcome. "
        "Let me share my screen and find the next slide. "
        "Rust in the pipes costs a city ten percent of its clean water every year. "
        "Old pipes leak quietly for decades, and the bill arrives in every home."
    )
    (m,) = selector().select(
        talk_of(timed(text)), SelectionRequest(max_clips=1, min_seconds=5, max_seconds=15)
    )
    assert next(w.text for w in timed(text) if w.start >= m.start) in ("Rust", "Old")
    assert "housekeeping" not in m.reason


def test_scores_are_explained_and_titles_summarise() -> None:
    t = spoken_transcript()
    for m in selector().select(t, SelectionRequest(max_clips=3, min_seconds=10, max_seconds=25)):
        assert m.reason.startswith(f"score {m.score:.0f}/100 from a base of 50: ")
        assert "(+" in m.reason or "(-" in m.reason  # each feature with its points
        first_sentence = " ".join(w.text for w in t.words if m.start <= w.start < m.end)
        first_sentence = first_sentence.split(".")[0].split("?")[0]
        assert m.title.lower() not in first_sentence.lower() or len(m.title.split()) <= 3
        assert len(m.title) <= 60 and m.hashtags


def test_diversity_spreads_picks_over_topics() -> None:
    bees = "Why do bees need so much honey in winter? The bees eat honey to keep the hive warm."
    bread = "Why does bread need so much time in the oven? The bread bakes slowly to keep it moist."
    words = timed(" ".join([bees, "[pause] Okay. [pause]", bees, "[pause] Right. [pause]", bread]))
    request = SelectionRequest(max_clips=2, min_seconds=5, max_seconds=9)
    spread = local_with(diversity=60).select(talk_of(words), request)
    same = local_with(diversity=0).select(talk_of(words), request)

    def topics(moments: list) -> set[str]:  # type: ignore[type-arg]
        texts = [" ".join(w.text for w in words if m.start <= w.start < m.end) for m in moments]
        return {"bread" if "bread" in text else "bees" for text in texts}

    assert topics(same) == {"bees"}
    assert topics(spread) == {"bees", "bread"}


def test_moments_can_be_listed_in_timeline_order() -> None:
    from kadrio_core.pipeline import Pipeline

    t = spoken_transcript()
    by_score = Pipeline(Settings()).select(
        t, SelectionRequest(max_clips=3, min_seconds=10, max_seconds=25)
    )
    by_time = Pipeline(Settings()).select(
        t, SelectionRequest(max_clips=3, min_seconds=10, max_seconds=25, order="time")
    )
    assert len(by_time) >= 2
    assert sorted(by_time, key=lambda m: m.start) == by_time
    assert sorted(by_score, key=lambda m: m.start) == by_time  # the same picks, reordered
