"""Word-level helpers shared by selectors and the pipeline."""

from __future__ import annotations

import bisect

from .models import Moment, Word


def snap_to_words(moment: Moment, words: list[Word], duration: float) -> Moment | None:
    """Move a moment's bounds off the middle of words, keeping a little lead-in and tail.

    A start inside a word moves back to that word's start; an end inside a word moves forward
    to that word's end. Returns None when no word lies inside the moment.
    """
    if not words:
        return moment if moment.end <= duration or duration == 0 else None
    starts = [w.start for w in words]
    inside = [w for w in words if w.end > moment.start and w.start < moment.end]
    if not inside:
        return None
    first, last = inside[0], inside[-1]
    start = min(moment.start, first.start)
    end = max(moment.end, last.end)
    i = bisect.bisect_left(starts, first.start)
    previous_end = words[i - 1].end if i > 0 else 0.0
    j = bisect.bisect_right(starts, last.start)
    next_start = words[j].start if j < len(words) else max(duration, last.end)
    start = max(start, previous_end, 0.0)
    end = min(end, next_start) if next_start > last.end else last.end
    if duration:
        end = min(end, duration)
    return moment.model_copy(update={"start": round(start, 3), "end": round(end, 3)})
