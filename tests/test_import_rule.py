"""The import rule (docs/architecture.md): ``models/`` never imports ``pipelines/``; ``evaluation/`` imports neither;
and a served model loads and answers with only ``models/`` on its code path."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imported_packages(package: str) -> dict[str, set[str]]:
    """``{file: {top-level project packages it imports}}`` for every module of ``package`` (lazy imports too)."""
    found = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        names = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
            elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module" and node.args:
                if isinstance(node.args[0], ast.Constant):
                    names.add(str(node.args[0].value).split(".")[0])
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and ":" in node.value:
                module = node.value.split(":")[0]  # "package.module:Class" strings imported lazily
                if module.replace(".", "").replace("_", "").isalnum() and "." in module:
                    names.add(module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names & {"pipelines", "models", "evaluation"}
    return found


def test_models_never_import_pipelines():
    offenders = {f: n for f, n in imported_packages("models").items() if "pipelines" in n}
    assert offenders == {}


def test_evaluation_imports_neither_models_nor_pipelines():
    offenders = {f: n for f, n in imported_packages("evaluation").items() if n - {"evaluation"}}
    assert offenders == {}


def test_the_checker_sees_lazy_imports(tmp_path, monkeypatch):
    """The rule is checked on lazy imports too (a function-level import, import_module, "module:Class")."""
    import sys

    me = sys.modules[imported_packages.__module__]
    fake = tmp_path / "models"
    fake.mkdir()
    (fake / "bad.py").write_text("def f():\n    from pipelines import registry\n")
    (fake / "worse.py").write_text('KIND = {"x": "pipelines.families:Family"}\n')
    monkeypatch.setattr(me, "ROOT", tmp_path)
    assert imported_packages("models") == {"models/bad.py": {"pipelines"}, "models/worse.py": {"pipelines"}}


# A served model of every family, saved from its pyfunc file with nothing but ``models/`` as code path, loaded in
# a fresh interpreter whose ``pipelines`` and ``evaluation`` imports fail, and asked one request.
LOADER = textwrap.dedent('''
    import importlib.abc, sys

    class Forbid(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("pipelines", "evaluation"):
                raise ImportError(f"a served model imported {name}")
            return None

    sys.meta_path.insert(0, Forbid())
    import json
    import mlflow
    import pandas as pd

    model = mlflow.pyfunc.load_model(sys.argv[1])
    request = pd.DataFrame(json.loads(sys.argv[2]))
    answer = model.predict(request, params=json.loads(sys.argv[3]) or None)
    print(len(answer), sorted(m for m in sys.modules if m.split(".")[0] in ("pipelines", "evaluation")))
''')


def _save(python_model: Path, artifacts: dict, folder: Path, signature, example: dict) -> Path:
    import mlflow
    import pandas as pd

    target = folder / python_model.parent.name
    mlflow.pyfunc.save_model(target, python_model=str(python_model), artifacts=artifacts,
                             code_paths=[str(ROOT / "models")], signature=signature,
                             input_example=pd.DataFrame(example))
    return target


def _recommender(folder: Path):
    import numpy as np
    from scipy import sparse

    from models.recommenders.contract import CONTRACT, PYFUNC_FILE
    from models.recommenders.engine import Recommender
    from models.recommenders.popularity import PopularityScorer

    purchased = sparse.csr_matrix(np.array([[1, 0, 0], [0, 1, 0]], dtype=bool))
    popularity = np.array([3.0, 2.0, 1.0])
    rec = Recommender(PopularityScorer(popularity, 2), np.array(["C1", "C2"]), np.array(["P1", "P2", "P3"]),
                      purchased, popularity)
    path = rec.save(folder / "recommender.npz")
    request = {"customer_id": ["C1"]}
    return _save(PYFUNC_FILE, {"recommender": str(path)}, folder, CONTRACT.signature(), request), request, {"k": 2}


def _sarima(folder: Path):
    import json

    import numpy as np

    from models.sarima.contract import CONTRACT, PYFUNC_FILE
    from models.sarima.model import export_seasonal_naive

    served = export_seasonal_naive("Books", np.arange(1.0, 25.0), freq="M", season=12, last_period="2025-12-01",
                                   reason="test")
    path = folder / "series.json"
    path.write_text(json.dumps({"freq": "M", "series": [served.to_dict()]}))
    request = {"category": ["Books"], "horizon": [2]}
    return _save(PYFUNC_FILE, {"series": str(path)}, folder, CONTRACT.signature(), request), request, {}


def _segments(folder: Path):
    import numpy as np
    import pandas as pd

    from models.segments.contract import CONTRACT, PYFUNC_FILE
    from models.segments.model import FEATURES, Segmenter

    rng = np.random.default_rng(0)
    features = pd.DataFrame(rng.gamma(2.0, 10.0, size=(60, len(FEATURES))), columns=list(FEATURES))
    path = Segmenter(k=2, seed=0).fit(features).save(folder / "segments.json")
    request = {c: [1.0] for c in FEATURES}
    return _save(PYFUNC_FILE, {"segments": str(path)}, folder, CONTRACT.signature(), request), request, {}


@pytest.mark.e2e
@pytest.mark.parametrize("build", [_recommender, _sarima, _segments], ids=["recommender", "sarima", "segments"])
def test_a_served_model_loads_with_only_models_on_its_code_path(build, tmp_path, child_env):
    import json

    folder = tmp_path / "work"
    folder.mkdir()
    model_dir, request, params = build(folder)
    # run from an empty folder, with the project neither on sys.path nor importable through the editable install
    proc = subprocess.run([sys.executable, "-c", LOADER, str(model_dir), json.dumps(request), json.dumps(params)],
                          cwd=tmp_path, env=child_env(PYTHONPATH="", PYTHONSAFEPATH="1"), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows, leaked = proc.stdout.strip().splitlines()[-1].split(" ", 1)
    assert int(rows) >= 1 and leaked == "[]"
