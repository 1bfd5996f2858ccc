"""Benchmark the demographic cold start and the content blend (issue 16) against their peers in the same run.

Three parts, one process:

* (a) The generated shop with default sizes (5,000 customers, 200 products, 3 years, seed 42; generated into a
  temporary folder unless ``--shop``). Item-CF exactly as ``train_itemcf`` tunes it (the same objective, search
  space, first trial, TPE seed 42 and 50 trials; no MLflow), then the cold start and the blend chosen on
  validation (``pipelines.recommenders.hybrid``, 30 blend trials). Peers on the same test customers: global
  popularity (the run's baseline, its window chosen on validation), segment popularity (the chosen table for
  everyone), and item-CF as it was before (no blend, the popular products for unknown customers).
* (b) The same generator, sizes and seed with ``--demographic-strength 3`` (the planted gender and age tilts
  cubed), the same procedure: what the method does where the data holds a demographic signal.
* (c) MovieLens 100k (``u.user`` has age, gender and occupation), users cut to zero: the 943 users in 5 seeded folds
  (``evaluation.splits.customer_folds``); a fold's users are left out of the fit and everything they rated is
  relevant; the attributes and strength are chosen on an inner cut of the other users (a fifth of them, the same
  grid as training), then the table is refit on all other users and scored on the fold. Peer: global popularity
  fitted without the fold. Ages below 13 (the contract's minimum) count as unknown.

"Cold start" in (a) and (b) is measured on *simulated* cold customers (everyone with demographics who buys in the
test window, cut to zero fold by fold, all their window purchases relevant): the shop's real cold customers are
too few (34 in the default shop's test window) to tell 1.2x from 1.0x. Both are reported, with paired bootstrap
90% intervals of the ratio (2,000 resamples of customers, seed 0).

Targets (issue 16, default shop): cold-start precision@10 >= 1.2x global popularity's on the same customers;
warm-customer precision@10 >= 0.0506 (item-CF before); catalogue coverage not lower than item-CF before.

    python benchmarks/bench_coldstart.py [--shop DIR] [--n-trials 50] [--blend-trials 30] [--ml-data DIR]

Writes ``benchmarks/results/coldstart.md`` and ``benchmarks/results/coldstart.json``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.reporting import machine_info, measured_line, verdict_rows, write_results  # noqa: E402

K = 10
WARM_TODAY = 0.0506  # item-CF's test precision@10 on the default shop before this work (issue 16)
TARGETS = {"cold_ratio": 1.2, "warm_precision_at_10": WARM_TODAY}
DEFAULT_ML = ROOT.parent / "shared" / "data" / "ml-100k"
SYSTEMS = ("global popularity", "segment popularity", "item-CF before (no blend, popular for unknown)",
           "item-CF + content blend + demographic cold start")


def bootstrap_ratio(relevant, lists_a, lists_b, k: int = K, n: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Paired bootstrap 90% interval of precision@k(a) / precision@k(b) over the customers of ``relevant``."""
    import numpy as np

    users = [u for u, items in relevant.items() if items]
    hits = np.array([[len(set(lists[u][:k]) & relevant[u]) for lists in (lists_a, lists_b)] for u in users], float)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(users), size=(n, len(users)))
    sums = hits[draws].sum(axis=1)
    ratios = sums[:, 0] / np.maximum(sums[:, 1], 1e-12)
    return float(np.percentile(ratios, 5)), float(np.percentile(ratios, 95))


def tune_itemcf(data, baseline, n_trials: int, seed: int) -> dict:
    """The item-CF study of ``train_itemcf`` (same objective, space, first trial and sampler), without MLflow."""
    import optuna

    from pipelines.recommenders.train_itemcf import default_trial, make_objective, model_params

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.enqueue_trial(default_trial(len(data.catalog)))
    study.optimize(make_objective(data, baseline, K), n_trials=n_trials)
    return model_params(study.best_params)


