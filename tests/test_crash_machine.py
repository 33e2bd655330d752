"""Crashes at any step, chosen by Hypothesis, recover an allowed prefix."""

from __future__ import annotations

from tests.crash_machine import CrashingLogVersusModel

TestCrashesRecoverAnAllowedPrefix = CrashingLogVersusModel.TestCase
