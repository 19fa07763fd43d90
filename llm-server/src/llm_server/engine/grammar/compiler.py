"""JSON schema → GBNF, bounded and off the server process.

The schema is checked against `limits` first (a cheap walk, with a message naming the bound
it is over); then llama-cpp-python's converter runs in a worker process (`worker`) with an
address-space limit and a time limit. A worker that runs over its time or dies is killed and
replaced; the request gets 400. The server's event loop only waits on a pipe.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from typing import Any

from llm_server.engine.errors import EngineUnavailableError, GrammarError
from llm_server.engine.grammar.limits import SchemaLimitError, check_schema

MAX_GRAMMAR_BYTES = 256 * 1024
CONVERT_TIMEOUT_S = 5.0
START_TIMEOUT_S = 60.0
# The worker needs no secret: only these variables reach it.
_WORKER_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH", "LD_LIBRARY_PATH")


class GrammarCompiler:
    """Converts JSON schemas to GBNF grammars in one worker process, one at a time."""

    def __init__(
        self, *, timeout_s: float = CONVERT_TIMEOUT_S, max_grammar_bytes: int = MAX_GRAMMAR_BYTES
    ) -> None:
        self._timeout_s = timeout_s
        self._max_bytes = max_grammar_bytes
        self._process: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()

    async def json_schema(self, schema: Any) -> str:
        """The GBNF grammar of `schema`; raises `GrammarError` for the client."""
        try:
            check_schema(schema)
        except SchemaLimitError as exc:
            raise GrammarError(str(exc)) from None
        return await self._convert(schema)

    async def _convert(self, schema: Any) -> str:
        """The worker's conversion, with no check of the schema first."""
        request = json.dumps({"schema": json.dumps(schema)}).encode() + b"\n"
        async with self._lock:
            reply = await self._ask(request)
        if "error" in reply:
            raise GrammarError(f"the schema cannot be used: {reply['error']}")
        return str(reply["grammar"])

    async def close(self) -> None:
        """Stop the worker (it is started again on the next schema)."""
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            process.kill()
            await process.wait()

    async def _ask(self, request: bytes) -> dict[str, Any]:
        process = await self._worker()
        assert process.stdin is not None
        assert process.stdout is not None
        try:
            process.stdin.write(request)
            await process.stdin.drain()
            line = await asyncio.wait_for(process.stdout.readline(), self._timeout_s)
        except TimeoutError:
            await self.close()
            raise GrammarError(
                f"converting the schema took longer than {self._timeout_s:g} s: simplify it"
            ) from None
        except (ConnectionError, ValueError):  # died mid-request, or a line over the limit
            line = b""
        if not line:
            await self.close()
            raise GrammarError(
                "converting the schema needs more memory than this server allows: simplify it"
            )
        reply: dict[str, Any] = json.loads(line)
        return reply

    async def _worker(self) -> asyncio.subprocess.Process:
        if self._process is not None and self._process.returncode is None:
            return self._process
        env = {key: os.environ[key] for key in _WORKER_ENV if key in os.environ}
        env["PYTHONIOENCODING"] = "utf-8"
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "llm_server.engine.grammar.worker",
            str(self._max_bytes),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            env=env,
            limit=4 * self._max_bytes,
        )
        assert process.stdout is not None
        try:
            ready = await asyncio.wait_for(process.stdout.readline(), START_TIMEOUT_S)
        except TimeoutError:
            ready = b""
        if not ready:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            raise EngineUnavailableError("the JSON schema converter did not start")
        self._process = process
        return process
