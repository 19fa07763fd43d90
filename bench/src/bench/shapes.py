"""The request bodies the harness sends, and how a streamed answer's events are read.

`sdk` is what an OpenAI SDK client sends (the headline workload): `model`, `messages`,
`max_tokens`, `temperature`, `stream` (with `stream_options.include_usage`, which the SDK
offers, so that every answer's token count can be checked) and a `seed` — no `top_k`, no
`top_p`: whatever a server does with omitted sampling fields is what most users get. `tuned`
adds `top_k` 40 and `top_p` 0.95. `completions` is the harness's earlier request (streamed
`/v1/completions` with a prompt, `top_k` 40, `top_p` 0.95), kept so that figures compare
with the runs before it. `sdk-completions` is `sdk`'s sampling with a prompt.

Every shape also carries the target's end-of-generation control (`ignore_eos`, or a logit
bias for llama-cpp-python's server) so that every target generates the same number of tokens:
it changes no sampler, only which tokens may end the answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TUNED_SAMPLING = {"top_k": 40, "top_p": 0.95}
TEMPERATURE = 0.8


@dataclass(frozen=True)
class Shape:
    name: str
    chat: bool  # /v1/chat/completions with messages, else /v1/completions with a prompt
    sampling: tuple[tuple[str, Any], ...] = ()

    @property
    def path(self) -> str:
        return "/v1/chat/completions" if self.chat else "/v1/completions"


SHAPES: dict[str, Shape] = {
    "sdk": Shape("sdk", chat=True),
    "tuned": Shape("tuned", chat=True, sampling=tuple(TUNED_SAMPLING.items())),
    "completions": Shape("completions", chat=False, sampling=tuple(TUNED_SAMPLING.items())),
    # The sdk request's sampling on /v1/completions: the conversation workload sends the
    # transcript itself, so that every target reads the same tokens.
    "sdk-completions": Shape("sdk-completions", chat=False),
    # Diagnostic: `tuned` with presence_penalty 0 sent, which keeps llm-server from adding its
    # base-model chat repetition penalty (llm-server/README.md); llama-server's default is 0.
    "tuned-no-penalty": Shape(
        "tuned-no-penalty", chat=True, sampling=(*TUNED_SAMPLING.items(), ("presence_penalty", 0))
    ),
}


def request_body(
    shape: Shape,
    content: str | list[dict[str, str]],
    max_tokens: int,
    seed: int,
    extra: dict[str, Any],
) -> dict[str, Any]:
    """The JSON body: `content` is the prompt (completions) or the user's message / the whole
    message list (chat)."""
    body: dict[str, Any] = {"model": "default", "max_tokens": max_tokens}
    if shape.chat:
        messages = content if isinstance(content, list) else [{"role": "user", "content": content}]
        body["messages"] = messages
    else:
        if not isinstance(content, str):
            raise TypeError("a completions request takes a prompt string")
        body["prompt"] = content
    body.update(
        temperature=TEMPERATURE,
        stream=True,
        stream_options={"include_usage": True},
        seed=seed,
        **dict(shape.sampling),
        **extra,
    )
    return body


@dataclass
class StreamState:
    """What a stream said, event by event: the text, the content events' count, the finish
    reason, and the usage / llama-server timings when the server sends them."""

    text: str = ""
    content_events: int = 0
    finish_reason: str | None = None
    completion_tokens: int | None = None
    prompt_tokens: int | None = None
    cached_tokens: int | None = None  # prompt tokens the server did not recompute
    error: str | None = None


def read_event(state: StreamState, event: dict[str, Any]) -> bool:
    """Folds one parsed `data:` event into `state`; True when it carried new text (a content
    event, timed by the caller)."""
    if "error" in event:
        state.error = str(event["error"])[:200]
        return False
    got_text = False
    for choice in event.get("choices") or []:
        text = choice.get("text")
        if text is None:
            text = (choice.get("delta") or {}).get("content")
        if text:
            state.text += text
            state.content_events += 1
            got_text = True
        if choice.get("finish_reason"):
            state.finish_reason = choice["finish_reason"]
    usage = event.get("usage")
    if isinstance(usage, dict):
        state.completion_tokens = usage.get("completion_tokens", state.completion_tokens)
        state.prompt_tokens = usage.get("prompt_tokens", state.prompt_tokens)
        details = usage.get("prompt_tokens_details") or {}
        if isinstance(details.get("cached_tokens"), int):
            state.cached_tokens = details["cached_tokens"]
    timings = event.get("timings")
    # llama-server: cache_n prompt tokens taken from its cache, prompt_n computed.
    cache_n = timings.get("cache_n") if isinstance(timings, dict) else None
    if isinstance(timings, dict) and isinstance(cache_n, int) and state.cached_tokens is None:
        state.cached_tokens = cache_n
        if state.prompt_tokens is None and isinstance(timings.get("prompt_n"), int):
            state.prompt_tokens = cache_n + timings["prompt_n"]
    return got_text
