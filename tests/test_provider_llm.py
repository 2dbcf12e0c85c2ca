"""The LLM selectors: claude (the real `anthropic` SDK) and openai_compat (httpx) against fakes."""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

import pytest

from kadrio_core.errors import ProviderError, ProviderUnavailable
from kadrio_core.models import SelectionRequest, SourceRef, Transcript, Word
from kadrio_core.pipeline import Pipeline
from kadrio_core.plugins import registry
from kadrio_core.settings import Settings

from .conftest import FIXTURES
from .fakes.providers import FakeClaude, FakeOpenAI, overloaded, script_words, tool_message
from .fakes.server import Recorded, Reply

FAST = {"backoff": 0.01, "max_backoff": 0.05, "retries": 2, "timeout": 2}
REQUEST = SelectionRequest(max_clips=3, min_seconds=8, max_seconds=15, prompt="watering tips")
LINE = re.compile(r"^\[\d+\.\d\] (?:[AB]: )?\S.*$")
EMAIL = "ann.smith@example.org"
TALK = (FIXTURES / "talk.txt").read_text()


def transcript(duration: float = 78.0, repeat: int = 1) -> Transcript:
    text = "\n\n".join([TALK] * repeat)
    words = [
        Word(
            text=w["text"],
            start=w["start"] / 1000,
            end=w["end"] / 1000,
            confidence=w["confidence"],
            speaker=w["speaker"],
        )
        for w in script_words(duration, text)
    ]
    source = SourceRef(name=f"{EMAIL} private interview.mp4", size=1, fingerprint="f" * 24)
    return Transcript(language="en", duration=duration, words=words, provider="fake", source=source)


@pytest.fixture
def claude(fake_claude: FakeClaude, monkeypatch: pytest.MonkeyPatch) -> FakeClaude:
    for name, value in fake_claude.env.items():
        monkeypatch.setenv(name, value)
    return fake_claude


def selector(name: str = "claude", **options: Any):  # type: ignore[no-untyped-def]
    defaults: dict[str, Any] = {"model": "claude-test-model"} if name == "claude" else {}
    settings = Settings(providers={name: {**FAST, **defaults, **options}})
    return registry("selector").create(name, settings)


def assert_good_moments(moments: list, t: Transcript, request: SelectionRequest) -> None:
    assert 1 <= len(moments) <= request.max_clips
    starts = {w.start for w in t.words}
    ends = {w.end for w in t.words}
    for m in moments:
        assert 0 <= m.start < m.end <= t.duration
        assert request.min_seconds * 0.85 <= m.duration <= request.max_seconds * 1.15
        assert m.start in starts or not any(w.start < m.start < w.end for w in t.words)
        assert m.end in ends or not any(w.start < m.end < w.end for w in t.words)
        assert m.title and m.hook and m.reason and 0 <= m.score <= 100
        assert m.hashtags and all(re.fullmatch(r"#\w+", h) for h in m.hashtags)
    assert [m.score for m in moments] == sorted((m.score for m in moments), reverse=True)
    spans = sorted((m.start, m.end) for m in moments)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))


# -- claude ---------------------------------------------------------------------------------


def test_claude_picks_validated_snapped_moments(claude: FakeClaude) -> None:
    t = transcript()
    moments = selector().select(t, REQUEST)
    assert_good_moments(moments, t, REQUEST)
    assert "#summertips" in moments[0].hashtags  # '#summer tips' from the model, normalised
    assert moments[0].score == 88  # the question ("So which plants should you grow?") wins
    assert moments[0].title.startswith("So which plants")


def test_claude_is_sent_the_transcript_text_only(claude: FakeClaude) -> None:
    t = transcript()
    selector().select(t, REQUEST)
    (call,) = claude.server.calls("POST", "/v1/messages")
    assert claude.key_of(call) == claude.key
    body = call.json()
    assert set(body) == {
        "model",
        "max_tokens",
        "system",
        "tools",
        "tool_choice",
        "messages",
    }
    assert body["model"] == "claude-test-model"
    assert body["tool_choice"] == {"type": "tool", "name": "report_moments"}
    assert body["tools"][0]["input_schema"]["required"] == ["moments"]
    # the fixed instructions are cached
    (system,) = body["system"]
    assert system["cache_control"] == {"type": "ephemeral"}
    assert body["tools"][0]["cache_control"] == {"type": "ephemeral"}
    (message,) = body["messages"]
    user = message["content"]
    assert message["role"] == "user" and isinstance(user, str)
    head, lines = user.split("\n\nTranscript:\n")
    assert "watering tips" in head  # the user's prompt
    assert all(LINE.match(line) for line in lines.splitlines())
    assert " ".join(re.sub(r"^\[[\d.]+\] (?:[AB]: )?", "", x) for x in lines.splitlines()) == t.text
    raw = call.text
    for private in (EMAIL, "private interview", "mp4", "/tmp", "fingerprint", "f" * 24):
        assert private not in raw


