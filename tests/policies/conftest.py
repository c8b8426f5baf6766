"""Fixtures of the policy tests."""

from __future__ import annotations

import playworld.sim  # noqa: F401 - picks the headless GL backend before mujoco loads
