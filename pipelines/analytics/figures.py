"""Matplotlib figures of the analytics entry points (``analyze``, ``train_segments``, ``train_next_category``).

Each function takes plain DataFrames and returns a ``Figure``; the caller logs it with
:func:`pipelines.mlflow_logging.log_figure`. Headless: the Agg backend is selected on import of matplotlib here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _bubble_sizes(values: pd.Series, smallest: float = 15, largest: float = 600) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    span = v.max() - v.min() if len(v) else 0.0
    scaled = (v - v.min()) / span if span > 0 else np.full(len(v), 0.5)
    return smallest + scaled * (largest - smallest)


def product_profitability(by_product: pd.DataFrame):
    """Units sold vs revenue per product, bubble area = revenue per unit, colour = category."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 6))
    sizes = _bubble_sizes(by_product["revenue_per_unit"])
    for category, rows in by_product.groupby("category", sort=True):
        ax.scatter(rows["units"], rows["revenue"], s=sizes[by_product.index.get_indexer(rows.index)], alpha=0.55,
                   label=category, edgecolors="white", linewidths=0.5)
    ax.set_xlabel("units sold")
    ax.set_ylabel("revenue")
    ax.set_title("Product profitability (bubble area = revenue per unit)")
    ax.legend(title="category", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def category_share_donut(by_category: pd.DataFrame):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 7))
    ax.pie(by_category["revenue"], labels=by_category["category"], autopct="%1.1f%%", startangle=90,
           pctdistance=0.8, wedgeprops={"width": 0.4, "edgecolor": "white"})
    ax.set_title("Revenue share by category")
    ax.axis("equal")
    fig.tight_layout()
    return fig


def top_subcategories(by_subcategory: pd.DataFrame, n: int = 10):
    plt = _plt()
    top = by_subcategory.head(n).iloc[::-1]
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(top) + 1.5))
    ax.barh([f"{s} ({c})" for c, s in zip(top["category"], top["subcategory"])], top["revenue"], color="tab:blue")
    ax.set_xlabel("revenue")
    ax.set_title(f"Top {len(top)} subcategories by revenue")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def monthly_revenue(monthly: pd.DataFrame):
    plt = _plt()
    wide = monthly.pivot(index="month", columns="category", values="revenue").fillna(0.0)
    fig, ax = plt.subplots(figsize=(10, 5))
    for category in wide.columns:
        ax.plot(wide.index, wide[category], marker=".", label=category)
    ax.set_ylabel("revenue")
    ax.set_title("Monthly revenue by category")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def engagement_bayes(table: pd.DataFrame, min_interactions: int, window_days: int):
    """P(purchase | engaged) per category with its Wilson interval, against the unconditional P(purchase)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 5))
    x = np.arange(len(table))
    p = table["p_purchase_given_engaged"].to_numpy(float)
    low = np.nan_to_num(p - table["wilson_low"].to_numpy(float))
    high = np.nan_to_num(table["wilson_high"].to_numpy(float) - p)
    ax.bar(x, np.nan_to_num(p), yerr=[low, high], capsize=4, color="tab:green", alpha=0.8,
           label=f"P(purchase | > {min_interactions} interactions), Wilson interval")
    ax.scatter(x, table["p_purchase"], color="black", marker="D", zorder=3, label="P(purchase)")
    for xi, n_e in zip(x, table["n_engaged"]):
        ax.annotate(f"n={n_e}", (xi, 0.01), ha="center", fontsize=8, color="white")
    ax.set_xticks(x, table["category"], rotation=20)
    ax.set_ylim(0, 1)
    ax.set_ylabel("probability")
    ax.set_title(f"Purchase probability given engagement (past {window_days} days, per customer)")
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig


def segment_scatter(features: pd.DataFrame, names: pd.Series):
    """Frequency vs spending per customer, bubble = spend per item, colour = segment."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 6))
    sizes = _bubble_sizes(np.log1p(features["avg_spend_per_item"]), 5, 200)
    for name in sorted(names.unique()):
        mask = (names == name).to_numpy()
        ax.scatter(features["frequency_days"].to_numpy()[mask], features["total_spending"].to_numpy()[mask],
                   s=sizes[mask], alpha=0.45, label=name, edgecolors="none")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("shopping frequency (distinct purchase days)")
    ax.set_ylabel("total spending")
    ax.set_title("Customer segments (bubble = spend per item)")
    ax.legend(fontsize=8, markerscale=0.6)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def segment_sizes(profile: pd.DataFrame):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(profile) + 1.5))
    ordered = profile.sort_values("size")
    ax.barh(ordered["segment_name"], ordered["size"], color="tab:purple")
    for y, (size, share) in enumerate(zip(ordered["size"], ordered["share"])):
        ax.annotate(f"{size} ({share:.0%})", (size, y), xytext=(3, 0), textcoords="offset points", va="center",
                    fontsize=8)
    ax.set_xlabel("customers")
    ax.set_title("Segment sizes")
    fig.tight_layout()
    return fig


def per_category_scores(table: pd.DataFrame):
    """Test ROC AUC and average precision per category, model vs baseline."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    x = np.arange(len(table))
    for ax, metric, title in zip(axes, ("auc", "average_precision"), ("ROC AUC (one vs rest)", "average precision")):
        ax.bar(x - 0.2, table[f"model_{metric}"], width=0.4, label="model")
        ax.bar(x + 0.2, table[f"baseline_{metric}"], width=0.4, label="most frequent category in history")
        ax.set_xticks(x, table["category"], rotation=20)
        ax.set_title(title)
        ax.set_ylim(0, 1)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig
