"""The benchmark suite: ``python3 tasks.py bench`` (``python -m bench.run``); see ``bench/run.py``."""
