"""Shared test configuration: the Hypothesis profiles.

Profiles (select with HYPOTHESIS_PROFILE, default ``dev``):
- ``dev``: fast feedback while working (keeps the example database, so a
  failure found once is replayed first next time);
- ``ci``: more examples, no deadline, no example database: every run starts
  from scratch, as on a fresh CI machine;
- ``teeth``: for tests that must find a planted bug: generation until the first
  failure (up to many examples), shrinking, and no explain phase, so that the
  last run is the shrunk counterexample. Not selected by the environment.
- ``symbolic``: the CrossHair backend (symbolic execution: each example is a
  path through the code, not a random input); needs ``hypothesis-crosshair``.
  For ``tests/test_decoder_properties.py`` (``python3 tasks.py symbolic``).
Tests never set ``max_examples`` or ``deadline`` themselves.
"""

from __future__ import annotations

import importlib.util
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
if importlib.util.find_spec("hypothesis_crosshair_provider") is not None:
    # Hypothesis checks that the backend is installed when the profile is made.
    settings.register_profile(
        "symbolic",
        settings.get_profile("ci"),
        backend="crosshair",
        max_examples=int(os.environ.get("MRECORDLOG_SYMBOLIC_EXAMPLES", "2000")),
        suppress_health_check=list(HealthCheck),
    )
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
