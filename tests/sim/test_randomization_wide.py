"""The wide object-pose randomisation (`RandomizationConfig.wide()`): an option, not the default."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from playworld.sim import Twin, TwinConfig
from playworld.sim.config import WIDE_BLOCK_REGION, RandomizationConfig
from playworld.sim.errors import ConfigError
from playworld.sim.scene import BLOCKS
from playworld.sim.twin import MIN_BLOCK_GAP

ROOT = Path(__file__).resolve().parents[2]


def test_wide_poses_span_the_region_and_45_degrees():
    twin = Twin(TwinConfig(randomization=RandomizationConfig.wide()))
    x0, x1, y0, y1 = WIDE_BLOCK_REGION
    yaws, xs, ys = [], [], []
    for seed in range(40):
        twin.reset(seed=seed)
        centres = []
        for c in BLOCKS:
            adr = twin.block_qadr[c]
            x, y, _ = twin.data.qpos[adr : adr + 3]
            w, _, _, z = twin.data.qpos[adr + 3 : adr + 7]
            yaws.append(2 * math.atan2(z, w))
            xs.append(x)
            ys.append(y)
            centres.append((x, y))
        gaps = [math.dist(a, b) for i, a in enumerate(centres) for b in centres[i + 1 :]]
        assert min(gaps) > MIN_BLOCK_GAP
    assert x0 <= min(xs) and max(xs) <= x1 and y0 <= min(ys) and max(ys) <= y1
    assert max(np.abs(yaws)) <= math.pi / 4 + 1e-9 and max(np.abs(yaws)) > 0.7
    assert max(xs) - min(xs) > 0.13 and max(ys) - min(ys) > 0.22


def test_the_default_is_unchanged_and_the_yaml_records_the_option():
    default = RandomizationConfig()
    assert default.block_yaw == 0.6 and default.block_region is None
    a = Twin(TwinConfig()).reset(seed=3)
    b = Twin(TwinConfig(randomization=RandomizationConfig(block_yaw=0.6))).reset(seed=3)
    np.testing.assert_array_equal(a, b)
    wide = TwinConfig.from_yaml(ROOT / "configs/sim/twin_wide.yaml")
    assert wide.randomization == RandomizationConfig.wide()
    assert wide.to_dict()["randomization"]["block_region"] == WIDE_BLOCK_REGION


def test_bad_ranges_are_refused():
    with pytest.raises(ConfigError, match="block_region"):
        RandomizationConfig(block_region=(0.4, 0.3, -0.1, 0.1))
    with pytest.raises(ConfigError, match="block_yaw"):
        RandomizationConfig(block_yaw=-1.0)
