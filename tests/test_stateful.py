"""The core conforms to the model over generated operation sequences."""

from __future__ import annotations

from tests.stateful_machine import LogVersusModel

TestCoreMatchesModel = LogVersusModel.TestCase
