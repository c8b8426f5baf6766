"""The `Policy` interface: every action source that is not a person (scripted experts, replays,
trained models) behind one small, typed contract.

    policy = make_policy("scripted")                 # a registered name, or a checkpoint folder
    policy.reset(seed=0, goal="open_drawer")         # goal: a task name or a goal observation
    action = policy.act(obs)                         # obs: robot keys + cameras -> (A,) float32
    chunk = policy.predict_chunk(batch)              # (B, n_obs_steps, *shape) -> (B, n_action_steps, A)
    policy.save("out/policy")                        # config.json + model.safetensors
    policy = Policy.load("out/policy")               # never unpickles; strict shapes

`act` keeps the policy's own observation history (the last `n_obs_steps`, the first one repeated
until there are enough) and action queue (a predicted chunk is executed `n_action_steps` at a
time), as diffusion_policy's `BasePolicy` and lerobot's `PreTrainedPolicy` do. A policy names the
features it reads (`observation_features`, store `Feature`s) and emits (`action_features`); a
policy reading a privileged feature (twin-only state) refuses to run on a real robot.

A saved policy is a folder: `config.json` (format, version, type, every constructor argument,
the features, the normaliser's statistics, free `info`) and `model.safetensors` (empty for
policies without weights). The folder is written beside its destination and swapped into place
in one rename, so a crash never leaves half a checkpoint.
"""

from __future__ import annotations

import abc
import dataclasses
import json
import os
import shutil
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from playworld.errors import ConfigError, PolicyError
from playworld.features import Feature
from playworld.registry import Registry, build_dataclass

FORMAT = "playworld.policy"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
#: What one observation, action or goal is: key -> array.
Observation = Mapping[str, np.ndarray]


@dataclass(frozen=True)
class PolicyConfig:
    """Base of every policy's config: its constructor arguments (JSON-native), validated here.

    `n_obs_steps`: observations a prediction sees (the newest last); `n_action_steps`: actions
    of each predicted chunk that `act` executes before predicting again.
    """

    n_obs_steps: int = 1
    n_action_steps: int = 1

    def __post_init__(self) -> None:
        if self.n_obs_steps < 1 or self.n_action_steps < 1:
            raise ConfigError(
                f"expected n_obs_steps >= 1 and n_action_steps >= 1, found "
                f"{self.n_obs_steps} and {self.n_action_steps}"
            )


