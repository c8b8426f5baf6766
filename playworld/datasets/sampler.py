"""Fixed-length windows over the episodes of a play store, for training (pure numpy, no I/O).

A window is ``window`` consecutive steps of one episode. Its first ``history`` steps are the
observation history, the last of them the *current* step; the remaining ``window - history`` are
the future (the actions to predict). As in diffusion_policy's ``SequenceSampler``, a window may
start before its episode (up to ``pad_before`` steps) or run past its end (up to ``pad_after``
steps); those steps repeat the episode's first or last step, and the ``pad`` mask marks them.

Episode ``e`` covers the rows ``[ends[e-1], ends[e])`` (``ends[-1] = 0``) of every data array.
With ``L`` its length, its windows start at the episode-relative offsets

    s = -pad_before, -pad_before + stride, ..., <= L - window + pad_after

so it yields ``ceil((L - window + pad_before + pad_after + 1) / stride)`` windows (0 when that is
not positive). Every window holds at least one real step because ``pad_before, pad_after <
window``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from playworld.errors import ConfigError


class WindowSampler:
    """All windows of ``window`` steps over a set of episodes, indexable ``0..len-1``.

    Args:
        episode_ends: (E,) exclusive end row of every episode, strictly increasing, positive.
        window: steps per window (T).
        history: steps of the window at or before the current step (1 <= history <= window).
        stride: keep every ``stride``-th start position within each episode.
        pad_before: steps a window may start before its episode; default ``history - 1``.
        pad_after: steps a window may run past its episode; default ``window - history``.
        episodes: indices of the episodes to sample (e.g. a train split); default all.

    Attributes:
        sample_episode: (N,) int64 episode index of every window.
        sample_start: (N,) int64 absolute row of every window's first step (may precede its
            episode's first row by up to ``pad_before``).

    Raises:
        ConfigError: on an invalid argument (the message names the valid range).
    """

    def __init__(
        self,
        episode_ends: Sequence[int] | np.ndarray,
        window: int,
        *,
        history: int = 1,
        stride: int = 1,
        pad_before: int | None = None,
        pad_after: int | None = None,
        episodes: Sequence[int] | np.ndarray | None = None,
    ) -> None:
        ends = np.asarray(episode_ends, dtype=np.int64).reshape(-1)
        if len(ends) and (ends[0] <= 0 or (np.diff(ends) <= 0).any()):
            raise ConfigError(
                f"episode_ends must be strictly increasing positive rows, got {ends[:8]}..."
            )
        window, history, stride = int(window), int(history), int(stride)
        if window < 1:
            raise ConfigError(f"window must be >= 1 step, got {window}")
        if not 1 <= history <= window:
            raise ConfigError(f"history must be in [1, window={window}], got {history}")
        if stride < 1:
            raise ConfigError(f"stride must be >= 1, got {stride}")
        pad_before = history - 1 if pad_before is None else int(pad_before)
        pad_after = window - history if pad_after is None else int(pad_after)
        for name, value in (("pad_before", pad_before), ("pad_after", pad_after)):
            if not 0 <= value <= window - 1:
                raise ConfigError(f"{name} must be in [0, window-1={window - 1}], got {value}")
        if episodes is None:
            eps = np.arange(len(ends), dtype=np.int64)
        else:
            eps = np.asarray(episodes, dtype=np.int64).reshape(-1)
            bad = eps[(eps < 0) | (eps >= len(ends))]
            if len(bad):
                raise ConfigError(
                    f"episode {int(bad[0])} does not exist; valid episode indices are 0..{len(ends) - 1}"
                )
        self.episode_ends = ends
        self.window, self.history, self.stride = window, history, stride
        self.pad_before, self.pad_after = pad_before, pad_after
        self.episodes = eps

        starts = np.concatenate([[0], ends[:-1]])  # (E,) first row of every episode
        self._ep_start, self._ep_stop = starts, ends
        lengths = ends[eps] - starts[eps]  # (K,)
        positions = np.maximum(lengths - window + pad_before + pad_after + 1, 0)
        counts = -(-positions // stride)  # ceil; (K,) windows per selected episode
        total = int(counts.sum())
        self.sample_episode = np.repeat(eps, counts)  # (N,)
        first = np.cumsum(counts) - counts  # (K,) first sample of each selected episode
        offset = np.arange(total, dtype=np.int64) - np.repeat(first, counts)  # (N,) within episode
        self.sample_start = starts[self.sample_episode] - pad_before + offset * stride  # (N,)

    def __len__(self) -> int:
        return len(self.sample_start)

    def batch_indices(self, indices: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows and pad masks of several windows at once.

        Args:
            indices: (B,) window indices in ``[-len, len)``.

        Returns:
            rows: (B, window) int64 absolute rows into the data arrays, padded steps repeating
                their episode's first or last row; non-decreasing along each window.
            pad: (B, window) bool, True where the step lies outside the episode.
        """
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = len(self)
        if len(idx) and (idx.min() < -n or idx.max() >= n):
            bad = int(idx[(idx < -n) | (idx >= n)][0])
            raise IndexError(f"window {bad} out of range for a sampler of {n} windows")
        idx = idx % max(n, 1)
        ep = self.sample_episode[idx]
        lo, hi = self._ep_start[ep][:, None], self._ep_stop[ep][:, None]  # (B, 1)
        raw = self.sample_start[idx][:, None] + np.arange(self.window, dtype=np.int64)  # (B, T)
        pad = (raw < lo) | (raw >= hi)
        return np.clip(raw, lo, hi - 1), pad

    def window_indices(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows ``(window,)`` int64 and pad mask ``(window,)`` bool of window ``index``."""
        rows, pad = self.batch_indices([index])
        return rows[0], pad[0]

    def episode_of(self, index: int) -> int:
        """The episode window ``index`` belongs to."""
        self.batch_indices([index])  # range check
        return int(self.sample_episode[index])

    def current_row(self, index: int) -> int:
        """Absolute row of the current step (window step ``history - 1``, edge-clipped)."""
        rows, _ = self.batch_indices([index])
        return int(rows[0, self.history - 1])

    def __repr__(self) -> str:
        return (
            f"WindowSampler(windows={len(self)}, episodes={len(self.episodes)}, window={self.window}, "
            f"history={self.history}, stride={self.stride}, pad=({self.pad_before}, {self.pad_after}))"
        )


def split_episodes(
    num_episodes: int, val_ratio: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Split episode indices into train and validation sets, deterministically for a seed, and
    stable as a store grows: episodes recorded later never move an earlier one to the other side.

    Each episode draws a fixed number in [0, 1) from ``(seed, episode index)`` (a hash, not a
    permutation of all episodes) and goes to validation when it is below ``val_ratio``; about
    ``num_episodes * val_ratio`` do. Two rules keep both sides usable in small stores: with
    ``val_ratio > 0`` and at least two episodes, validation gets at least one (the lowest draw)
    and training keeps at least one (the highest).

    Returns:
        train, val: sorted int64 arrays of episode indices, disjoint, together ``0..num_episodes-1``.

    Raises:
        ConfigError: ``num_episodes < 1`` or ``val_ratio`` outside ``[0, 1)``.
    """
    num_episodes = int(num_episodes)
    if num_episodes < 1:
        raise ConfigError(
            f"cannot split {num_episodes} episodes; a split needs at least one episode"
        )
    if not 0.0 <= val_ratio < 1.0:
        raise ConfigError(f"val_ratio must be in [0, 1), got {val_ratio}")
    draws = episode_draws(num_episodes, seed)
    is_val = draws < val_ratio
    if val_ratio > 0 and num_episodes > 1:
        is_val[np.argmin(draws)] = True
        is_val[np.argmax(draws)] = False
    else:
        is_val[:] = False
    index = np.arange(num_episodes, dtype=np.int64)
    return index[~is_val], index[is_val]


def episode_draws(num_episodes: int, seed: int) -> np.ndarray:
    """A number in [0, 1) per episode that depends only on ``(seed, episode index)``
    (SplitMix64 of the two; vectorised, wrap-around uint64 arithmetic)."""
    with np.errstate(over="ignore"):
        x = np.arange(num_episodes, dtype=np.uint64) + np.uint64(seed % 2**64) * np.uint64(
            0x9E3779B97F4A7C15
        )
        for _ in range(2):  # two rounds: neighbouring indices and seeds decorrelate
            x = x + np.uint64(0x9E3779B97F4A7C15)
            x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(11)).astype(np.float64) / float(2**53)
