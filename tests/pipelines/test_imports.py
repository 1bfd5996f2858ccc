from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from pipelines.imports import import_off_stack


def test_import_off_stack_returns_the_module_and_raises_its_error_here():
    import json

    assert import_off_stack("json") is json
    with pytest.raises(ModuleNotFoundError, match="no_such_module_here"):
        import_off_stack("no_such_module_here")


@pytest.mark.e2e
def test_a_finished_training_keeps_none_of_its_data_alive(shop_folder, tmp_path, child_env):
    # a fresh interpreter, in which Optuna is first imported by the training command (as in `storefront main`)
    shop = shop_folder(customers=300, products=30, years=2, seed=4)
    script = textwrap.dedent(f"""
        import gc, sys
        from pipelines.cli import parse_args, train_from_args
        train_from_args(parse_args(["train-itemcf", "--data-dir", {str(shop)!r}, "--n-trials", "1",
                                    "--blend-trials", "0"]))
        assert "optuna" in sys.modules
        gc.collect()
        from pipelines.recommenders.training import RecommenderData
        print(sum(isinstance(o, RecommenderData) for o in gc.get_objects()))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env=child_env(MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}",
                                        STOREFRONT_HOME=str(tmp_path)))
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[-1] == "0"  # the shop's data went with the training
