"""Shared test configuration: Hypothesis profiles and the vector locations.

Profiles (select with HYPOTHESIS_PROFILE, default ``dev``):
- ``dev``: fast feedback while working;
- ``ci``: more examples, no deadline (CI machines are slow and shared).
Tests never set ``max_examples`` or ``deadline`` themselves.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=50, deadline=None, derandomize=True)
settings.register_profile(
    "ci",
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
