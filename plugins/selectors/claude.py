"""Moment selection by Anthropic Claude (the ``anthropic`` SDK) with a forced tool call.

Key: ``providers.claude.api_key`` or ``ANTHROPIC_API_KEY``; base URL: ``providers.claude.base_url``
or ``ANTHROPIC_BASE_URL`` (read by the SDK). The SDK's own retries are off: Kadrio's policy
(``retries``, ``backoff``) decides, with backoff on 429, 5xx and 529 overloaded. The fixed
instructions and the tool carry ``cache_control``, so repeated calls (chunks of a long talk,
many jobs) read them from the prompt cache.
"""

from __future__ import annotations

from json import JSONDecodeError
from typing import Any, ClassVar

from pydantic import Field

from kadrio_core.hookspecs import hookimpl
from kadrio_core.providers import ProviderOptions
from kadrio_core.remote import (
    ApiKeyed,
    Verdict,
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

KEY_ENV = "ANTHROPIC_API_KEY"


class ClaudeOptions(LLMOptions):
    model: str = "claude-sonnet-4-6"
    api_key: str | None = Field(default=None, description=f"default: ${KEY_ENV}")
    base_url: str | None = Field(default=None, description="default: $ANTHROPIC_BASE_URL")


def classify(exc: Exception) -> Verdict | None:
    import anthropic

    if isinstance(exc, anthropic.APITimeoutError):
        return Verdict("retry", "timed out")
    if isinstance(exc, anthropic.APIConnectionError):
        return Verdict("retry", f"network error ({exc})")
    if isinstance(exc, anthropic.APIStatusError):
        detail = first_line(getattr(exc, "message", ""))
        if exc.status_code == 529:
            return Verdict("retry", f"overloaded (HTTP 529: {detail})")
        return status_verdict(exc.status_code, detail, exc.response.headers.get("retry-after"))
    if isinstance(exc, (MalformedReply, anthropic.APIResponseValidationError, JSONDecodeError)):
        return Verdict("retry", f"malformed reply ({exc})")
    return None


def tool_input(message: Any) -> Any:
    for block in getattr(message, "content", None) or []:
        if getattr(block, "type", None) == "tool_use" and getattr(block, "name", None) == TOOL_NAME:
            return block.input
    raise MalformedReply(f"no {TOOL_NAME} call in the answer")


class ClaudeSelector(ApiKeyed, LLMSelector):
    key_env = KEY_ENV
    name = "claude"
    description = "Anthropic Claude picks the moments (sends the transcript text only)"
    Options: ClassVar[type[ProviderOptions]] = ClaudeOptions
    options: ClaudeOptions

    def ask(self, system: str, user: str) -> Any:
        import anthropic

        key = self._key()
        o = self.options
        client = anthropic.Anthropic(
            api_key=key, base_url=o.base_url, max_retries=0, timeout=o.timeout
        )
        tool = {
            "name": TOOL_NAME,
            "description": TOOL_DESCRIPTION,
            "input_schema": SCHEMA,
            "cache_control": {"type": "ephemeral"},
        }

        def call() -> Any:
            message = client.messages.create(
                model=o.model,
                max_tokens=o.max_tokens,
                system=[{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}],
                tools=[tool],
                tool_choice={"type": "tool", "name": TOOL_NAME},
                messages=[{"role": "user", "content": user}],
            )
            data = tool_input(message)
            checked(data)
            return data

        try:
            return with_retries(call, classify, o, f"claude ({o.model})")
        finally:
            client.close()


@hookimpl
def register_selectors(register):  # type: ignore[no-untyped-def]
    register(ClaudeSelector)
