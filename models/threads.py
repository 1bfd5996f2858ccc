"""Run numpy/scipy work on several row blocks at once, on threads.

numpy's partitions, element-wise arithmetic and scipy's sparse products release the GIL, so blocks of
rows processed on threads use every core without copying the inputs to other processes. Used where a
whole catalogue or every customer is processed at once (item-CF similarities, top-k for all
customers); a single request never goes through here.

The number of threads is the number of cores this process may run on, capped by
``STOREFRONT_THREADS`` when set (``1`` turns threading off).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, TypeVar

import numpy as np

T = TypeVar("T")
R = TypeVar("R")


def thread_count() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    limit = os.environ.get("STOREFRONT_THREADS", "").strip()
    if limit:
        try:
            cores = min(cores, int(limit))
        except ValueError:
            raise ValueError(f"STOREFRONT_THREADS must be a whole number, got {limit!r}") from None
    return max(1, cores)


def row_blocks(n_rows: int, max_rows: int) -> list[np.ndarray]:
    """Consecutive row ranges of at most ``max_rows`` rows, at least one per thread when there are enough rows."""
    if n_rows <= 0:
        return []
    per_block = max(1, min(int(max_rows), -(-n_rows // thread_count())))
    return [np.arange(start, min(start + per_block, n_rows)) for start in range(0, n_rows, per_block)]


def thread_map(function: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """``[function(item) for item in items]``, on up to :func:`thread_count` threads, results in order."""
    items = list(items)
    workers = min(thread_count(), len(items))
    if workers <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(function, items))