def shop_benchmark(folder: Path, n_trials: int, blend_trials: int, seed: int) -> dict:
    from evaluation.metrics import coverage, precision_at_k
    from evaluation.splits import cold_start_groups, new_products
    from models.recommenders.itemcf import ItemCF
    from pipelines.recommenders import hybrid
    from pipelines.recommenders.training import load_recommender_data, popularity_baseline

    started = time.perf_counter()
    data = load_recommender_data(folder)
    baseline = popularity_baseline(data, K)
    params = tune_itemcf(data, baseline, n_trials, seed)
    extras = hybrid.tune_extras(data, baseline, K, lambda: ItemCF(**params).fit(data.log("validation")).recommender(
        baseline.popularity("validation")), blend_trials=blend_trials, seed=seed)
    before = ItemCF(**params).fit(data.log("test")).recommender(baseline.popularity("test"))
    after = extras.attach(before, data, "test")
    relevant = data.relevant("test")
    ids = list(relevant)
    demographics = data.demographics(ids)
    segment = hybrid.segment_popularity_recommender(data, "test", after.segments, baseline.popularity("test"))
    lists = dict(zip(SYSTEMS, (baseline.recommenders["test"].recommend_all(ids, K),
                               segment.recommend_all(ids, K, demographics=demographics),
                               before.recommend_all(ids, K),
                               after.recommend_all(ids, K, demographics=demographics))))
    groups = cold_start_groups(ids, data.buyers_before("test"), data.described_customers)
    populations = {"all": ids, **groups}
    cut, segment_cut, global_cut = hybrid.simulated_cold_lists(data, "test", extras.cold_start, K)
    rows = {}
    for name, found in lists.items():
        row = {population: precision_at_k({c: relevant[c] for c in members}, found, K)
               for population, members in populations.items()}
        row["coverage"] = coverage(found, data.catalog, K)
        simulated = segment_cut if name in (SYSTEMS[1], SYSTEMS[3]) else global_cut  # unknown: segment or popular
        row["coldsim"] = precision_at_k(cut, simulated, K)
        rows[name] = row
    cold = {c: relevant[c] for c in groups["cold"]}
    report = {
        "data": {"folder": str(folder), "digest": data.digest, "test_customers": len(ids),
                 "warm": len(groups["warm"]), "cold": len(groups["cold"]), "coldsim": len(cut),
                 "new_products_in_test": len(new_products(data.window_transactions("test")["product_id"],
                                                                 data.history_transactions("test")["product_id"]))},
        "itemcf_params": params,
        "cold_start": {"attributes": list(extras.cold_start.attributes), "strength": extras.cold_start.strength,
                       "window_days": extras.cold_start.window_days, "val_coldsim": extras.cold_start.val_value,
                       "val_global": extras.cold_start.val_global},
        "blend": {"params": extras.blend.params, "val": extras.blend.val_value,
                  "val_unblended": extras.blend.val_unblended, "best_gain": extras.blend.best_gain,
                  "best_gain_se": extras.blend.best_gain_se},
        "rows": rows,
        "coldsim_ratio": rows[SYSTEMS[3]]["coldsim"] / rows[SYSTEMS[0]]["coldsim"],
        "coldsim_ci90": bootstrap_ratio(cut, segment_cut, global_cut),
        "cold_ratio": rows[SYSTEMS[3]]["cold"] / max(rows[SYSTEMS[0]]["cold"], 1e-12),
        "cold_ci90": bootstrap_ratio(cold, lists[SYSTEMS[3]], lists[SYSTEMS[0]]),
        "seconds": time.perf_counter() - started,
    }
    print(f"{folder}: {report['rows']}", flush=True)
    return report


