"""Shared test configuration: the Hypothesis profiles.

Profiles (select with HYPOTHESIS_PROFILE, default ``dev``):
- ``dev``: fast feedback while working (keeps the example database, so a
  failure found once is replayed first next time);
- ``ci``: more examples, no deadline, no example database: every run starts
  from scratch, as on a fresh CI machine;
- ``teeth``: for tests that must find a planted bug: generation until the first
  failure (up to many examples), shrinking, and no explain phase, so that the
  last run is the shrunk counterexample. Not selected by the environment.
Tests never set ``max_examples`` or ``deadline`` themselves.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings

settings.register_profile("dev", max_examples=50, deadline=None, derandomize=True)
settings.register_profile(
    "ci",
    max_examples=600,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.register_profile(
    "teeth",
    settings.get_profile("ci"),
    max_examples=3000,
    phases=(Phase.explicit, Phase.generate, Phase.shrink),
    report_multiple_bugs=False,
    print_blob=False,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
