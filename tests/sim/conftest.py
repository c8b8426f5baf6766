"""Shared fixtures: one twin per module (building one takes ~0.1 s once meshes are cached)."""

from __future__ import annotations

import pytest

import playworld.sim  # noqa: F401 - picks the headless GL backend before mujoco loads
from playworld.sim import Twin, TwinConfig


@pytest.fixture(scope="module")
def twin() -> Twin:
    return Twin(TwinConfig())