def movielens_benchmark(folder: Path, seed: int = 0) -> dict:
    import numpy as np
    import pandas as pd

    from evaluation.metrics import coverage, precision_at_k, recall_at_k
    from evaluation.splits import customer_folds
    from models.recommenders.coldstart import SegmentPopularity, age_value
    from pipelines.recommenders import hybrid

    if not (folder / "u.user").is_file():
        sys.exit(f"bench_coldstart: MovieLens 100k not found: {folder / 'u.user'} is missing (--ml-data)")
    ratings = pd.read_csv(folder / "u.data", sep="\t", names=["user", "item", "rating", "ts"], dtype=str)
    users = pd.read_csv(folder / "u.user", sep="|", names=["user", "age", "gender", "occupation", "zip"], dtype=str)
    customers = pd.DataFrame({"customer_id": users["user"], "age": pd.to_numeric(users["age"]),
                              "gender": users["gender"].map({"M": "Male", "F": "Female"}),
                              "profession": users["occupation"]})
    transactions = pd.DataFrame({"customer_id": ratings["user"], "product_id": ratings["item"],
                                 "purchase_date": pd.to_datetime(ratings["ts"].astype("int64"), unit="s")})
    items = np.sort(ratings["item"].unique())
    reference = transactions["purchase_date"].max() + pd.Timedelta(days=1)
    relevant = {u: set(g) for u, g in transactions.groupby("customer_id")["product_id"]}
    variants = [(a, s) for a in hybrid.COLD_START_ATTRIBUTES for s in hybrid.COLD_START_STRENGTHS]

    def lists_for(attributes, strength, left_out, scored):
        model = SegmentPopularity(attributes, strength).fit(customers, transactions, items, reference_date=reference,
                                                            exclude_customers=left_out)
        values = {a: customers.set_index("customer_id").loc[scored, a].tolist() for a in attributes}
        return model, hybrid.segment_lists(model.table_, values, scored, K, items)

    chosen, glob, choices = {}, {}, []
    ids = customers["customer_id"].tolist()
    for number, fold in enumerate(customer_folds(ids, 5, seed)):
        fold_set = set(fold)
        rest = [u for u in ids if u not in fold_set]
        inner = customer_folds(rest, 5, seed + 1 + number)[0]  # a fifth of the other users, cut the same way
        scores = {}
        for attributes, strength in variants:
            _, found = lists_for(attributes, strength, [*fold, *inner], inner)
            scores[(attributes, strength)] = precision_at_k({u: relevant[u] for u in inner}, found, K)
        best = max(variants, key=lambda v: scores[v])
        model, found = lists_for(*best, fold, fold)
        chosen.update(found)
        glob.update(hybrid.segment_lists(model.table_, {}, fold, K, items))
        choices.append({"fold": number, "attributes": ",".join(best[0]), "strength": best[1],
                        "inner_val": scores[best]})
    cold = {u: relevant[u] for u in ids}
    p_model, p_global = precision_at_k(cold, chosen, K), precision_at_k(cold, glob, K)
    return {"users": len(ids), "unknown_age": int(sum(age_value(a) is None for a in customers["age"])),
            "precision_at_10": p_model, "baseline_precision_at_10": p_global, "ratio": p_model / p_global,
            "ci90": bootstrap_ratio(cold, chosen, glob),
            "recall_at_10": recall_at_k(cold, chosen, K), "baseline_recall_at_10": recall_at_k(cold, glob, K),
            "coverage": coverage(chosen, items, K), "baseline_coverage": coverage(glob, items, K), "choices": choices}


def main(argv=None) -> int:
    from pipelines.families import get
    from pipelines.recommenders.options import DEFAULT_BLEND_TRIALS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for flag, kind, default, text in (
            ("--shop", Path, None, "the default generated shop (default: generate it)"),
            ("--strength", float, 3.0, "demographic strength of part (b)"),
            ("--n-trials", int, get("itemcf").n_trials, "item-CF trials, as train_itemcf"),
            ("--blend-trials", int, DEFAULT_BLEND_TRIALS, "blend trials, as train_itemcf"),
            ("--seed", int, 42, "study seed, as train_itemcf"),
            ("--ml-data", Path, DEFAULT_ML, "folder with MovieLens 100k")):
        parser.add_argument(flag, type=kind, default=default, help=f"{text} (default {default})")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    from pipelines.data.synthetic import generate_shop
    from pipelines.data.tables import write_tables

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-coldstart-") as tmp:
        shops = {}
        for name, strength, given in (("default", 1.0, args.shop), (f"strength {args.strength:g}", args.strength, None)):
            folder = given
            if folder is None:
                folder = Path(tmp) / name.replace(" ", "-")
                write_tables(generate_shop(seed=42, demographic_strength=strength)[0], folder)
            shops[name] = {"demographic_strength": strength,
                           **shop_benchmark(folder, args.n_trials, args.blend_trials, args.seed)}
    movielens = movielens_benchmark(args.ml_data)
    default = shops["default"]
    rows = default["rows"]
    verdicts = {
        f"default shop: cold-start precision@10 >= 1.2x global popularity (simulated cold, "
        f"{default['coldsim_ratio']:.3f}x)": default["coldsim_ratio"] >= TARGETS["cold_ratio"],
        f"default shop: warm precision@10 >= {WARM_TODAY} ({rows[SYSTEMS[3]]['warm']:.4f})":
            rows[SYSTEMS[3]]["warm"] >= WARM_TODAY,
        f"default shop: coverage not lower than item-CF before ({rows[SYSTEMS[3]]['coverage']:.3f} vs "
        f"{rows[SYSTEMS[2]]['coverage']:.3f})": rows[SYSTEMS[3]]["coverage"] >= rows[SYSTEMS[2]]["coverage"],
    }
    report = {"machine": machine_info(),
              "command": "python benchmarks/bench_coldstart.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "shops": shops, "movielens": movielens, "targets": TARGETS, "verdicts": verdicts,
              "wall_seconds": time.perf_counter() - started}
    write_results("coldstart", report, markdown(report))
    return 0


