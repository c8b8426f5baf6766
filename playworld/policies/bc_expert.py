"""Per-task expert BC: the baseline of the Play-LMP paper (one policy per task, trained on that
task's expert demonstrations only).

The demonstrations are the successful, task-labelled segments of an autoplay store (each is a
scripted expert's run of one task: `segments` in the episode metadata), so the baseline sees the
same total number of expert steps as the play-trained policies, cut by task. Every task gets its
own MLP + logistic-mixture head (`pi_task(a_t | s_t)`); `reset(goal=task_name)` picks one. The
networks live in one `ModuleDict`, saved as one policy folder.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from playworld.datasets import Normalizer, PlayStore
from playworld.errors import ConfigError, FeatureError, PolicyError
from playworld.features import Feature
from playworld.policies.base import POLICIES, Observation, Policy, PolicyConfig
from playworld.policies.gcbc import mlp
from playworld.policies.goal import (
    ACT_THREADS,
    EMA_DECAY,
    KEYPOINTS_KEY,
    flat_inputs,
    relative_inputs,
    relative_width,
)
from playworld.policies.hindsight import ACTION_MODE, STATE_MODE, STD_FLOOR, feature_dims
from playworld.policies.mixture import LogisticMixtureHead
from playworld.sim.tasks import TASKS
from playworld.training.data import BatchedDataset


@dataclass(frozen=True)
class BCExpertConfig(PolicyConfig):
    """`tasks`: the tasks with a network (default: every task of the twin).
    `relative_keypoints`: also feed every keypoint site relative to the end effector (needs
    `keypoints` among `obs_keys`), as the goal policies can: a policy that must reach objects
    placed anywhere sees where they are from the gripper."""

    tasks: tuple[str, ...] = ()
    obs_keys: tuple[str, ...] = ("state",)
    relative_keypoints: bool = False
    hidden: int = 256
    layers: int = 3
    mixtures: int = 10
    bins: int = 256
    sample: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "tasks", tuple(self.tasks))
        object.__setattr__(self, "obs_keys", tuple(self.obs_keys))
        if self.n_obs_steps != 1 or self.n_action_steps != 1:
            raise ConfigError("expected n_obs_steps = n_action_steps = 1 for bc-expert")
        if min(self.hidden, self.layers, self.mixtures) < 1 or self.bins < 2:
            raise ConfigError("expected hidden, layers, mixtures >= 1 and bins >= 2")
        if self.relative_keypoints and KEYPOINTS_KEY not in self.obs_keys:
            raise ConfigError(
                f"expected {KEYPOINTS_KEY!r} among obs_keys with relative_keypoints, found "
                f"{self.obs_keys}"
            )


def bc_inputs(
    config: BCExpertConfig, normalizer: Normalizer, batch: Mapping[str, torch.Tensor]
) -> torch.Tensor:
    """The observation (B, ...) as the networks see it: normalised `obs_keys`, plus with
    `relative_keypoints` the sites relative to the end effector (B, D)."""
    x = flat_inputs(normalizer, batch, config.obs_keys, lead=1)
    if not config.relative_keypoints:
        return x
    kp = batch[KEYPOINTS_KEY].float()  # (B, K, 3), site 0 the end effector
    return torch.cat([x, relative_inputs(kp, kp[..., 0, :])], -1)


class ExpertSteps(BatchedDataset):
    """Steps of the successful task segments of a store: obs keys (B, *shape), `action` (B, A),
    `task` (B,) int64 (index into `tasks`). `max_segments`: only the first that many successful
    segments, in store order (a data curve: the first N trajectories of a play run)."""

    def __init__(
        self,
        store: str | os.PathLike[str] | PlayStore,
        config: BCExpertConfig | None = None,
        split: str = "all",
        max_segments: int | None = None,
    ) -> None:
        config = config or BCExpertConfig()
        if max_segments is not None and max_segments < 1:
            raise ConfigError(f"expected max_segments >= 1, found {max_segments}")
        opened = store if isinstance(store, PlayStore) else PlayStore.open(store, "r")
        try:
            features = dict(opened.features)
            for k in (*config.obs_keys, "action"):
                if k not in features:
                    raise FeatureError(
                        f"expected feature {k!r} in the store {opened.url}, found {sorted(features)}"
                    )
            ends = np.asarray(opened.episode_ends, np.int64)
            starts = np.concatenate([[0], ends[:-1]])
            rows, labels = [], []
            for e in range(len(ends)):
                for seg in opened.episode_metadata(e).get("segments") or []:
                    if seg.get("success") and len(rows) != max_segments:
                        r = np.arange(starts[e] + seg["start"], starts[e] + seg["end"])
                        rows.append(r)
                        labels += [seg["task"]] * len(r)
            n = opened.num_steps
            keys = (*config.obs_keys, "action")
            self.arrays = {k: opened.read(k, 0, n).astype(np.float32, copy=False) for k in keys}
            self.stats = {k: opened.stats[k] for k in keys if k in opened.stats}
            self.url = opened.url
        finally:
            if opened is not store:
                opened.close()
        if not rows:
            raise ConfigError(
                f"expected task segments with success in {self.url} (an autoplay store), found none"
            )
        # every twin task gets a network, also one the play never succeeded at (it stays
        # untrained, and fails, as a baseline without demonstrations would)
        self.tasks = config.tasks or tuple(TASKS)
        keep = np.isin(np.asarray(labels), self.tasks)
        self.rows = np.concatenate(rows)[keep]
        order = {t: i for i, t in enumerate(self.tasks)}
        self.task = np.array([order[t] for t in np.asarray(labels)[keep]], np.int64)
        self.config = dataclasses.replace(config, tasks=self.tasks)
        self.features: dict[str, Feature] = {k: features[k] for k in keys}

    def __len__(self) -> int:
        return len(self.rows)

    def normalizer(self) -> Normalizer:
        modes = {k: STATE_MODE for k in self.config.obs_keys}
        modes["action"] = ACTION_MODE
        return Normalizer.from_stats(self.stats, modes, features=self.features, eps=STD_FLOOR)

    def __getitems__(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        idx = np.asarray(indices, np.int64)
        rows = self.rows[idx]
        out = {k: torch.from_numpy(v[rows]) for k, v in self.arrays.items()}
        out["task"] = torch.from_numpy(self.task[idx].astype(np.int64))
        return out


class BCExpertNet(nn.Module):
    """One MLP + mixture head per task."""

    def __init__(self, config: BCExpertConfig, obs_dim: int, action_dim: int) -> None:
        super().__init__()
        self.config = c = config
        self.nets = nn.ModuleList(
            nn.Sequential(
                mlp(obs_dim, c.hidden, c.layers),
                LogisticMixtureHead(c.hidden, action_dim, c.mixtures, c.bins),
            )
            for _ in c.tasks
        )

    def loss(
        self, batch: Mapping[str, torch.Tensor], normalizer: Normalizer
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        """Mean NLL per action over the batch, each step through its task's network."""
        c = self.config
        x = bc_inputs(c, normalizer, batch)  # (B, D)
        a = normalizer.normalize("action", batch["action"].float())  # (B, A)
        total = x.new_zeros(())
        for t in torch.unique(batch["task"]).tolist():
            sel = batch["task"] == t
            trunk, head = self.nets[t]
            total = total + head.nll(trunk(x[sel]), a[sel]).sum()
        nll = total / x.shape[0]
        return nll, {"nll": nll.detach()}


