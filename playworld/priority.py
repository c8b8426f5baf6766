"""Background processes that only take CPU time the control loop does not want.

    lower_priority()   # in a child process, before it starts its threads (they inherit it)

Used by the store's frame compressor and the live view's rerun process: each is a separate
process, sharing no GIL with the loop, so idle scheduling cannot stall the loop through a lock.
"""

from __future__ import annotations

import contextlib
import os

#: The nice value used where SCHED_IDLE is refused.
CHILD_NICE = 10


def lower_priority() -> None:
    """SCHED_IDLE for this process (and the threads it starts later), else nice `CHILD_NICE`."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        with contextlib.suppress(OSError):
            os.nice(CHILD_NICE)
