"""Run one independent, CPU-bound step in a second process while this process goes on (:func:`in_background`).

Some steps of a training command are single-threaded and independent of what follows them: SVD++'s refit on
every customer (Surprise's Cython loop) does not depend on the content-blend tuning that runs on the validation
window. With two cores, the refit runs in a child process beside it, so the command takes about the longer of the
two instead of their sum (``pipelines.recommenders.train_svdpp``).

The child is a fresh interpreter (multiprocessing's ``spawn`` start method: no copy of this process's memory, no
inherited MLflow run or thread state), gets its arguments pickled, and returns its result pickled, so the function
must be importable and its arguments and result small next to the work (arrays and fitted models, not the
shop's tables). An error in the child is raised again by :meth:`Pending.result`; an error or interrupt in this
process ends the child (leaving the ``with`` block terminates it). With one usable core
(:func:`models.threads.thread_count`, so ``STOREFRONT_THREADS=1`` too) the step runs in this process instead, when
its result is asked for, with the same result.

The child's memory counts towards the job's: :func:`peak_memory_gb` is the largest sampled sum of this process's
and its children's resident memory (:func:`watch_memory`), and never less than this process's own peak.
"""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import threading
import time
from typing import Any, Callable, Iterator

logger = logging.getLogger(__name__)


class Pending:
    """A step's result to come: :meth:`result` waits for it (and raises the step's error)."""

    def __init__(self, function: Callable[..., Any], args: tuple, async_result=None):
        self._function, self._args, self._async = function, args, async_result

    @property
    def background(self) -> bool:
        """Whether the step runs in another process."""
        return self._async is not None

    def result(self):
        if self._async is None:
            return self._function(*self._args)
        return self._async.get()


@contextlib.contextmanager
def in_background(function: Callable[..., Any], *args, enabled: bool = True) -> Iterator[Pending]:
    """``with in_background(f, *args) as pending: ...; value = pending.result()``: ``f(*args)`` in a child process
    started on entry (``enabled`` False or one usable core: in this process, at :meth:`Pending.result`). The child
    is ended on leaving the block, so ask for the result inside it."""
    from models.threads import thread_count

    if not enabled or thread_count() < 2:
        yield Pending(function, args)
        return
    import multiprocessing

    name = getattr(function, "__qualname__", repr(function))
    logger.info("%s runs in a second process", name)
    with multiprocessing.get_context("spawn").Pool(1) as pool:  # leaving the block terminates and reaps the child
        yield Pending(function, args, pool.apply_async(function, args))


def _status_kb(pid: int | str, field: str) -> int:
    """A ``/proc/<pid>/status`` figure in kB (0 when the process is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _descendants(root: int) -> list[int]:
    """The pids of ``root``'s children, grandchildren, ... (from every process's parent in ``/proc/<pid>/stat``)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), ()):
            found.append(child)
            todo.append(child)
    return found


class _TreeWatch:
    """The largest sum of resident memory of this process and its descendants, sampled every ``interval`` seconds on
    a daemon thread."""

    def __init__(self, interval: float):
        self.peak_kb = 0
        self._interval = interval
        threading.Thread(target=self._run, name="storefront-memory-watch", daemon=True).start()

    def sample(self) -> None:
        me = os.getpid()
        self.peak_kb = max(self.peak_kb, sum(_status_kb(pid, "VmRSS") for pid in [me, *_descendants(me)]))

    def _run(self) -> None:
        while True:
            self.sample()
            time.sleep(self._interval)


_WATCH: _TreeWatch | None = None


def watch_memory(interval: float = 0.5) -> None:
    """Start sampling the memory of this process with its children (:func:`peak_memory_gb`); once per process. Not
    on a system without ``/proc``."""
    global _WATCH
    if _WATCH is None and os.path.isdir("/proc/self"):
        _WATCH = _TreeWatch(interval)


def release_memory() -> None:
    """Give freed memory back to the system between the main job's stages: a garbage collection, then glibc's
    ``malloc_trim`` where there is one (a family's freed tables otherwise stay in the allocator's heap: 0.3 GB after
    item-CF at 50,000 customers)."""
    import ctypes
    import ctypes.util
    import gc

    gc.collect()
    libc = ctypes.util.find_library("c")
    try:
        ctypes.CDLL(libc).malloc_trim(0)
    except (OSError, AttributeError, TypeError):  # not glibc
        pass


def peak_memory_gb() -> float:
    """The job's peak resident memory so far, in GB: the largest sampled sum of this process and its children
    (:func:`watch_memory`: SVD++'s refit process counts), and at least this process's own exact peak.

    Not ``getrusage(RUSAGE_CHILDREN)``: on Linux a child started by fork and exec reports at least its parent's
    memory at the fork (the exec inherits the old address space's high-water mark), so it would count the parent
    twice."""
    if _WATCH is not None:
        _WATCH.sample()
    own = _status_kb("self", "VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return max(own, _WATCH.peak_kb if _WATCH is not None else 0) / 1024**2
