"""Real `mlflow models serve` of the segments and next-category models logged by their entry points."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def trained(tracking_home, shop_folder):
    """Both entry points on a tiny shop (two trials each: one trial makes Optuna warn in the importance plot),
    logged to the session's tracking store (training registers nothing)."""
    from pipelines.rescoring import load_holdout

    from pipelines.cli import parse_args, train_from_args

    data = shop_folder(customers=400, products=40, years=2, seed=17)
    segments = train_from_args(parse_args(["train-segments", "--data-dir", str(data), "--n-trials", "2",
                                           "--max-k", "4"]))
    next_category = train_from_args(parse_args(["train-next-category", "--data-dir", str(data),
                                                "--n-trials", "2", "--snapshots", "2"]))
    holdout = load_holdout(next_category.run_id)[0]
    return {"uri": f"sqlite:///{tracking_home / 'mlflow.db'}", "segments": segments, "next_category": next_category,
            "requests": holdout}


def test_segments_model_over_http(trained, serve):
    server = serve(trained["segments"].model_uri, trained["uri"])
    rows = [{"total_spending": 1200.0, "frequency_days": 9, "avg_spend_per_item": 45.5, "recency_days": 12.0},
            {"total_spending": 15.0, "frequency_days": 1, "avg_spend_per_item": 15.0, "recency_days": 500.0}]
    good = server.invoke({"dataframe_records": rows})
    assert good.status_code == 200, good.text
    answer = good.json()["predictions"]
    assert [sorted(r) for r in answer] == [["segment_id", "segment_name"]] * 2
    assert all(r["segment_name"] in trained["segments"].extra["names"] for r in answer)
    bad = server.invoke({"dataframe_records": [{**rows[0], "recency_days": -3.0}]})
    assert bad.status_code == 400 and "recency_days" in bad.json()["message"]
    missing = server.invoke({"dataframe_records": [{"total_spending": 1.0}]})
    assert missing.status_code == 400 and "frequency_days" in missing.json()["message"]
    assert server.invoke({"dataframe_records": rows[:1]}).status_code == 200  # still serving


def test_next_category_model_over_http(trained, serve):
    server = serve(trained["next_category"].model_uri, trained["uri"])
    rows = trained["requests"].head(3)
    good = server.invoke({"dataframe_split": {"columns": list(rows.columns), "data": rows.to_numpy().tolist()}})
    assert good.status_code == 200, good.text
    answer = good.json()["predictions"]
    categories = trained["next_category"].extra["categories"]
    assert [r["customer_id"] for r in answer] == rows["customer_id"].tolist()
    for r in answer:
        probs = {k: v for k, v in r.items() if k.startswith("prob_")}
        assert len(probs) == len(categories) and sum(probs.values()) == pytest.approx(1.0)
        assert r["top_category"] in categories and r["top_probability"] == pytest.approx(max(probs.values()))
    broken = rows.head(1).assign(events_books=-1.0)
    bad = server.invoke({"dataframe_split": {"columns": list(broken.columns), "data": broken.to_numpy().tolist()}})
    assert bad.status_code == 400 and "events_books" in bad.json()["message"]


def test_segments_and_next_category_promote_and_roll_back_by_their_short_names(trained, capsys):
    """``storefront promote --model segments`` and ``--model next-category`` mean their registered models (the
    gate is not what is tested here: the baseline is set below any score so both versions register)."""
    from dataclasses import replace

    from pipelines import registry
    from pipelines.cli import main

    for trained_result, short, name in ((trained["segments"], "segments", "storefront-segments"),
                                        (trained["next_category"], "next-category", "storefront-next-category")):
        result = replace(trained_result, baseline_value=-1.0)
        first = registry.register_if_better(result)
        assert first is not None and first.name == name
        assert main(["promote", "--model", short]) == 0
        assert f"{name}: promoted; champion is version {first.version}" in capsys.readouterr().out
        second = registry.register_if_better(result)
        assert main(["promote", "--model", short, "--force"]) == 0
        assert registry.alias_number(name, registry.CHAMPION) == str(second.version)
        assert main(["rollback", "--model", short]) == 0
        assert f"{name}: champion is version {first.version} again" in capsys.readouterr().out


@pytest.mark.parametrize("model", ["segments", "next_category"])
def test_fuzzed_requests_never_get_a_5xx_from_the_project(trained, serve, model):
    """The bounded fuzz of :mod:`tests.e2e.fuzz` against the two servers above (reused, not restarted)."""
    from tests.e2e import fuzz

    server = serve(trained[model].model_uri, trained["uri"])
    if model == "segments":
        record = {"total_spending": 1200.0, "frequency_days": 9, "avg_spend_per_item": 45.5, "recency_days": 12.0}
        fuzzed = set(record)
    else:
        row = trained["requests"].head(1)
        record = {k: (v.item() if hasattr(v, "item") else v) for k, v in row.to_dict("records")[0].items()}
        fuzzed = {"customer_id", *list(record)[1:4]}  # the id and three features: the mutations reach the rest
    payloads = [p for p in fuzz.corpus(record) + fuzz.mutations(record, None, seed=29, count=40)
                if not any(p.name.startswith(f"{c} ") or p.name == f"without {c}" for c in record if c not in fuzzed)]
    statuses = fuzz.fuzz(server.url, payloads)
    print(f"fuzz {model}: {len(payloads)} payloads, statuses {dict(sorted(statuses.items()))}")
    assert len(payloads) >= 50 and statuses[200] >= 2 and statuses[400] >= 20
