from __future__ import annotations

import threading

import numpy as np
import pytest
from scipy import sparse

from models.recommenders.itemcf import ItemCFScorer, similarity_matrix
from models.recommenders.engine import Recommender
from models.threads import row_blocks, thread_count, thread_map


def test_row_blocks_cover_every_row_once_in_order(monkeypatch):
    monkeypatch.setenv("STOREFRONT_THREADS", "2")
    blocks = row_blocks(11, max_rows=100)
    assert len(blocks) == 2  # one per thread when the size cap allows
    np.testing.assert_array_equal(np.concatenate(blocks), np.arange(11))
    blocks = row_blocks(11, max_rows=3)
    assert [len(b) for b in blocks] == [3, 3, 3, 2]
    assert row_blocks(0, 5) == []


def test_thread_count_honours_the_environment(monkeypatch):
    monkeypatch.setenv("STOREFRONT_THREADS", "1")
    assert thread_count() == 1
    monkeypatch.setenv("STOREFRONT_THREADS", "many")
    with pytest.raises(ValueError, match="STOREFRONT_THREADS must be a whole number, got 'many'"):
        thread_count()


def test_thread_map_keeps_the_order_and_uses_threads(monkeypatch):
    monkeypatch.setenv("STOREFRONT_THREADS", "2")
    seen = set()

    def work(value):
        seen.add(threading.get_ident())
        return value * value

    assert thread_map(work, range(20)) == [v * v for v in range(20)]
    monkeypatch.setenv("STOREFRONT_THREADS", "1")
    seen.clear()
    assert thread_map(work, range(5)) == [0, 1, 4, 9, 16]
    assert seen == {threading.get_ident()}  # no pool: the caller's thread


@pytest.mark.parametrize("n_neighbours", [3, 39])
def test_threaded_and_single_threaded_results_are_identical(monkeypatch, n_neighbours):
    rng = np.random.default_rng(4)
    weights = sparse.random(120, 40, density=0.1, random_state=rng, format="csr") * 3
    purchased = sparse.csr_matrix(weights > 0)
    products = np.array([f"P{j}" for j in range(40)])
    results = []
    for threads in ("1", "2"):
        monkeypatch.setenv("STOREFRONT_THREADS", threads)
        matrix = similarity_matrix(weights, similarity="asymmetric", alpha=0.4, n_neighbours=n_neighbours)
        rec = Recommender(ItemCFScorer(weights, matrix, products, purchased), [f"C{i}" for i in range(120)],
                          products, purchased, np.arange(40.0))
        results.append((matrix.toarray(), *rec.top_k_indices(np.arange(120), k=5, chunk_size=7)))
    for single, threaded in zip(*results):
        np.testing.assert_array_equal(single, threaded)
