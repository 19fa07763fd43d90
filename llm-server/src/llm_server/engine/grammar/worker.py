"""The grammar worker process: JSON schema in, GBNF out, one JSON line each way.

It runs llama-cpp-python's converter away from the server, under an address-space limit:
whatever a schema does to the converter (memory, time, a crash), the server only loses this
process, kills it after its time limit and starts another.
"""

from __future__ import annotations

import json
import resource
import sys
from typing import Any

# What the converter may allocate beyond the interpreter and the libraries already loaded.
MEMORY_HEADROOM_BYTES = 512 * 1024 * 1024


def _limit_memory() -> None:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[0])
    limit = pages * resource.getpagesize() + MEMORY_HEADROOM_BYTES
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def convert(request: dict[str, Any], max_bytes: int) -> dict[str, Any]:
    """One conversion: `{"grammar": ...}` or `{"error": ...}` (a message for the client)."""
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    try:
        grammar = str(json_schema_to_gbnf(request["schema"]))
        size = len(grammar.encode())
    except MemoryError:
        return {"error": "converting it needs more memory than this server allows"}
    except RecursionError:
        return {"error": "it nests or refers to itself too deeply to convert"}
    except Exception as exc:  # the converter's own words say what it does not support
        return {"error": f"{type(exc).__name__}: {exc}"[:500]}
    if size > max_bytes:
        return {"error": f"its grammar would be over {max_bytes} bytes"}
    return {"grammar": grammar}


def main() -> None:
    max_bytes = int(sys.argv[1])
    from llama_cpp.llama_grammar import json_schema_to_gbnf  # noqa: F401  (load before limits)

    _limit_memory()
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        print(json.dumps(convert(json.loads(line), max_bytes), ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
