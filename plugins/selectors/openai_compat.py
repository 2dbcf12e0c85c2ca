"""Moment selection by any OpenAI-compatible chat-completions endpoint, over plain httpx.

For local LLMs: Ollama (``http://127.0.0.1:11434/v1``), vLLM, llama.cpp's server, LM Studio, or a
hosted endpoint. Base URL, model and an optional key are settings
(``providers.openai_compat.base_url / model / api_key``). The answer is forced through a
function call (``mode = "tools"``, the default) or a JSON schema response format
(``mode = "json_schema"``) for servers without tool calling.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar, Literal

from pydantic import Field

from kadrio_core.hookspecs import hookimpl
from kadrio_core.providers import ProviderOptions
from kadrio_core.remote import (
    Verdict,
    configured_secret,
    first_line,
    status_verdict,
    with_retries,
)

from .llm import (
    SCHEMA,
    TOOL_DESCRIPTION,
    TOOL_NAME,
    LLMOptions,
    LLMSelector,
    MalformedReply,
    checked,
)


class OpenAICompatOptions(LLMOptions):
    base_url: str = Field(default="http://127.0.0.1:11434/v1", description="ends before /chat")
    model: str = "llama3.1"
    api_key: str | None = Field(default=None, description="sent as a Bearer token when set")
    mode: Literal["tools", "json_schema"] = "tools"
    temperature: float = Field(default=0.2, ge=0, le=2)


class HTTPStatusError(Exception):
    def __init__(self, status: int, detail: str, retry_after: str | None) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status, self.detail, self.retry_after = status, detail, retry_after


def classify(exc: Exception) -> Verdict | None:
    import httpx

    if isinstance(exc, httpx.TimeoutException):
        return Verdict("retry", "timed out")
    if isinstance(exc, httpx.TransportError):
        return Verdict("retry", f"network error ({type(exc).__name__}: {exc})")
    if isinstance(exc, HTTPStatusError):
        return status_verdict(exc.status, exc.detail, exc.retry_after)
    if isinstance(exc, (json.JSONDecodeError, MalformedReply)):
        return Verdict("retry", f"malformed reply ({first_line(exc)})")
    return None


def error_detail(response: Any) -> str:
    try:
        error = response.json().get("error")
        return first_line(error.get("message") if isinstance(error, dict) else error)
    except (ValueError, AttributeError):
        return first_line(response.text)


def reply_data(body: Any) -> Any:
    """The moments JSON of a chat-completion: a function call's arguments or the content."""
    try:
        message = body["choices"][0]["message"]
    except (KeyError, IndexError, TypeError):
        raise MalformedReply("no choices[0].message in the answer") from None
    if not isinstance(message, dict):
        raise MalformedReply("choices[0].message is not an object")
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        if function.get("name") == TOOL_NAME:
            arguments = function.get("arguments")
            return json.loads(arguments) if isinstance(arguments, str) else arguments
    content = message.get("content")
    if isinstance(content, str) and content.strip():
        text = content.strip().removeprefix("```json").removeprefix("```").removesuffix("```")
        return json.loads(text)
    raise MalformedReply(f"no {TOOL_NAME} call and no JSON content in the answer")


class OpenAICompatSelector(LLMSelector):
    name = "openai_compat"
    description = "any OpenAI-compatible chat endpoint (Ollama, vLLM, llama.cpp) picks the moments"
    Options: ClassVar[type[ProviderOptions]] = OpenAICompatOptions
    options: OpenAICompatOptions

    @classmethod
    def credentials_status(cls) -> str | None:
        return configured_secret(cls.name, "api_key", optional=True)  # local servers need none

    def request_body(self, system: str, user: str) -> dict[str, Any]:
        o = self.options
        body: dict[str, Any] = {
            "model": o.model,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": user},
            ],
            "temperature": o.temperature,
            "max_tokens": o.max_tokens,
        }
        if o.mode == "tools":
            function = {"name": TOOL_NAME, "description": TOOL_DESCRIPTION, "parameters": SCHEMA}
            body["tools"] = [{"type": "function", "function": function}]
            body["tool_choice"] = {"type": "function", "function": {"name": TOOL_NAME}}
        else:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": TOOL_NAME, "schema": SCHEMA, "strict": True},
            }
        return body

    def ask(self, system: str, user: str) -> Any:
        import httpx

        o = self.options
        headers = {"authorization": f"Bearer {o.api_key}"} if o.api_key else {}
        body = self.request_body(system, user)
        with httpx.Client(base_url=o.base_url, timeout=o.timeout, headers=headers) as http:

            def call() -> Any:
                response = http.post("/chat/completions", json=body)
                if response.status_code >= 400:
                    raise HTTPStatusError(
                        response.status_code,
                        error_detail(response),
                        response.headers.get("retry-after"),
                    )
                data = reply_data(response.json())
                checked(data)
                return data

            return with_retries(call, classify, o, f"openai_compat ({o.model} at {o.base_url})")


@hookimpl
def register_selectors(register):  # type: ignore[no-untyped-def]
    register(OpenAICompatSelector)