class BCExpertPolicy(Policy):
    """Per-task BC; `reset(seed, goal=task_name)` picks the task's network."""

    type = "bc-expert"
    config_class = BCExpertConfig
    train_defaults = {"steps": 4000, "batch_size": 256, "lr": 1e-3, "ema_decay": EMA_DECAY}

    def __init__(self, config: BCExpertConfig | None = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        if self.normalizer is None:
            raise PolicyError("policy 'bc-expert' needs its normaliser (none was given)")
        if not self.config.tasks:
            raise PolicyError("expected at least one task for policy 'bc-expert', found none")
        c = self.config
        obs_dim = feature_dims(self.observation_features, c.obs_keys)
        obs_dim += relative_width(c.relative_keypoints, self.observation_features)
        self.model = BCExpertNet(self.config, obs_dim, self.action_dim)
        self.generator = torch.Generator().manual_seed(0)
        self._task: int | None = None
        torch.set_num_threads(ACT_THREADS)

    def reset(self, seed: int | None = None, goal: Any = None) -> None:
        super().reset(seed, goal)
        self.generator.manual_seed(0 if seed is None else int(seed) % 2**63)
        if not isinstance(goal, str) or goal not in self.config.tasks:
            raise PolicyError(
                f"expected a task name among {list(self.config.tasks)} for policy 'bc-expert', "
                f"found {goal if isinstance(goal, str) else type(goal).__name__!r}"
            )
        self._task = self.config.tasks.index(goal)

    def predict_chunk(self, obs: Observation) -> np.ndarray:
        if self._task is None:
            raise PolicyError("call reset(seed, goal=task_name) before acting with 'bc-expert'")
        c = self.config
        batch = {k: torch.as_tensor(np.asarray(obs[k]))[:, -1] for k in c.obs_keys}
        with torch.no_grad():
            x = bc_inputs(c, self.normalizer, batch)
            trunk, head = self.model.nets[self._task]
            a = head.act(trunk(x), c.sample, self.generator)
        return np.asarray(self.normalizer.unnormalize("action", a[:, None].numpy()), np.float32)

    def loss(self, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, Any]]:
        return self.model.loss(batch, self.normalizer)

    @classmethod
    def dataset(cls, store: Any, config: BCExpertConfig, data: Mapping[str, Any]) -> ExpertSteps:
        unknown = sorted(set(data) - {"max_segments"})
        if unknown:
            raise ConfigError(f"expected data settings among ['max_segments'], found {unknown}")
        return ExpertSteps(store, config, max_segments=data.get("max_segments"))

    @classmethod
    def from_dataset(cls, data: ExpertSteps, config: BCExpertConfig | None = None, **info: Any):
        return cls(
            data.config,
            observation_features={k: data.features[k] for k in data.config.obs_keys},
            action_features={"action": dataclasses.replace(data.features["action"], kind="action")},
            normalizer=data.normalizer(),
            info=info,
        )

    @classmethod
    def example(cls, tmp_path: Any) -> BCExpertPolicy:
        norm = Normalizer(
            {
                "state": {"mode": "identity", "center": [0.0], "scale": [1.0]},
                "action": {"mode": "identity", "center": [0.0], "scale": [1.0]},
            }
        )
        return cls(
            BCExpertConfig(tasks=("turn_on_light", "open_drawer"), hidden=32, layers=1),
            observation_features={"state": Feature((40,), "float64", privileged=True)},
            action_features={"action": Feature((7,), "float32", kind="action")},
            normalizer=norm,
        )


POLICIES.register("bc-expert", BCExpertConfig, BCExpertPolicy)
