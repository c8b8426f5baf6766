"""Typed configuration of the twin: control rate, action space, randomisation, render quality."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playworld.sim.errors import ConfigError

#: Block region of `RandomizationConfig.wide()` (x0 x1 y0 y1, m): clear of the button and cabinets.
WIDE_BLOCK_REGION = (0.28, 0.46, -0.15, 0.15)
#: Render qualities: face ratio kept of the Panda visual meshes, shadow map size (0 = none).
QUALITIES: dict[str, dict[str, Any]] = {
    "fast": {"mesh_ratio": 0.05, "shadowsize": 0},
    "high": {"mesh_ratio": 1.0, "shadowsize": 4096},
}


@dataclass(frozen=True)
class RandomizationConfig:
    """What `reset` randomises. Ranges are multiplicative scales (friction, mass) or offsets."""

    object_poses: bool = True
    friction: tuple[float, float] | None = None  # e.g. (0.7, 1.3): scale of block friction
    mass: tuple[float, float] | None = None  # e.g. (0.5, 2.0): scale of block masses
    lighting: bool = False  # jitter light directions and intensity
    camera_jitter: float = 0.0  # front camera position noise, metres (std)
    # Block placement: yaw uniform in +-block_yaw rad; centres in block_region (x0 x1 y0 y1, m;
    # None: the layout's). `wide()` gives the range that keypoint warping has to cope with.
    block_yaw: float = 0.6
    block_region: tuple[float, float, float, float] | None = None

    def __post_init__(self) -> None:
        for name in ("friction", "mass"):
            value = getattr(self, name)
            if value is not None and not (len(value) == 2 and 0 < value[0] <= value[1]):
                raise ConfigError(
                    f"expected {name} as (low, high) with 0 < low <= high, found {value}"
                )
        if self.camera_jitter < 0:
            raise ConfigError(f"expected camera_jitter >= 0 m, found {self.camera_jitter}")
        if not 0 <= self.block_yaw <= 3.2:
            raise ConfigError(f"expected 0 <= block_yaw <= pi rad, found {self.block_yaw}")
        if self.block_region is not None:
            region = tuple(float(v) for v in self.block_region)
            if len(region) != 4 or not (region[0] < region[1] and region[2] < region[3]):
                raise ConfigError(
                    f"expected block_region (x0, x1, y0, y1) m with x0 < x1 and y0 < y1, found "
                    f"{self.block_region}"
                )
            object.__setattr__(self, "block_region", region)

    @classmethod
    def wide(cls, **overrides: Any) -> RandomizationConfig:
        """Blocks +-9 cm in x about 0.37 and +-15 cm in y, yaw +-45 degrees; drawer and
        door anywhere in their mounts, the button fixed (the default moves blocks less)."""
        return cls(**{"block_yaw": math.pi / 4, "block_region": WIDE_BLOCK_REGION, **overrides})


@dataclass(frozen=True)
class TwinConfig:
    """Everything that builds a twin; saved beside artifacts (`to_dict`) and loadable from YAML.

    `n_substeps` and `dt` are derived from `control_hz` and `timestep`, never stored.
    """

    control_hz: float = 10.0  # policy / action rate, Hz
    timestep: float = 0.002  # physics step, s
    action_space: str = "ee_delta"  # see playworld.sim.controllers.ACTION_SPACES
    quality: str = "fast"  # render quality, see QUALITIES
    randomization: RandomizationConfig = field(default_factory=RandomizationConfig)

    def __post_init__(self) -> None:
        from playworld.sim.controllers import ACTION_SPACES

        if self.action_space not in ACTION_SPACES:
            raise ConfigError(
                f"expected an action space in {sorted(ACTION_SPACES)}, found {self.action_space!r}"
            )
        if self.quality not in QUALITIES:
            raise ConfigError(f"expected quality in {sorted(QUALITIES)}, found {self.quality!r}")
        if not (0 < self.timestep <= 0.01):
            raise ConfigError(f"expected 0 < timestep <= 0.01 s, found {self.timestep}")
        ratio = 1.0 / (self.control_hz * self.timestep) if self.control_hz > 0 else 0.0
        if ratio < 1 or abs(ratio - round(ratio)) > 1e-6:
            raise ConfigError(
                f"expected control_hz dividing 1/timestep = {1 / self.timestep:g} Hz into a whole "
                f"number of physics substeps, found control_hz={self.control_hz}"
            )
        if isinstance(self.randomization, dict):  # from YAML
            object.__setattr__(self, "randomization", RandomizationConfig(**self.randomization))

    @property
    def n_substeps(self) -> int:
        """Physics steps per control step."""
        return round(1.0 / (self.control_hz * self.timestep))

    @property
    def dt(self) -> float:
        """Control period, s."""
        return self.n_substeps * self.timestep

    def to_dict(self) -> dict[str, Any]:
        """JSON-native dict of the constructor arguments."""
        return dataclasses.asdict(self)

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> TwinConfig:
        """Load from a YAML file (keys = constructor arguments), then apply overrides."""
        import yaml

        data = yaml.safe_load(Path(path).read_text()) or {}
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise ConfigError(f"expected keys among {sorted(fields)} in {path}, found {unknown}")
        data.update(overrides)
        return cls(**data)
