"""Fake AssemblyAI, Anthropic, OpenAI-compatible and Resend APIs on top of FakeServer.

They answer like the real services do for the calls Kadrio makes, from the request they were
sent: the fake AssemblyAI times the words of tests/fixtures/talk.txt over the duration of the
WAV it received; the fake LLMs read the transcript lines and the constraints of the prompt and
pick sentence-bounded windows of the asked length.
"""

from __future__ import annotations

import io
import itertools
import json
import re
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .server import FakeServer, Recorded, Reply

TALK = Path(__file__).parent.parent / "fixtures" / "talk.txt"


def _json_error(status: int, message: str) -> Reply:
    return Reply(status, {"error": message})


def script_words(duration: float, text: str | None = None) -> list[dict[str, Any]]:
    """The words of talk.txt over ``duration`` seconds, AssemblyAI-style (ms, speakers A/B)."""
    text = text if text is not None else TALK.read_text()
    paragraphs = [p.split() for p in text.split("\n\n") if p.strip()]
    raw: list[tuple[str, float, float, str]] = []
    t = 0.0
    for index, words in enumerate(paragraphs):
        for word in words:
            length = 0.12 + 0.055 * len(word)
            raw.append((word, t, t + length, "AB"[index % 2]))
            t += length + (0.45 if word.endswith((".", "?", "!")) else 0.08)
        t += 0.5
    scale = max(duration - 1.2, 1.0) / t
    return [
        {
            "text": word,
            "start": int((0.6 + start * scale) * 1000),
            "end": int((0.6 + end * scale) * 1000),
            "confidence": 0.93,
            "speaker": speaker,
        }
        for word, start, end, speaker in raw
    ]


def wav_duration(body: bytes) -> float | None:
    try:
        with wave.open(io.BytesIO(body)) as w:
            return w.getnframes() / w.getframerate()
    except (wave.Error, EOFError):
        return None


class FakeAssemblyAI:
    """POST /v2/upload, POST /v2/transcript, GET and DELETE /v2/transcript/{id}."""

    def __init__(self, key: str = "aai-test-key", polls: int = 1) -> None:
        self.key = key
        self.polls = polls  # answers 'processing' this many times before 'completed'
        self.server = FakeServer()
        self.uploads: dict[str, bytes] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        s = self.server
        s.route("POST", "/v2/upload", self._auth(self._upload))
        s.route("POST", "/v2/transcript", self._auth(self._create))
        s.route("GET", r"/v2/transcript/(?P<id>[\w-]+)", self._auth(self._get))
        s.route("DELETE", r"/v2/transcript/(?P<id>[\w-]+)", self._auth(self._delete))

    @property
    def env(self) -> dict[str, str]:
        return {"ASSEMBLYAI_API_KEY": self.key, "ASSEMBLYAI_BASE_URL": self.server.url}

    def _auth(self, handler: Callable[[Recorded, re.Match[str]], Reply]) -> Any:
        def check(request: Recorded, match: re.Match[str]) -> Reply:
            if request.headers.get("authorization") != self.key:
                return _json_error(401, "Authentication error, API token missing/invalid")
            return handler(request, match)

        return check

    def _upload(self, request: Recorded, _: re.Match[str]) -> Reply:
        upload_id = f"u{next(self._ids)}"
        self.uploads[upload_id] = request.body
        return Reply(200, {"upload_url": f"{self.server.url}/files/{upload_id}"})

    def _create(self, request: Recorded, _: re.Match[str]) -> Reply:
        body = request.json()
        job_id = f"t{next(self._ids)}"
        upload_id = str(body["audio_url"]).rsplit("/", 1)[-1]
        self.jobs[job_id] = {"request": body, "upload": upload_id, "polls": 0}
        return Reply(200, {"id": job_id, "status": "queued", **body})

    def _get(self, _: Recorded, match: re.Match[str]) -> Reply:
        job = self.jobs.get(match["id"])
        if job is None:
            return _json_error(404, "Transcript not found")
        request = job["request"]
        job["polls"] += 1
        if job["polls"] <= self.polls:
            return Reply(200, {"id": match["id"], "status": "processing", **request})
        duration = wav_duration(self.uploads.get(job["upload"], b""))
        if duration is None:
            error = "File does not appear to contain audio."
            return Reply(200, {"id": match["id"], "status": "error", "error": error, **request})
        words = script_words(duration)
        language = request.get("language_code") or "en_us"
        return Reply(
            200,
            {
                **request,
                "id": match["id"],
                "status": "completed",
                "text": " ".join(w["text"] for w in words),
                "words": words,
                "language_code": language,
                "audio_duration": int(duration),
                "confidence": 0.93,
            },
        )

    def _delete(self, _: Recorded, match: re.Match[str]) -> Reply:
        job = self.jobs.pop(match["id"], None)
        if job is None:
            return _json_error(404, "Transcript not found")
        url = job["request"]["audio_url"]
        return Reply(200, {"id": match["id"], "status": "completed", "audio_url": url})


# -- the fake language models -------------------------------------------------------------

_LINE = re.compile(r"^\[(\d+(?:\.\d+)?)\] (?:[A-Z]: )?(.*)$", re.M)


