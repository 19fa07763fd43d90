"""The multi-host test: the real stack on Linux network namespaces, under load and faults."""