class Policy(abc.ABC):
    """An action source for the `ControlLoop` (see the module docstring).

    Subclasses set `type` and `config_class`, implement `predict_chunk`, and register themselves
    in `POLICIES` next to their config. Torch policies keep their network in `self.model` (an
    `nn.Module`): the base class saves and loads its tensors.
    """

    type: ClassVar[str] = ""
    version: ClassVar[int] = 1
    config_class: ClassVar[type[PolicyConfig]] = PolicyConfig

    def __init__(
        self,
        config: PolicyConfig | None = None,
        *,
        observation_features: Mapping[str, Feature],
        action_features: Mapping[str, Feature],
        normalizer: Any = None,
        info: Mapping[str, Any] | None = None,
    ) -> None:
        config = self.config_class() if config is None else config
        if type(config) is not self.config_class:
            raise PolicyError(
                f"expected a {self.config_class.__name__} for policy {self.type!r}, found "
                f"{type(config).__name__}"
            )
        if set(action_features) != {"action"} or len(action_features["action"].shape) != 1:
            raise PolicyError(
                f"expected action_features with the single key 'action' of shape (A,), found "
                f"{ {k: f.shape for k, f in action_features.items()} }"
            )
        self.config = config
        self.observation_features: dict[str, Feature] = dict(observation_features)
        self.action_features: dict[str, Feature] = dict(action_features)
        self.normalizer = normalizer  # a playworld.datasets.Normalizer, or None
        self.info: dict[str, Any] = dict(info or {})
        self.seed: int | None = None
        self.goal: str | Observation | None = None
        self._history: deque[dict[str, np.ndarray]] = deque(maxlen=config.n_obs_steps)
        self._queue: deque[np.ndarray] = deque()

    # -- descriptions -------------------------------------------------------------------------
    @property
    def n_obs_steps(self) -> int:
        return self.config.n_obs_steps

    @property
    def n_action_steps(self) -> int:
        return self.config.n_action_steps

    @property
    def action_dim(self) -> int:
        return int(self.action_features["action"].shape[0])

    @property
    def privileged(self) -> bool:
        """True when the policy reads a feature only the twin has (it cannot drive a real arm)."""
        return any(f.privileged for f in self.observation_features.values())

    # -- acting ---------------------------------------------------------------------------------
    def reset(self, seed: int | None = None, goal: str | Observation | None = None) -> None:
        """Start an episode: clear the history and the action queue; `goal` a task or an obs."""
        self.seed, self.goal = seed, goal
        self._history.clear()
        self._queue.clear()

    def act(self, obs: Observation) -> np.ndarray:
        """One observation (unbatched) -> the next action (A,) float32."""
        step = {}
        for key in self.observation_features:
            if key not in obs:
                raise PolicyError(
                    f"expected observation key {key!r} for policy {self.type!r}, found keys "
                    f"{sorted(obs)}"
                )
            step[key] = np.asarray(obs[key])
        self._history.append(step)
        while len(self._history) < self.n_obs_steps:
            self._history.appendleft(self._history[0])
        if not self._queue:
            batch = {k: np.stack([h[k] for h in self._history])[None] for k in step}
            chunk = np.asarray(self.predict_chunk(batch))
            want = (1, self.n_action_steps, self.action_dim)
            if chunk.shape != want:
                raise PolicyError(
                    f"expected predict_chunk of policy {self.type!r} to return {want}, found "
                    f"{chunk.shape}"
                )
            self._queue.extend(chunk[0].astype(np.float32))
        return self._queue.popleft()

    @abc.abstractmethod
    def predict_chunk(self, obs: Observation) -> np.ndarray:
        """obs[key] (B, n_obs_steps, *shape) -> actions (B, n_action_steps, A) float32."""

    # -- weights ----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """The tensors saved in model.safetensors ({} without weights; `self.model`'s if any)."""
        model = getattr(self, "model", None)
        if model is None:
            return {}
        return {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}

    def load_state_dict(self, tensors: Mapping[str, np.ndarray]) -> None:
        """Load tensors saved by `state_dict`; keys and shapes must match exactly."""
        expected = self.state_dict()
        missing, extra = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
        if missing or extra:
            raise PolicyError(
                f"expected the tensors of policy {self.type!r}, found {len(missing)} missing "
                f"({', '.join(missing[:3])}) and {len(extra)} unexpected ({', '.join(extra[:3])})"
            )
        for k, v in tensors.items():
            if tuple(v.shape) != tuple(expected[k].shape):
                raise PolicyError(
                    f"expected tensor {k!r} of shape {tuple(expected[k].shape)}, found "
                    f"{tuple(v.shape)}: the weights do not fit this config"
                )
        self._load_tensors(tensors)

    def _load_tensors(self, tensors: Mapping[str, np.ndarray]) -> None:
        model = getattr(self, "model", None)
        if model is not None:
            import torch

            model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in tensors.items()})

    # -- saving and loading -----------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """The content of config.json (JSON-native)."""
        return {
            "format": FORMAT,
            "version": self.version,
            "type": self.type,
            "config": dataclasses.asdict(self.config),
            "observation_features": {k: f.to_json() for k, f in self.observation_features.items()},
            "action_features": {k: f.to_json() for k, f in self.action_features.items()},
            "normalizer": self.normalizer.to_json() if self.normalizer is not None else None,
            "info": self.info,
        }

    def save(self, path: str | Path) -> Path:
        """Write the folder (config.json + model.safetensors) atomically; returns its path."""
        from safetensors.numpy import save_file

        from playworld.datasets.backend import exchange_paths

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
        tmp.mkdir()
        try:
            (tmp / CONFIG_FILE).write_text(json.dumps(self.to_json(), indent=2))
            tensors = {k: np.ascontiguousarray(v) for k, v in self.state_dict().items()}
            save_file(tensors, str(tmp / WEIGHTS_FILE), metadata={"format": FORMAT})
            for name in (CONFIG_FILE, WEIGHTS_FILE):
                fd = os.open(tmp / name, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            if path.exists():
                exchange_paths(tmp, path)  # the old folder lands in tmp, removed below
            else:
                os.rename(tmp, path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Policy:
        """Rebuild a saved policy (its type from config.json); one clear error if it cannot."""
        path = Path(path)
        data = read_config(path)
        policy_cls = (
            POLICIES.entry(str(data["type"]))[1] if data["type"] in POLICIES.names() else None
        )
        if policy_cls is None:
            raise PolicyError(
                f"expected a policy type among {POLICIES.names()} in {path / CONFIG_FILE}, found "
                f"{data['type']!r}"
            )
        if cls is not Policy and not issubclass(policy_cls, cls):
            raise PolicyError(f"expected a {cls.type!r} policy in {path}, found {data['type']!r}")
        if data["version"] != policy_cls.version:
            raise PolicyError(
                f"expected version {policy_cls.version} of policy {data['type']!r} in {path}, "
                f"found {data['version']!r}"
            )
        try:
            config = build_dataclass(policy_cls.config_class, data["config"], where="config")
            obs_features = {
                k: Feature.from_json(v) for k, v in data["observation_features"].items()
            }
            act_features = {k: Feature.from_json(v) for k, v in data["action_features"].items()}
            normalizer = None
            if data["normalizer"] is not None:
                from playworld.datasets import Normalizer

                normalizer = Normalizer.from_json(data["normalizer"])
            policy = policy_cls(
                config,
                observation_features=obs_features,
                action_features=act_features,
                normalizer=normalizer,
                info=data.get("info") or {},
            )
        except (ConfigError, TypeError, ValueError, AttributeError, KeyError) as exc:
            if isinstance(exc, PolicyError):
                raise
            message = " ".join(str(exc).split())
            raise PolicyError(
                f"{path / CONFIG_FILE} does not describe a valid policy: {message}"
            ) from None
        policy.load_state_dict(read_weights(path))
        return policy

    @classmethod
    def build_default(cls, **overrides: Any) -> Policy:
        """This policy built from a registry name alone (e.g. `scripted`); trained policies refuse."""
        raise PolicyError(
            f"policy {cls.type!r} has to be trained first: pass a checkpoint folder "
            f"(`playworld train policy --type {cls.type} ...` writes one)"
        )

    @classmethod
    def example(cls, tmp_path: Path) -> Policy:
        """A small working instance, for the contract test over every registered policy."""
        return cls.build_default()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(type={self.type!r}, obs={sorted(self.observation_features)}, "
            f"action={self.action_dim}, n_obs_steps={self.n_obs_steps}, "
            f"n_action_steps={self.n_action_steps})"
        )


_REQUIRED = ("format", "version", "type", "config", "observation_features", "action_features")


def read_config(path: Path) -> dict[str, Any]:
    """config.json of a policy folder, checked for the keys every policy has."""
    if not path.is_dir():
        raise PolicyError(
            f"expected a policy checkpoint folder or a policy name, found no folder at {path} "
            f"(registered names: {', '.join(POLICIES.names())})"
        )
    file = path / CONFIG_FILE
    if not file.is_file():
        raise PolicyError(f"expected {CONFIG_FILE} in the policy folder {path}, found none")
    try:
        data = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PolicyError(f"expected JSON in {file}, found malformed text ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise PolicyError(f"expected a {FORMAT!r} config in {file}, found format {found!r}")
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise PolicyError(f"expected keys {missing} in {file}, found {sorted(data)}")
    for key in ("config", "observation_features", "action_features"):
        if not isinstance(data[key], dict):
            raise PolicyError(f"expected a mapping for {key!r} in {file}, found {data[key]!r}")
    return data


def read_weights(path: Path) -> dict[str, np.ndarray]:
    """The tensors of model.safetensors (safetensors never executes code)."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    file = path / WEIGHTS_FILE
    if not file.is_file():
        raise PolicyError(
            f"expected {WEIGHTS_FILE} in the policy folder {path}, found none (an interrupted "
            "save or copy? save the policy again)"
        )
    try:
        return load_file(str(file))
    except (SafetensorError, OSError, ValueError) as exc:
        raise PolicyError(
            f"expected safetensors weights in {file}, found unreadable data ({exc})"
        ) from None


#: Registered policies: name -> (config class, policy class). Modules load on first use.
POLICIES: Registry[Policy] = Registry(
    "policy",
    plugins={
        "zero": "playworld.policies.simple",
        "random": "playworld.policies.simple",
        "scripted": "playworld.policies.scripted",
        "replay": "playworld.policies.replay",
        "scripted_perception": "playworld.policies.scripted_perception",
        "gcbc": "playworld.policies.gcbc",
        "play-lmp": "playworld.policies.play_lmp",
        "diffusion": "playworld.policies.diffusion",
        "bc-expert": "playworld.policies.bc_expert",
        "tether": "playworld.policies.tether.policy",
    },
)


def make_policy(spec: str | Path, **overrides: Any) -> Policy:
    """A policy from a registered name (built with defaults + `overrides`) or a checkpoint folder."""
    name = str(spec)
    if name in POLICIES.names():
        return POLICIES.entry(name)[1].build_default(**overrides)
    path = Path(spec)
    if path.is_dir():
        return Policy.load(path)
    raise PolicyError(
        f"expected a policy name among {POLICIES.names()} or a checkpoint folder, found "
        f"{name!r}, which is neither"
    )
