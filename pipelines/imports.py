"""Import a module on a thread of its own (:func:`import_off_stack`), so that a failure it keeps cannot keep our frames.

Optuna tries its optional dependencies when it is imported (``cmaes``, ``redis``, ``plotly``, ...) and keeps each
ImportError for a later, clearer message. An exception keeps its traceback, and a traceback keeps every frame of the
stack it was raised in, with their local variables, for the life of the process. When Optuna is first imported
inside a training (``train()`` imports :mod:`pipelines.study`), that stack holds the training's data: at 50,000
customers the shop's tables and interaction logs (1.4 GB) stayed alive through every later stage of the main job.
Imported on a short-lived thread, the kept frames are only that thread's.
"""

from __future__ import annotations

import importlib
import sys
import threading
from types import ModuleType

# imported before a training starts (pipelines.cli.train_from_args)
TRAINING_IMPORTS = ("optuna", "optuna.visualization.matplotlib")


def import_off_stack(name: str) -> ModuleType:
    """``importlib.import_module(name)``, the first time on a new thread (an error is raised here, in the caller)."""
    def load() -> None:
        try:
            importlib.import_module(name)
        except ImportError:  # raised again below, in the caller's thread
            pass

    if name not in sys.modules:
        loader = threading.Thread(target=load, name=f"import {name}")
        loader.start()
        loader.join()
    return importlib.import_module(name)
