"""Load benchmarks: ``python bench/run.py`` (``make bench``); see docs/performance.md."""
