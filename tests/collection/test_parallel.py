"""The chunk scheduler: order, who runs what, errors, and the process-wide generators."""

import os
import random

import numpy as np
import pytest

from playworld.collection.parallel import preserved_globals, run_chunks, seed_globals, split


def _square_remote(x):
    return x * x, os.getpid()


def _square_local(x):
    return x * x, os.getpid()


def _fail_on_three(x):
    if x == 3:
        raise ValueError("chunk 3 failed")
    return x


@pytest.mark.parametrize("n", [0, 1, 5, 48, 100])
@pytest.mark.parametrize("workers", [1, 2, 3])
def test_split_keeps_every_item_in_order(n, workers):
    items = list(range(n))
    chunks = split(items, workers)
    assert [x for c in chunks for x in c] == items
    assert all(chunks)
    if workers == 1:
        assert len(chunks) == min(n, 1)


def test_run_chunks_returns_results_in_order_from_both_processes():
    chunks = list(range(40))
    out = run_chunks(_square_remote, _square_local, chunks, workers=2)
    assert [r for r, _ in out] == [x * x for x in chunks]
    pids = {pid for _, pid in out}
    # this process starts working at once, a spawned one after its interpreter starts
    assert os.getpid() in pids
    assert run_chunks(_square_remote, _square_local, chunks[:1], workers=2) == [(0, os.getpid())]


def test_run_chunks_raises_a_chunks_error():
    with pytest.raises(ValueError, match="chunk 3"):
        run_chunks(_fail_on_three, _fail_on_three, list(range(6)), workers=2)
    with pytest.raises(ValueError, match="chunk 3"):
        run_chunks(_fail_on_three, _fail_on_three, list(range(6)), workers=1)


def test_seed_globals_and_preserved_globals():
    seed_globals(7)
    a = (random.random(), np.random.random())
    with preserved_globals():
        seed_globals(7)
        assert (random.random(), np.random.random()) == a
        seed_globals(8)
        random.random(), np.random.random()
    # back where it was before the block: the next draws continue the seed-7 stream
    seed_globals(7)
    random.random(), np.random.random()
    b = (random.random(), np.random.random())
    seed_globals(7)
    with preserved_globals():
        seed_globals(1)
    random.random(), np.random.random()
    assert (random.random(), np.random.random()) == b
