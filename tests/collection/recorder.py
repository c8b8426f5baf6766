"""A `playworld record` process on a real pseudo-terminal: keys in, screen text out."""

from __future__ import annotations

import contextlib
import os
import pty
import re
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\r")


class Recorder:
    """Runs `python -m playworld record ARGS` with a pty as its terminal."""

    def __init__(self, *args: str, cwd: Path | None = None) -> None:
        self.master, slave = pty.openpty()
        env = {**os.environ, "COLUMNS": "200", "LINES": "40", "TERM": "xterm"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "playworld", "record", *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )
        os.close(slave)
        self._raw = bytearray()
        self._stop = False
        self._reader = threading.Thread(target=self._read, name="recorder-pty", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while not self._stop:
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if ready:
                try:
                    data = os.read(self.master, 65536)
                except OSError:
                    return
                if not data:
                    return
                self._raw += data

    @property
    def text(self) -> str:
        return ANSI.sub("", self._raw.decode("utf-8", "replace"))

    def wait_for(self, pattern: str, timeout: float = 60.0) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(pattern, self.text)
            if m:
                return m
            if self.proc.poll() is not None:
                time.sleep(0.2)
                m = re.search(pattern, self.text)
                if m:
                    return m
                raise AssertionError(
                    f"recorder exited {self.proc.returncode} before {pattern!r}:\n{self.text[-3000:]}"
                )
            time.sleep(0.05)
        raise AssertionError(f"no {pattern!r} within {timeout} s:\n{self.text[-3000:]}")

    def keys(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 60.0) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            self.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self._stop = True
        self._reader.join(2.0)
        with contextlib.suppress(OSError):
            os.close(self.master)
