"""Benchmarks: `make bench` prints latency figures of a real stack on this machine."""