def test_claude_retries_overloaded_and_rate_limits(claude: FakeClaude) -> None:
    claude.server.script(
        "POST",
        "/v1/messages",
        overloaded(),
        Reply(429, {"type": "error"}, headers={"retry-after": "0"}),
    )
    assert selector().select(transcript(), REQUEST)
    assert len(claude.server.calls("POST", "/v1/messages")) == 3


@pytest.mark.parametrize(
    "reply, why",
    [
        (overloaded(), "overloaded"),
        (Reply(500, {"type": "error"}), "HTTP 500"),
        (Reply(429, {"type": "error"}), "HTTP 429"),
        (Reply(200, delay=1.0), "timed out"),
        (Reply.malformed(), "malformed"),
    ],
    ids=["529", "500", "429", "timeout", "malformed-json"],
)
def test_claude_outage_is_unavailable_after_retries(
    claude: FakeClaude, reply: Reply, why: str
) -> None:
    claude.server.script("POST", "/v1/messages", reply, reply, reply)
    with pytest.raises(ProviderUnavailable, match=why):
        selector(timeout=0.3).select(transcript(), REQUEST)
    assert len(claude.server.calls("POST", "/v1/messages")) == 3


def test_claude_invalid_key_is_an_immediate_error(claude: FakeClaude) -> None:
    with pytest.raises(ProviderError, match="invalid or unauthorised API key") as caught:
        selector(api_key="sk-wrong").select(transcript(), REQUEST)
    assert not isinstance(caught.value, ProviderUnavailable)
    assert len(claude.server.requests) == 1


def test_an_answer_without_the_tool_call_is_asked_again(claude: FakeClaude) -> None:
    text_only = tool_message("m", "report_moments", {})
    text_only["content"] = [{"type": "text", "text": "Here are some moments..."}]
    claude.server.script("POST", "/v1/messages", Reply(200, text_only))
    assert selector().select(transcript(), REQUEST)
    assert len(claude.server.requests) == 2


def test_impossible_moments_are_dropped_and_bounds_snapped(claude: FakeClaude) -> None:
    t = transcript()
    mid = next(w for w in t.words if w.end - w.start > 0.3 and w.start > 20)
    good = {"title": "ok", "hook": "h", "reason": "r", "hashtags": ["#a"], "score": 70}
    answer = {
        "moments": [
            {**good, "start": 30.0, "end": 20.0},  # inverted
            {**good, "start": 500.0, "end": 510.0},  # after the end of the talk
            {**good, "start": 1.0, "end": 70.0},  # far too long
            {**good, "start": 40.0, "end": 42.0},  # far too short
            {**good, "start": "soon", "end": 12.0},  # not a number
            {**good, "start": (mid.start + mid.end) / 2, "end": mid.start + 11.0},  # mid-word
        ]
    }
    answer_tool = tool_message("m", "report_moments", answer)
    claude.server.script("POST", "/v1/messages", Reply(200, answer_tool))
    (moment,) = selector().select(t, REQUEST)
    assert moment.start == mid.start  # moved back to the start of the word it cut
    assert not any(w.start < moment.end < w.end for w in t.words)