def pick_moments(user: str) -> list[dict[str, Any]]:
    """What a model would answer to Kadrio's prompt: windows of whole lines of the asked length."""
    asked = re.search(r"Pick up to (\d+) moments, each ([\d.]+) to ([\d.]+) seconds", user)
    assert asked, user
    wanted, low, high = int(asked[1]), float(asked[2]), float(asked[3])
    ends_at = re.search(r"(?:ends at|to) ([\d.]+) s[;.]", user)
    lines = [(float(m[1]), m[2]) for m in _LINE.finditer(user)]
    if not lines:
        return []
    last_end = float(ends_at[1]) if ends_at else lines[-1][0] + 3
    starts = [t for t, _ in lines] + [last_end]
    candidates = []
    for i, (start, text) in enumerate(lines):
        for j in range(i + 1, len(starts)):
            length = starts[j] - start
            if length > high:
                break
            if length >= low:
                score = 88 if "?" in text else 55 + (len(text) % 30)
                candidates.append((score, start, starts[j], text))
                break
    picked: list[tuple[int, float, float, str]] = []
    for c in sorted(candidates, key=lambda c: (-c[0], c[1])):
        if all(c[2] <= p[1] or c[1] >= p[2] for p in picked):
            picked.append(c)
        if len(picked) == wanted:
            break
    return [
        {
            "start": start,
            "end": end,
            "title": " ".join(text.split()[:6]),
            "hook": text,
            "reason": "opens with a question" if score > 80 else "one complete thought",
            "hashtags": ["#garden", "#summer tips"],
            "score": score,
        }
        for score, start, end, text in picked
    ]


class FakeClaude:
    """POST /v1/messages, answering with a tool_use block of the forced tool."""

    def __init__(self, key: str = "sk-ant-test-key") -> None:
        self.key = key
        self.server = FakeServer()
        self.server.route("POST", "/v1/messages", self._messages)

    @property
    def env(self) -> dict[str, str]:
        return {"ANTHROPIC_API_KEY": self.key, "ANTHROPIC_BASE_URL": self.server.url}

    @staticmethod
    def key_of(request: Recorded) -> str | None:
        """The key as sent: ``x-api-key``, or ``authorization: Bearer`` (newer SDKs)."""
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        return request.headers.get("x-api-key") or bearer or None

    def _messages(self, request: Recorded, _: re.Match[str]) -> Reply:
        if self.key_of(request) != self.key:
            error = {"type": "authentication_error", "message": "invalid x-api-key"}
            return Reply(401, {"type": "error", "error": error})
        body = request.json()
        user = body["messages"][0]["content"]
        tool = body["tool_choice"]["name"]
        return Reply(200, tool_message(body["model"], tool, {"moments": pick_moments(user)}))


def tool_message(model: str, tool: str, data: Any) -> dict[str, Any]:
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "tool_use", "id": "toolu_fake", "name": tool, "input": data}],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 900,
            "output_tokens": 300,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 700,
        },
    }


def overloaded() -> Reply:
    error = {"type": "overloaded_error", "message": "Overloaded"}
    return Reply(529, {"type": "error", "error": error})


class FakeOpenAI:
    """POST /v1/chat/completions, answering with a function call or JSON content."""

    def __init__(self, key: str | None = None) -> None:
        self.key = key
        self.server = FakeServer()
        self.server.route("POST", "/v1/chat/completions", self._complete)

    @property
    def base_url(self) -> str:
        return f"{self.server.url}/v1"

    def _complete(self, request: Recorded, _: re.Match[str]) -> Reply:
        if self.key and request.headers.get("authorization") != f"Bearer {self.key}":
            return Reply(401, {"error": {"message": "Incorrect API key provided"}})
        body = request.json()
        user = next(m["content"] for m in body["messages"] if m["role"] == "user")
        data = json.dumps({"moments": pick_moments(user)})
        if "tools" in body:
            name = body["tool_choice"]["function"]["name"]
            function = {"name": name, "arguments": data}
            call = {"id": "call_1", "type": "function", "function": function}
            message = {"role": "assistant", "content": None, "tool_calls": [call]}
        else:
            message = {"role": "assistant", "content": data}
        choice = {"index": 0, "message": message, "finish_reason": "stop"}
        return Reply(200, {"id": "chatcmpl-1", "object": "chat.completion", "choices": [choice]})


class FakeResend:
    """POST /emails: one id per idempotency key, like Resend."""

    def __init__(self, key: str = "re_test_key") -> None:
        self.key = key
        self.server = FakeServer()
        self.sent: dict[str, str] = {}
        self.server.route("POST", "/emails", self._emails)

    @property
    def env(self) -> dict[str, str]:
        return {"RESEND_API_KEY": self.key, "RESEND_API_URL": self.server.url}

    def _emails(self, request: Recorded, _: re.Match[str]) -> Reply:
        if request.headers.get("authorization") != f"Bearer {self.key}":
            return Reply(403, {"statusCode": 403, "name": "invalid_api_key", "message": "bad key"})
        key = request.headers.get("idempotency-key") or f"none-{len(self.sent)}"
        email_id = self.sent.setdefault(key, f"email-{len(self.sent) + 1}")
        return Reply(200, {"id": email_id})
