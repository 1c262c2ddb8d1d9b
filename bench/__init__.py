"""Benchmarks: `make bench` runs them and writes var/bench/results.json (each entry against an anchor)."""
