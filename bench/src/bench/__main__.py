"""`python -m bench`: llm-server, llama.cpp's `llama-server` and llama-cpp-python's server on the
same GGUF and threads, one at a time, in alternating rounds; medians to bench/results/."""

from bench.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
