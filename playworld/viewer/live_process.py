"""The live view's rerun side: a child process that logs column batches at idle CPU priority.

`LiveView` (live.py) runs in the loop's process and does only the cheap part: it collects ticks,
turns a batch of them into columns (numpy arrays, images already subsampled) and sends the batch
over a socket. This child does what costs: rerun's Python API, Arrow conversion, and rerun's own
threads (its chunk batcher, the gRPC server that keeps the data for the web viewer, the .rrd
file writer). It runs under SCHED_IDLE, as the store's frame compressor does
(`playworld.datasets.frame_compressor`): it gets only CPU time the loop, the store's writer and
the other processes of the machine leave, and shares no GIL with the loop. Measured on 2 cores
(bench/loop.py's ticks replayed at 30 Hz): the same logging in a thread of the loop's process took
2-3 ms of CPU per tick, most of it holding the loop's GIL.

Protocol (pickled tuples over one socket, large arrays out of band (`send_message`), the child
answering where noted):

    ("open", target, name)       -> ("ready", url | None) or ("error", message)
    ("static", features, info)      image features at their logged (subsampled) size
    ("batch", batch)                a dict from `LiveView._columns` (see there)
    ("close",)                   -> ("closed", logged_ticks, first_error | None, cpu_s)

After "close" a file or native-viewer target is finished and the child exits; a web target keeps
serving until the socket closes (the parent exits or calls `LiveView.stop_serving`). End of file
at any time ends the child, so it never outlives its loop's process.
"""

from __future__ import annotations

import contextlib
import pickle
import time
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from playworld.datasets import Feature
from playworld.errors import PlayworldError
from playworld.priority import lower_priority
from playworld.viewer.store_log import entity, feature_columns

SCALAR = Feature((1,), "float64")
OUT_OF_BAND_BYTES = 1 << 16
CHILD = "import sys; from playworld.viewer.live_process import main; main(int(sys.argv[1]))"


def send_message(conn: Connection, message: Any) -> None:
    """Pickle `message` with its large arrays out of band, each sent from its own memory: no
    copy into a new pickle (allocating the pages of a fresh 1 MB buffer costs ~0.5 ms)."""
    buffers: list[pickle.PickleBuffer] = []

    def out_of_band(b: pickle.PickleBuffer) -> bool:
        if b.raw().nbytes < OUT_OF_BAND_BYTES:
            return True  # in the pickle
        buffers.append(b)
        return False

    head = pickle.dumps(message, protocol=5, buffer_callback=out_of_band)
    conn.send_bytes(len(buffers).to_bytes(4, "little") + head)
    for b in buffers:
        conn.send_bytes(b.raw())


def recv_message(conn: Connection) -> Any:
    """A message sent by `send_message`. Unpickling is safe here: the only peer is the parent
    process at the other end of a `socket.socketpair` (an inherited fd, no address anyone else
    can reach), as in multiprocessing's own pipes; nothing is read from files."""
    head = conn.recv_bytes()
    n = int.from_bytes(head[:4], "little")
    buffers = [conn.recv_bytes() for _ in range(n)]
    return pickle.loads(head[4:], buffers=buffers)


def log_batch(rr: Any, rec: Any, features: dict[str, Feature], batch: dict[str, Any]) -> None:
    """One `send_columns` per entity of a batch (see `LiveView._columns`): its rows on the `time`
    and `tick` timelines. Keys that are not features (`loop/...`) are scalar series."""
    numbers, times = batch["numbers"], batch["times"]
    for key, idx, rows, step in batch["entities"]:
        f = features.get(key, SCALAR)
        if f.is_image:  # frames with every step-th row; every step-th column is taken here
            rows = np.stack(rows)[:, :, ::step] if step > 1 else np.stack(rows)
        rec.send_columns(
            entity(key, f) if key in features else key,
            indexes=[
                rr.TimeColumn("time", duration=times[idx]),
                rr.TimeColumn("tick", sequence=numbers[idx]),
            ],
            columns=feature_columns(rr, f, rows),
        )


def main(fd: int) -> None:
    # end of file: the loop's process closed its end (or died), nothing left to log
    with contextlib.suppress(EOFError, OSError):
        _serve(Connection(fd))


def _serve(conn: Connection) -> None:
    from playworld.viewer.sinks import import_rerun, open_recording
    from playworld.viewer.store_log import log_static

    kind, target, name = recv_message(conn)
    assert kind == "open"
    try:
        rr = import_rerun()  # imported at normal priority: the loop has not started yet
        lower_priority()  # before rerun starts its threads, which inherit it
        rec, url = open_recording(target, name)
    except Exception as e:  # a busy port, no display: the parent raises it as one line
        ours = isinstance(e, PlayworldError)
        send_message(conn, ("error", str(e) if ours else f"{type(e).__name__}: {e}"))
        return
    send_message(conn, ("ready", url))
    cpu0 = time.process_time()  # the view's work, not the child's imports and start
    logged, error, features = 0, None, {}
    while True:
        kind, *args = recv_message(conn)
        if kind == "close":
            break
        try:
            if kind == "static":
                features = dict(args[0])
                log_static(rec, *args)
            else:
                log_batch(rr, rec, features, args[0])
                logged += len(args[0]["numbers"])
        except Exception as e:  # keep serving what was logged; the parent reports the first error
            error = error or f"{type(e).__name__}: {e}"
    rec.flush()
    send_message(conn, ("closed", logged, error, time.process_time() - cpu0))
    if not target.web:
        rec.disconnect()
        return
    with contextlib.suppress(EOFError, OSError):
        while True:
            recv_message(conn)  # serve the web viewer until the parent closes the socket
