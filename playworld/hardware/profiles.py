"""Robot profiles: YAML files under `configs/robots/` that build typed robot configs.

    config = load_profile("sim_panda")                   # or a path to a .yaml file
    robot = robot_from_profile("configs/robots/rosbridge_panda.yaml", port=9091)

A profile is a mapping with `type` (a name in `ROBOTS`) and the fields of that robot's config
dataclass; `guard` holds the limits (`GuardConfig`). Read with `yaml.safe_load` only: a profile
cannot execute code. Overrides replace top-level keys (e.g. from the command line).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playworld.errors import did_you_mean
from playworld.hardware.errors import ConfigError
from playworld.hardware.robot import ROBOTS, Robot

#: Where named profiles live: <repo>/configs/robots (next to the package in a source checkout).
PROFILE_DIR = Path(__file__).resolve().parents[2] / "configs" / "robots"


def profile_names() -> list[str]:
    """The names of the profiles shipped in `PROFILE_DIR`."""
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))


def resolve_profile(name_or_path: str | Path) -> Path:
    """The YAML file of a profile name (`sim_panda`) or path; unknown names list the valid ones."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise ConfigError(f"expected a robot profile file, found no file at {path}")
        return path
    candidate = PROFILE_DIR / f"{name_or_path}.yaml"
    if not candidate.is_file():
        raise ConfigError(
            f"expected a robot profile name or YAML path, found {str(name_or_path)!r}."
            f"{did_you_mean(str(name_or_path), profile_names())}"
        )
    return candidate


def read_profile(name_or_path: str | Path, **overrides: Any) -> dict[str, Any]:
    """The profile's plain mapping (safe_load), with top-level `overrides` applied."""
    import yaml

    path = resolve_profile(name_or_path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"expected valid YAML in {path}, found: {' '.join(str(exc).split())}"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"expected a mapping at the top of {path}, found {type(data).__name__}")
    data.update({k: v for k, v in overrides.items() if v is not None})
    return data


def load_profile(name_or_path: str | Path, **overrides: Any) -> Any:
    """The typed robot config of a profile (e.g. `SimRobotConfig`)."""
    import playworld.hardware  # noqa: F401  (registers every robot type)

    return ROBOTS.config_from_dict(read_profile(name_or_path, **overrides))


def robot_from_profile(name_or_path: str | Path, **overrides: Any) -> Robot:
    """A disconnected robot built from a profile."""
    return ROBOTS.build(load_profile(name_or_path, **overrides))
