"""Recorded times of a store on one timeline: what viewers and exporters put their messages at.

Each row has the robot's time (`t`, or the first other time feature; rows / fps without one) and
each camera `<key>` its capture time `<key>_t`. Within an episode these are used as recorded. The
first episode placed starts at 0; a later episode keeps its recorded gap to the one before, unless
its clock went back (a twin reset, a merged store): then it starts one period after it. So times
never run backwards across episodes, and the tools that need that (rerun, MCAP readers) get it.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from playworld.datasets import Episode, Feature


def time_keys(features: Mapping[str, Feature]) -> tuple[str | None, dict[str, str]]:
    """(the robot's time key or None, camera key -> its capture time key)."""
    times = [k for k, f in features.items() if f.kind == "time"]
    cams = {k: f"{k}_t" for k, f in features.items() if f.is_image and f"{k}_t" in times}
    robot = [k for k in times if k not in cams.values()]
    main = "t" if "t" in robot else (robot[0] if robot else None)
    return main, cams


class EpisodeClock:
    """Places episodes one after another on the timeline (see the module docstring)."""

    def __init__(self, fps: float) -> None:
        self.period = 1.0 / fps
        self.end: float | None = None  # timeline end of the last placed episode, s
        self.shift = 0.0  # timeline - recorded time of the last placed episode, s

    def place(self, episode: Episode) -> dict[str, np.ndarray]:
        """Timeline times (n,) float64 s for every feature of `episode`.

        Cameras get their capture times, every other feature the robot's time.
        """
        features = episode.store.features
        n = len(episode)
        main, cams = time_keys(features)
        raw = {
            k: np.asarray(episode[k][:], np.float64).reshape(n) for k in {main, *cams.values()} if k
        }
        robot = raw[main] if main else (episode.start + np.arange(n)) * self.period
        first = min([float(robot[0]), *(float(v[0]) for v in raw.values())])
        last = max([float(robot[-1]), *(float(v[-1]) for v in raw.values())])
        if self.end is None:
            self.shift = -first
        else:
            self.shift = max(self.shift, self.end + self.period - first)
        self.end = last + self.shift
        return {k: (raw[cams[k]] if k in cams else robot) + self.shift for k in features}