def test_a_two_and_a_half_hour_talk_is_chunked_and_merged(claude: FakeClaude) -> None:
    t = transcript(duration=9000.0, repeat=60)
    request = SelectionRequest(max_clips=8, min_seconds=20, max_seconds=60)
    answer = claude.server.routes[0].handler

    def later_parts_score_higher(call: Recorded, match: re.Match[str]) -> Reply:
        reply = answer(call, match)
        part = re.search(r"part (\d+) of", call.json()["messages"][0]["content"])
        for moment in reply.json["content"][0]["input"]["moments"]:
            moment["score"] += int(part[1]) if part else 0
        return reply

    claude.server.routes[0].handler = later_parts_score_higher
    moments = selector(chunk_seconds=1800, overlap_seconds=120).select(t, request)
    calls = claude.server.calls("POST", "/v1/messages")
    assert len(calls) == 6  # 9000 s in 1800 s chunks that overlap by 120 s
    ranges = []
    for call in calls:
        body = call.json()
        assert body["system"][0]["cache_control"] == {"type": "ephemeral"}
        assert body["system"][0]["text"] == calls[0].json()["system"][0]["text"]
        user = body["messages"][0]["content"]
        times = [float(x) for x in re.findall(r"^\[([\d.]+)\]", user, re.M)]
        assert times[-1] - times[0] <= 1800
        ranges.append((times[0], times[-1]))
        assert f"of {len(calls)} of the talk" in user
    assert ranges[0][0] < 2
    assert ranges[-1][1] > 8990 - 15
    for (_, end), (start, _) in itertools.pairwise(ranges):
        assert end - 180 < start < end - 100  # about 120 s of overlap, whole lines
    assert_good_moments(moments, t, request)
    assert len(moments) == 8
    assert moments[0].start > 7200  # the best moments come from the last part
    assert moments[0].score == 88 + len(calls)


def test_claude_falls_back_to_the_next_selector(claude: FakeClaude) -> None:
    claude.server.script("POST", "/v1/messages", *[overloaded()] * 3)
    settings = Settings(selector="claude,local", providers={"claude": FAST})
    pipeline = Pipeline(settings)
    moments = pipeline.select(transcript(), REQUEST)
    assert moments and pipeline.used["selector"] == "local"
    assert [(a.provider, a.ok) for a in pipeline.attempts] == [("claude", False), ("local", True)]
    assert "overloaded" in (pipeline.attempts[0].error or "")


# -- openai_compat --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["tools", "json_schema"])
def test_openai_compat_picks_moments(fake_openai: FakeOpenAI, mode: str) -> None:
    t = transcript()
    chosen = selector(
        "openai_compat",
        base_url=fake_openai.base_url,
        model="qwen2.5:7b",
        api_key=fake_openai.key,
        mode=mode,
    )
    moments = chosen.select(t, REQUEST)
    assert_good_moments(moments, t, REQUEST)
    (call,) = fake_openai.server.calls("POST", "/v1/chat/completions")
    assert call.headers["authorization"] == f"Bearer {fake_openai.key}"
    body = call.json()
    assert body["model"] == "qwen2.5:7b"
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    if mode == "tools":
        assert body["tool_choice"]["function"]["name"] == "report_moments"
        assert body["tools"][0]["function"]["parameters"]["required"] == ["moments"]
    else:
        assert body["response_format"]["type"] == "json_schema" and "tools" not in body
    assert EMAIL not in call.text and "mp4" not in call.text


@pytest.mark.parametrize(
    "reply, error, why",
    [
        (Reply(401, {"error": {"message": "Incorrect API key"}}), ProviderError, "API key"),
        (Reply(503, {"error": "loading model"}), ProviderUnavailable, "HTTP 503"),
        (Reply.malformed(), ProviderUnavailable, "malformed"),
        (Reply(200, {"choices": []}), ProviderUnavailable, "malformed"),
    ],
    ids=["401", "503", "malformed-json", "no-choices"],
)
def test_openai_compat_errors(
    fake_openai: FakeOpenAI, reply: Reply, error: type[Exception], why: str
) -> None:
    fake_openai.server.script("POST", "/v1/chat/completions", reply, reply, reply)
    chosen = selector("openai_compat", base_url=fake_openai.base_url, api_key=fake_openai.key)
    with pytest.raises(error, match=why) as caught:
        chosen.select(transcript(), REQUEST)
    calls = len(fake_openai.server.requests)
    if error is ProviderError:
        assert not isinstance(caught.value, ProviderUnavailable) and calls == 1
    else:
        assert calls == 3


def test_openai_compat_reads_json_in_a_code_fence(fake_openai: FakeOpenAI) -> None:
    moments = {"moments": [{"start": 0.0, "end": 12.0, "title": "t", "hook": "h", "score": 50}]}
    content = "```json\n" + json.dumps(moments) + "\n```"
    reply = {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}
    fake_openai.server.script("POST", "/v1/chat/completions", Reply(200, reply))
    chosen = selector("openai_compat", base_url=fake_openai.base_url, api_key=fake_openai.key)
    (moment,) = chosen.select(transcript(), REQUEST)
    assert moment.title == "t" and moment.start < 1.0
