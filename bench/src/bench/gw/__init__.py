"""Benchmarks of the gateway: added latency over a stub upstream, cache hits, failover."""
