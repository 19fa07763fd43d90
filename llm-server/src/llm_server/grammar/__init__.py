"""JSON schemas to llama.cpp grammars: bounded before, converted in a worker process."""
