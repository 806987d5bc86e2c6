"""Benchmarks: scripts that measure Kapok against the raw stack in the same run."""
