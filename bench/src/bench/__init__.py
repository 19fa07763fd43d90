"""Benchmark harnesses for the stack."""
