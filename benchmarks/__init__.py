"""Benchmarks (``make bench``): tables printed and written as JSON, measured side by side."""