def markdown(report: dict) -> str:
    from pipelines.recommenders.hybrid import BLEND_MIN_GAIN_SE

    lines = ["# Demographic cold start and content blend (issue 16)", "", measured_line(report["machine"]),
             f"Command: `{report['command'].strip()}` ({report['wall_seconds']:.0f} s).", ""]
    for name, shop in report["shops"].items():
        d, c, b = shop["data"], shop["cold_start"], shop["blend"]
        lines += [
            f"## Generated shop, {name} (demographic strength {shop['demographic_strength']:g}), test precision@10",
            "",
            f"Test window: {d['test_customers']} customers ({d['warm']} warm, {d['cold']} real cold start with "
            f"demographics); {d['coldsim']} simulated cold customers; {d['new_products_in_test']} products new in "
            f"the test window. Cold start chosen on validation: {', '.join(c['attributes'])}, strength "
            f"{c['strength']:g}, window {c['window_days'] or 'all history'} (validation {c['val_coldsim']:.4f} vs "
            f"global {c['val_global']:.4f}). " + ("Blend not tuned." if b["val"] is None else
            f"Blend weight {float(b['params'].get('weight', 0)):.3f} "
            f"(validation {b['val']:.4f} vs {b['val_unblended']:.4f} without; the best trial gained "
            f"{b['best_gain']:.4f}, {b['best_gain'] / b['best_gain_se'] if b['best_gain_se'] else 0:.1f} paired "
            f"standard errors, and is kept only above {BLEND_MIN_GAIN_SE:g})."),
            "",
            "| system | all | warm | cold start, real | cold start, simulated | coverage |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for system, row in shop["rows"].items():
            lines.append(f"| {system} | {row['all']:.4f} | {row['warm']:.4f} | {row['cold']:.4f} | "
                         f"{row['coldsim']:.4f} | {row['coverage']:.3f} |")
        lo, hi = shop["coldsim_ci90"]
        clo, chi = shop["cold_ci90"]
        lines += ["", f"Cold start against global popularity on the same customers: simulated "
                      f"**{shop['coldsim_ratio']:.3f}x** (90% CI {lo:.2f}-{hi:.2f}); real cold customers "
                      f"{shop['cold_ratio']:.2f}x (90% CI {clo:.2f}-{chi:.2f}, {d['cold']} customers).", ""]
    m = report["movielens"]
    lo, hi = m["ci90"]
    lines += ["## MovieLens 100k, users cut to zero", "",
              f"{m['users']} users, each cold once (5 folds); {m['unknown_age']} ages below 13 count as unknown.", "",
              "| system | precision@10 | recall@10 | coverage |", "|---|---:|---:|---:|",
              f"| global popularity | {m['baseline_precision_at_10']:.4f} | {m['baseline_recall_at_10']:.4f} | "
              f"{m['baseline_coverage']:.4f} |",
              f"| segment popularity, chosen per fold | {m['precision_at_10']:.4f} | {m['recall_at_10']:.4f} | "
              f"{m['coverage']:.4f} |", "",
              f"Ratio **{m['ratio']:.3f}x** (90% CI {lo:.3f}-{hi:.3f}). Chosen per fold: "
              + "; ".join(f"{c['attributes']} strength {c['strength']:g}" for c in m["choices"]) + ".", "",
              *verdict_rows(report["verdicts"])]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
