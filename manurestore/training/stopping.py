"""Stop signals: SIGTERM (what schedulers and `kill` send) stops a run the way Ctrl-C does.

Python turns Ctrl-C into KeyboardInterrupt, which the training loop catches to save its state;
SIGTERM's default is to end the process at once, losing everything since the last checkpoint.
While a run trains, SIGTERM raises `StopRequested` (a KeyboardInterrupt) instead, once: a second
one during the save is ignored, so the save finishes.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator

STOP_SIGNALS = ("SIGTERM",)


class StopRequested(KeyboardInterrupt):
    """A stop signal arrived: the loop saves and stops as for Ctrl-C; the process exits 128 + signal."""

    def __init__(self, signal_name: str, exit_code: int):
        super().__init__(signal_name)
        self.signal_name = signal_name
        self.exit_code = exit_code


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block, a stop signal raises StopRequested in the main thread (elsewhere: no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    raised = False

    def handle(signum, frame):
        nonlocal raised
        if raised:
            return
        raised = True
        name = signal.Signals(signum).name
        raise StopRequested(name, 128 + signum)

    previous = {}
    for name in STOP_SIGNALS:
        number = getattr(signal, name, None)
        if number is not None:
            previous[number] = signal.signal(number, handle)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
