from __future__ import annotations

from pathlib import Path

import pytest
from tiny_store import make_store


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three episodes of cameras, joints, keypoints, actions, segments and loop figures (read only)."""
    return make_store(tmp_path_factory.mktemp("store") / "tiny.zarr")
