"""Two genuinely different models from one models file on the real llama.cpp: the embedded
Gemma 3 270M (a base model) and the tiny random llama the tests write (a chat template of its
own). Loading on first use, names, templates, streams during a load, idle and LRU unloads."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from llm_server.app import create_app
from llm_server.config import Settings
from llm_server.engine.embedded import embedded_model_path
from llm_server.models.gguf import read_gguf_info
from tests.conftest import AUTH, TOKEN, served
from tests.test_main import start_server

pytestmark = pytest.mark.model

GEMMA = """
[[models]]
id = "gemma-3-270m"
aliases = ["gemma"]
path = "embedded"
context_length = 256
kv_cells = 2048
slots = 4
threads = 2
keep_loaded = true
"""


def tiny(ident: str, path: Path, extra: str = "") -> str:
    return f"""
[[models]]
id = "{ident}"
path = "{path}"
context_length = 256
kv_cells = 512
slots = 2
threads = 1
{extra}
"""


@asynccontextmanager
async def server(tmp_path: Path, text: str, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    path = tmp_path / "models.toml"
    path.write_text(text)
    config = Settings(app_env="test", server_token=TOKEN, models_file=path, **settings)
    async with served(create_app(config)) as http:
        http.timeout = httpx.Timeout(120)
        yield http


async def states(http: httpx.AsyncClient) -> dict[str, str]:
    models = (await http.get("/health/ready")).json()["models"]
    return {m["id"]: m["state"] for m in models}


async def until(http: httpx.AsyncClient, check: Callable[[dict[str, str]], bool]) -> None:
    async with asyncio.timeout(60):
        while not check(await states(http)):  # noqa: ASYNC110 (polling the server's state)
            await asyncio.sleep(0.02)


async def complete(http: httpx.AsyncClient, model: str, **fields: Any) -> dict[str, Any]:
    body = {"model": model, "prompt": "hello", "max_tokens": 4, "temperature": 0, **fields}
    response = await http.post("/v1/completions", headers=AUTH, json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def metric(http: httpx.AsyncClient, line: str) -> float:
    text = (await http.get("/metrics", headers=AUTH)).text
    [found] = [row for row in text.splitlines() if row.startswith(line + " ")]
    return float(found.split()[-1])


async def test_the_first_request_loads_the_tiny_model(tmp_path: Path, tiny_model: Path) -> None:
    text = 'default = "gemma"\n' + GEMMA + tiny("tiny", tiny_model)
    async with server(tmp_path, text, model_load_wait_s=0) as http:
        cards = {c["id"]: c for c in (await http.get("/v1/models", headers=AUTH)).json()["data"]}
        assert {k: (c["state"], c["kind"]) for k, c in cards.items()} == {
            "gemma-3-270m": ("loaded", "base"),
            "tiny": ("unloaded", "chat"),
        }
        assert cards["gemma-3-270m"]["aliases"] == ["gemma"]
        # Waiting 0 s: the request that starts the load is told it is loading.
        response = await http.post(
            "/v1/completions", headers=AUTH, json={"model": "tiny", "prompt": "hello"}
        )
        assert response.status_code == 503, response.text
        assert response.json()["error"]["message"] == (
            "the model 'tiny' is loading; retry in a few seconds"
        )
        assert int(response.headers["retry-after"]) >= 1
        await until(http, lambda s: s["tiny"] == "loaded")
        assert (await complete(http, "tiny"))["model"] == "tiny"
        assert await metric(http, 'llm_model_loads_total{model="tiny"}') == 1
        assert await metric(http, 'llm_model_last_load_seconds{model="tiny"}') > 0
        # Other spellings of the names; `default` is the file's default.
        for name, ident in [("TINY", "tiny"), (" tiny ", "tiny"), ("Default", "gemma-3-270m")]:
            assert (await complete(http, name))["model"] == ident
        for name in ("tiny2", "gemma-3", ""):
            response = await http.post(
                "/v1/completions", headers=AUTH, json={"model": name, "prompt": "hello"}
            )
            assert response.status_code == 404, name


async def prompt_tokens(http: httpx.AsyncClient, route: str, model: str) -> int:
    if route == "chat":
        body: dict[str, Any] = {"messages": [{"role": "user", "content": "hello"}]}
        path = "/v1/chat/completions"
    else:
        body, path = {"prompt": "hello"}, "/v1/completions"
    body |= {"model": model, "max_tokens": 3, "temperature": 0}
    response = await http.post(path, headers=AUTH, json=body)
    assert response.status_code == 200, response.text
    assert response.json()["usage"]["completion_tokens"] <= 3
    count: int = response.json()["usage"]["prompt_tokens"]
    return count


async def test_each_model_gets_its_own_chat_prompt(tmp_path: Path, tiny_model: Path) -> None:
    plain = "chat_template = \"{% for m in messages %}{{ m['content'] }}{% endfor %}\""
    text = GEMMA + tiny("tiny", tiny_model) + tiny("tiny-plain", tiny_model, plain)
    async with server(tmp_path, text) as http:
        # The tiny GGUF's own template: <s> <|user|> ▁hello <|end|> <|assistant|>
        hello = await prompt_tokens(http, "completions", "tiny")  # <s> ▁hello
        assert await prompt_tokens(http, "chat", "tiny") == hello + 3
        # The file's override replaces it: the message alone.
        assert await prompt_tokens(http, "chat", "tiny-plain") == hello
        # Gemma has no template: a transcript ("User: hello\nAssistant:").
        gemma_hello = await prompt_tokens(http, "completions", "gemma")
        assert await prompt_tokens(http, "chat", "gemma") > gemma_hello + 3
        cards = {c["id"]: c for c in (await http.get("/v1/models", headers=AUTH)).json()["data"]}
        assert [cards[m]["kind"] for m in ("gemma-3-270m", "tiny", "tiny-plain")] == [
            "base",
            "chat",
            "chat",
        ]


COPIES = ("copy-1", "copy-2", "copy-3")


def test_streams_keep_flowing_while_other_models_load(tmp_path: Path) -> None:
    """On the real process and socket (an in-process client would buffer the stream)."""
    # Copies of Gemma under other ids, loaded together: long enough to watch (about a
    # second, where the tiny model loads in milliseconds).
    copies = "".join(
        f'\n[[models]]\nid = "{ident}"\npath = "embedded"\nkv_cells = 2048\nthreads = 1\n'
        for ident in COPIES
    )
    (tmp_path / "models.toml").write_text(GEMMA + copies)
    running = start_server(LLM_MODELS_FILE=str(tmp_path / "models.toml"))
    try:
        during_load = asyncio.run(stream_during_load(running.url))
    finally:
        running.process.terminate()
        running.process.wait(timeout=30)
    # Tokens of the stream arrived while the other models loaded: none waited for them (a
    # load at the same priority as decoding let 2 to 4 through on 2 cores; niced, 80 or more).
    assert during_load >= 10, during_load


async def stream_during_load(url: str) -> int:
    """Tokens of a Gemma stream read while its copies are loading."""
    body = {"model": "gemma", "prompt": "Once upon a time", "max_tokens": 240}
    body |= {"temperature": 0, "ignore_eos": True, "stream": True}
    during_load, loads = 0, None

    def loading(models: dict[str, str]) -> bool:
        return any(models[ident] == "loading" for ident in COPIES)

    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        async with http.stream("POST", "/v1/completions", headers=AUTH, json=body) as stream:
            async for line in stream.aiter_lines():
                if not line.startswith("data: {"):
                    continue
                if loads is None:  # the first token is out: start loading the others
                    loads = asyncio.gather(*(complete(http, ident) for ident in COPIES))
                    await until(http, loading)
                    continue
                if not loading(await states(http)):
                    break
                during_load += 1
        assert loads is not None
        assert [answer["model"] for answer in await loads] == list(COPIES)
    return during_load


async def test_an_idle_model_is_unloaded_and_loads_again(tmp_path: Path, tiny_model: Path) -> None:
    text = GEMMA + tiny("tiny", tiny_model, "idle_unload_s = 0.5")
    async with server(tmp_path, text) as http:
        await complete(http, "tiny")
        assert (await states(http))["tiny"] == "loaded"
        await until(http, lambda s: s["tiny"] == "unloaded")
        assert (await states(http))["gemma-3-270m"] == "loaded"  # kept loaded
        assert await metric(http, 'llm_model_unloads_total{model="tiny",reason="idle"}') == 1
        assert (await complete(http, "tiny"))["model"] == "tiny"
        assert await metric(http, 'llm_model_loads_total{model="tiny"}') == 2


async def test_the_least_recently_used_model_makes_room_under_the_budget(
    tmp_path: Path, tiny_model: Path
) -> None:
    gemma = read_gguf_info(embedded_model_path()).memory_bytes(2048)
    small = read_gguf_info(tiny_model).memory_bytes(512)
    budget = gemma + small * 3 // 2  # Gemma (kept loaded) and one tiny model, not two
    text = f"memory_budget = {budget}\n" + GEMMA
    text += tiny("tiny-a", tiny_model) + tiny("tiny-b", tiny_model)
    async with server(tmp_path, text) as http:
        await complete(http, "tiny-a")
        assert await states(http) == {
            "gemma-3-270m": "loaded",
            "tiny-a": "loaded",
            "tiny-b": "unloaded",
        }
        await complete(http, "tiny-b")
        assert await states(http) == {
            "gemma-3-270m": "loaded",
            "tiny-a": "unloaded",
            "tiny-b": "loaded",
        }
        await complete(http, "tiny-a")
        assert (await states(http))["tiny-b"] == "unloaded"
        unloads = 'llm_model_unloads_total{model="tiny-a",reason="memory"}'
        assert await metric(http, unloads) == 1
        assert await metric(http, 'llm_model_unloads_total{model="tiny-b",reason="memory"}') == 1


async def test_a_model_with_work_is_not_unloaded_for_room(tmp_path: Path) -> None:
    gemma = read_gguf_info(embedded_model_path()).memory_bytes(2048)
    budget = gemma * 5 // 2  # the kept Gemma and one copy, not two
    copies = "".join(
        f'\n[[models]]\nid = "{ident}"\npath = "embedded"\nkv_cells = 2048\nthreads = 1\n'
        for ident in COPIES[:2]
    )
    async with server(tmp_path, f"memory_budget = {budget}\n" + GEMMA + copies) as http:
        long = {"max_tokens": 200, "ignore_eos": True, "prompt": "Once upon a time"}
        busy = asyncio.ensure_future(complete(http, "copy-1", **long))
        async with asyncio.timeout(60):
            while not (await http.get("/health/ready")).json()["running"]:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        response = await http.post(
            "/v1/completions", headers=AUTH, json={"model": "copy-2", "prompt": "hello"}
        )
        assert response.status_code == 503, response.text
        message = response.json()["error"]["message"]
        assert "'copy-2' needs about" in message
        assert "'copy-1' (loaded, in use)" in message
        assert "'gemma-3-270m' (kept loaded)" in message
        assert int(response.headers["retry-after"]) >= 1
        assert (await busy)["usage"]["completion_tokens"] == 200  # never cut
        # Once it is idle, it makes room.
        assert (await complete(http, "copy-2"))["model"] == "copy-2"
        assert (await states(http))["copy-1"] == "unloaded"
