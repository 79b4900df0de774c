"""Intra-op threads for shared machines: the cores the load leaves free, at least one.

torch starts one thread per core. On cores that other processes keep busy, every op waits for its
slowest, descheduled thread: with two threads on two busy cores the float degradation pipeline
fell to 6 img/s, while one thread kept most of its speed (benchmarks/README.md). `auto` takes the
cores other processes leave free right now (a tenth of a second of /proc/stat; the load average
where there is none); a thread count set by the environment
(OMP_NUM_THREADS, as torchrun sets for each of its processes) or given as a number is kept.

>>> with intra_op_threads("auto") as count:         # doctest: +SKIP
...     restore_pages()                               # torch uses `count` threads here
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from typing import Iterator

import torch

from manurestore.errors import UsageError

THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def usable_cpus() -> int:
    """The cores this process may run on (its affinity mask, else all)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def free_cpus() -> int:
    """Usable cores less those other processes keep busy right now (at least one)."""
    busy = busy_cpus_now()
    if busy is None:
        try:
            busy = os.getloadavg()[0]
        except (AttributeError, OSError):
            return usable_cpus()
    return max(1, min(usable_cpus(), round(usable_cpus() - busy)))


def busy_cpus_now(window_s: float = 0.1) -> float | None:
    """How many cores are busy, from two readings of /proc/stat `window_s` apart (this process
    sleeps meanwhile, so the work is others'); None where there is no /proc/stat. The load
    average would answer a minute late: a command that follows another would see its load."""
    first = _cpu_times()
    if first is None:
        return None
    time.sleep(window_s)
    second = _cpu_times()
    if second is None:
        return None
    total = second[0] - first[0]
    idle = second[1] - first[1]
    if total <= 0:
        return None
    cores = os.cpu_count() or 1
    return cores * (total - idle) / total


def _cpu_times() -> tuple[int, int] | None:
    """(all jiffies, idle + iowait jiffies) summed over the CPUs, from /proc/stat's first line."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = [int(value) for value in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    if len(fields) < 5:
        return None
    return sum(fields[:8]), fields[3] + fields[4]


def choose_threads(setting: str | int) -> int | None:
    """The thread count `--threads` asks for: a whole number as given; `auto` the free cores, or
    None (leave torch alone) where the environment set a count."""
    if isinstance(setting, int) or str(setting).isdigit():
        count = int(setting)
        if count < 1:
            raise UsageError(f"--threads {setting}: use auto or a whole number from 1")
        return count
    if setting != "auto":
        raise UsageError(f"--threads {setting!r}: use auto or a whole number from 1")
    if any(os.environ.get(name) for name in THREAD_ENV):
        return None
    return free_cpus()


@contextmanager
def intra_op_threads(setting: str | int) -> Iterator[int]:
    """Within the block torch uses the chosen number of threads; the count before is restored after."""
    before = torch.get_num_threads()
    count = choose_threads(setting)
    if count is not None:
        torch.set_num_threads(count)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
