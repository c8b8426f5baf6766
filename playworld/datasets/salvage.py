"""Salvage a damaged store: copy every intact episode into a new store, list what was dropped.

    salvage(src, out)   -> SalvageReport (kept and dropped episodes, with the reason of each drop)

The source is only read (opened read-only, never locked, never trimmed). An episode is dropped
when `validate` (deep: every camera frame decoded) finds any of its rows damaged (a missing,
truncated or corrupt file, a frame that does not decode, rows past the end of an array, NaN/inf
values), or when copying it fails anyway. Kept episodes go through the store's own commit path
(`copy_episode`): their rows are bit for bit those of the source, their metadata is kept, and
the new store's statistics cover exactly the kept episodes.
"""

from __future__ import annotations

import dataclasses
import os

from playworld.datasets.maintenance import UncheckedStore, building_store, copy_episode, validate
from playworld.errors import StoreError


@dataclasses.dataclass
class SalvageReport:
    """What `salvage` kept (source episode indices, in order) and dropped (index -> why)."""

    src: str
    out: str
    episodes: int  # committed episodes of the source
    kept: list[int]
    dropped: dict[int, str]
    steps: int  # steps of the new store

    def lines(self) -> list[str]:
        out = [f"dropped episode {i}: {why}" for i, why in sorted(self.dropped.items())]
        out.append(
            f"wrote {self.out}: kept {len(self.kept)} of {self.episodes} episodes "
            f"({self.steps} steps), dropped {len(self.dropped)}; {self.src} is unchanged"
        )
        return out


def salvage(src: str | os.PathLike[str], out: str | os.PathLike[str]) -> SalvageReport:
    """Write a new store at ``out`` with every intact committed episode of ``src``.

    Raises `StoreNotFoundError` / `StoreFormatError` when ``src`` cannot be opened at all (no
    store, or an unreadable commit record: then no episode can be located), `StoreError` when
    ``out`` is taken. A failed salvage removes what it wrote at ``out``.
    """
    report = validate(src, deep=True)
    store = UncheckedStore.open(src, "r")
    dropped = dict(report.damaged)
    kept: list[int] = []
    with building_store(out, store) as dst:
        for i in range(len(store)):
            if i in dropped:
                continue
            try:
                copy_episode(store, i, dst)
            except StoreError as e:  # damage validate could not see (e.g. changed meanwhile)
                dropped[i] = " ".join(str(e).splitlines())
            else:
                kept.append(i)
        steps = dst.num_steps
    return SalvageReport(store.url, os.fspath(out), len(store), kept, dropped, steps)
