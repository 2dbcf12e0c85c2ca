"""An example Kadrio selector plugin: clips that open with a question and run to its answer.

Kadrio finds this module through the ``kadrio`` entry-point group (see pyproject.toml) and calls
its ``register_selectors`` hook. Everything it uses is Kadrio's public API: the data contracts in
``kadrio_core.models``, the ``Selector`` base class and ``ProviderOptions`` in
``kadrio_core.providers``, and ``hookimpl``.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from kadrio_core.hookspecs import hookimpl
from kadrio_core.models import Moment, SelectionRequest, Transcript, Word
from kadrio_core.providers import Progress, ProviderOptions, Selector

__version__ = "0.1.0"
SENTENCE_END = (".", "?", "!", "…")


class QuestionOptions(ProviderOptions):
    """Read from ``[providers.questions]`` in kadrio.toml; unknown keys are an error."""

    min_question_words: int = Field(default=4, ge=1, description="shorter questions are skipped")


def sentences(words: list[Word]) -> list[list[Word]]:
    out: list[list[Word]] = [[]]
    for w in words:
        out[-1].append(w)
        if w.text.rstrip("\"'»”)").endswith(SENTENCE_END):
            out.append([])
    return [s for s in out if s]


class QuestionSelector(Selector):
    name = "questions"
    description = "clips that open with a question and run to its answer (example plugin)"
    Options: ClassVar[type[ProviderOptions]] = QuestionOptions
    options: QuestionOptions

    def select(
        self, transcript: Transcript, request: SelectionRequest, progress: Progress = lambda _: None
    ) -> list[Moment]:
        sents = sentences([w for w in transcript.words if w.text.strip()])
        found: list[Moment] = []
        for i, first in enumerate(sents):
            long_enough = len(first) >= self.options.min_question_words
            question = first[-1].text.endswith("?") and long_enough
            window = self._window(sents, i, request)
            if window is not None:
                start, end, n = window
                text = " ".join(w.text for w in first)
                found.append(
                    Moment(
                        start=start,
                        end=end,
                        score=min(100.0, 40.0 + 5.0 * n) if question else 20.0,
                        title=text.rstrip("?")[:60] if question else "A stretch of the talk",
                        hook=text[:120],
                        reason=(
                            f"opens with a question and answers it in {n} sentence(s)"
                            if question
                            else "no question here: a plain stretch of sentences"
                        ),
                    )
                )
            progress((i + 1) / len(sents))
        picked: list[Moment] = []
        for m in sorted(found, key=lambda m: (-m.score, m.start)):
            if all(m.end <= p.start or m.start >= p.end for p in picked):
                picked.append(m)
            if len(picked) == request.max_clips:
                break
        return picked

    @staticmethod
    def _window(
        sents: list[list[Word]], i: int, request: SelectionRequest
    ) -> tuple[float, float, int] | None:
        """From sentence i, add sentences until the clip is long enough; None if it overruns."""
        start = sents[i][0].start
        for j in range(i, len(sents)):
            end = sents[j][-1].end
            if end - start > request.max_seconds:
                return None
            if end - start >= request.min_seconds:
                return start, end, j - i
        return None


@hookimpl
def register_selectors(register):  # type: ignore[no-untyped-def]
    register(QuestionSelector)
