"""The one-command pipeline (entry point ``main``): data, four tuned families, registry, next steps.

Reads ``--data-dir`` (default ``<project>/data/generated``; generated with the default size when absent,
or a small size with ``--quick``). Runs ``train_svdpp``, ``train_itemcf``, ``train_churn`` and
``train_sarima`` with their default budgets (``--quick``: a few trials each, for tests and smoke runs) and
``--storage`` when given (the Optuna storage of every study, e.g. a team's PostgreSQL); each
logs its study in its MLflow experiment and registers its winner as ``challenger`` when it beats its
baseline. Then the better recommender on the shared test window is registered as
``storefront-recommender``, every challenger is offered for promotion to ``champion``, and a summary table
and the exact ``mlflow models serve`` / ``mlflow ui`` commands are printed. Re-running is safe: existing
data is reused, new versions are added, promotion re-scores the champion on the new test data.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from pipelines.families import FAMILIES, MAIN_FAMILIES, RECOMMENDER_SLOT
from pipelines.options import bool_text

logger = logging.getLogger(__name__)

HELP = "generate data if needed, train and register all families, promote, print how to serve"
DOCS = "README.md#set-up-fresh-machine-python-311-make"

QUICK_DATA = ["--customers", "600", "--products", "60", "--years", "3"]
UI_PORT = 5000
SERVE_PORTS = {"recommender": 5001, "churn": 5002, "sarima": 5003}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="folder with the four tables (default: <project>/data/generated, generated if absent)")
    parser.add_argument("--quick", type=bool_text, nargs="?", const=True, default=False,
                        help="tiny budgets (and a small generated data set) for smoke tests")
    parser.add_argument("--families", default=",".join(MAIN_FAMILIES),
                        help=f"comma-separated subset of {', '.join(MAIN_FAMILIES)}")
    parser.add_argument("--margin", type=float, default=0.0, help="promotion margin (see `storefront promote`)")
    parser.add_argument("--storage", default=None,
                        help="Optuna storage URL for every family's study (postgresql+psycopg://... for a team, "
                             "README \"Team and scale\"); default in-memory")


def ensure_data(data_dir: Path, quick: bool) -> Path:
    from pipelines.cli import parse_args
    from pipelines.data import generate
    from pipelines.data.tables import TABLE_NAMES

    if all(any((data_dir / f"{t}.{ext}").is_file() for ext in ("parquet", "csv")) for t in TABLE_NAMES):
        logger.info("using the existing data in %s", data_dir)
        return data_dir
    logger.info("no data in %s: generating it", data_dir)
    generate.run(parse_args(["generate-data", "--output-dir", str(data_dir), *(QUICK_DATA if quick else [])]))
    return data_dir


def run(args: argparse.Namespace) -> int:
    from pipelines import parallel, registry, tracking
    from pipelines.cli import parse_args, train_from_args
    from pipelines.errors import ConfigurationError

    started = time.monotonic()
    parallel.watch_memory()  # the stages' peak memory counts the second process of a stage that uses one
    families = [f.strip() for f in args.families.split(",") if f.strip()]
    unknown = sorted(set(families) - set(MAIN_FAMILIES))
    if unknown:
        raise ConfigurationError(f"--families: unknown {', '.join(unknown)}; choose from {', '.join(MAIN_FAMILIES)}")
    data_dir = ensure_data(Path(args.data_dir) if args.data_dir else tracking.default_data_dir(), args.quick)

    results, failures, stages = {}, {}, {}
    for family in families:
        declared = FAMILIES[family]
        logger.info("=== %s ===", family)
        stage_started = time.monotonic()
        budget = ["--n-trials", str(declared.quick_trials)] if args.quick else []
        storage = ["--storage", args.storage] if args.storage else []
        try:
            result = train_from_args(parse_args([declared.command, "--data-dir", str(data_dir), *budget, *storage]))
            version = registry.register_if_better(result)
        except Exception as exc:  # one family failing must not stop the others; it is reported and exits 1
            logger.exception("%s failed", family)
            failures[family] = f"{type(exc).__name__}: {exc}"
            continue
        finally:
            stages[family] = (time.monotonic() - stage_started, parallel.peak_memory_gb())
            parallel.release_memory()  # the next family loads its own data
            logger.info("=== %s took %.0f s; peak memory so far %.2f GB ===", family, *stages[family])
        results[family] = (result, version)

    rows = []
    recommenders = {f: results[f] for f in reversed(RECOMMENDER_SLOT.members) if f in results}
    if recommenders:
        best_family = max(recommenders, key=lambda f: recommenders[f][0].test_value)
        best = recommenders[best_family][0]
        logger.info("recommender slot: %s wins test precision_at_10 (%s)", best_family,
                    ", ".join(f"{f} {r.test_value:.4f}" for f, (r, _) in recommenders.items()))
        slot = registry.register_if_better(
            _as_recommender(best), description=f"{best_family} won the recommender slot on test precision_at_10 "
                                               f"({', '.join(f'{f} {r.test_value:.4f}' for f, (r, _) in recommenders.items())}).")
        results["recommender"] = (_as_recommender(best), slot)

    for family, (result, version) in results.items():
        name = result.registered_model or FAMILIES[family].registered_model
        decision = "not registered (gate failed)"
        if version is not None:
            try:
                outcome = registry.promote(name, margin=args.margin)
                decision = outcome.reason if outcome.promoted else f"kept champion: {outcome.reason}"
            except registry.PromotionBlocked as exc:
                decision = f"blocked: {exc}"
        rows.append((family, name, result.primary_metric, result.test_value, result.baseline_value,
                     registry.alias_number(name, registry.CHAMPION) or "-", decision))

    _print_summary(rows, failures, time.monotonic() - started, thin_lines(results, data_dir), stages)
    return 1 if failures else 0


def thin_lines(results: dict, data_dir: Path) -> list[str]:
    """The summary's lines about thin tuning: each family study (or SARIMA series) that completed fewer than
    :data:`pipelines.budget.MIN_COMPLETE_TRIALS` trials on its budget, and the command that would fix it."""
    from pipelines.budget import MIN_COMPLETE_TRIALS
    from pipelines.study import thin_studies

    lines = []
    for family, (result, _) in results.items():
        declared = FAMILIES[family]
        if declared.members:  # the recommender slot repeats a member's run
            continue
        for name, what, fix in thin_studies(result.run_id):
            where = family if name == _run_name(result.run_id) else f"{family} ({name})"
            lines.append(f"  {where}: {what}; fix: storefront {declared.command} --data-dir {data_dir} {fix}".rstrip())
    if lines:
        lines.insert(0, f"THIN TUNING (fewer than {MIN_COMPLETE_TRIALS} completed trials; the tuned model may be "
                        "little better than the first configuration tried):")
    return lines


def _run_name(run_id: str) -> str:
    import mlflow

    run = mlflow.MlflowClient().get_run(run_id)
    return run.info.run_name or run.info.run_id


def _as_recommender(result):
    from dataclasses import replace

    return replace(result, registered_model=RECOMMENDER_SLOT.registered_model)



def _print_summary(rows, failures, seconds: float, thin: list[str] = (), stages: dict | None = None) -> None:
    from pipelines import tracking

    header = ("family", "model", "metric", "test", "baseline", "champion", "decision")
    table = [header] + [(f, n, m, f"{t:.4f}", f"{b:.4f}", c, d[:70]) for f, n, m, t, b, c, d in rows]
    widths = [max(len(str(r[i])) for r in table) for i in range(len(header))]
    print()
    for i, row in enumerate(table):
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths)))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    for family, error in failures.items():
        print(f"FAILED {family}: {error}")
    for line in thin:
        print(line)
    if stages:
        print("stages: " + ", ".join(f"{f} {t:.0f} s (peak {m:.2f} GB so far)" for f, (t, m) in stages.items()))
    uri = tracking.tracking_uri()
    print(f"\nmain job finished in {seconds / 60:.1f} min. Next:")
    if uri.startswith(("http://", "https://")):  # a tracking server is its own UI
        print(f"  open the tracking server's UI at {uri}")
        links = ui_links([row[0] for row in rows], ui=uri.rstrip("/"))
    else:
        print(f"  mlflow ui --backend-store-uri {uri} --port {UI_PORT}")
        links = ui_links([row[0] for row in rows])
    for line in links:
        print(f"    {line}")
    for family, port in SERVE_PORTS.items():
        print(f"  MLFLOW_TRACKING_URI={uri} mlflow models serve -m models:/{FAMILIES[family].registered_model}@champion "
              f"-p {port} --env-manager local")


def ui_links(families_run: list[str], ui: str = f"http://127.0.0.1:{UI_PORT}") -> list[str]:
    """The MLflow UI pages to open after the main job, each in the training view (the UI opens in its GenAI view
    without ``workflowType=machine_learning``): each family's latest study's trials, best first (SARIMA: its series),
    and the registered models."""
    import mlflow

    from pipelines.sarima.train import SERIES_VIEW
    from pipelines.study import TRIALS_VIEW, view_url

    client = mlflow.MlflowClient()
    lines = ["then open (training view):"]
    for family in families_run:
        declared = FAMILIES[family]
        experiment = None if declared.members else client.get_experiment_by_name(declared.experiment)
        if experiment is not None:
            view, what = (SERIES_VIEW, "series") if family == "sarima" else (TRIALS_VIEW, "trials")
            lines.append(f"  {declared.title + ' ' + what + ',':<18} best first  "
                         f"{view_url(ui, experiment.experiment_id, view)}")
    lines.append(f"  {'registered models':<29} {ui}/#/models?workflowType=machine_learning")
    return lines
