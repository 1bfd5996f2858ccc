"""Next-category prediction (seed 003): which category will a customer buy next?

:func:`build_features` describes each customer at a cutoff date T from rows dated strictly before T (so
changing anything on or after T cannot change them). Customers with a purchase in ``[T - lookback_days, T)``
get, with ``<c>`` the :func:`category_slug` of each category:

* ``n_purchases``, ``days_since_last_purchase`` (in the lookback window);
* ``share_<c>``: share of the customer's purchases in the window that were in ``c``;
* ``recent_share_<c>``: the same over the last ``recent_days`` (0 when none);
* ``days_since_<c>``: days since the last purchase in ``c`` (``lookback_days`` when none in the window);
* ``events_<c>``: behavioural events on ``c``'s products in the last ``event_days`` (views, carts, searches);
* ``last_is_<c>``: 1 when the customer's last purchase before T was in ``c``.

:func:`next_category_labels` gives the category of each customer's first purchase in ``[T, T + horizon)``.
:class:`NextCategoryClassifier` is a multinomial logistic regression (scikit-learn, lbfgs) on optionally
log1p-transformed, standardised features plus the smoothed log-shares ``log((count_c + 0.5) / (n + 0.5 K))``
it derives from ``share_<c>`` and ``n_purchases`` (in that space the customer's own history enters the
multinomial logits linearly, which lets the model reproduce and then improve the history baseline); after
fitting it is exported to plain arrays
(:meth:`NextCategoryClassifier.to_dict`) so the served model needs numpy only. :func:`history_baseline` is
the "most frequent category in history" baseline as probabilities.
"""

from __future__ import annotations

import json
import logging
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

ID_COLUMN = "customer_id"
DEFAULT_LOOKBACK_DAYS = 730
DEFAULT_RECENT_DAYS = 90
DEFAULT_EVENT_DAYS = 30
DAY = pd.Timedelta(days=1)
PER_CATEGORY = ("share", "recent_share", "days_since", "events", "last_is")
LOG_PREFIXES = ("n_purchases", "days_since", "events_")  # counts and durations, log1p when asked
FEATURE_SETS = ("all", "shares_events")  # every input column, or only the events (plus the log-shares, always)
SHARE_PRIOR = 0.5  # pseudo-count per category of the smoothed log-shares


def category_slug(category: str) -> str:
    """``Home & Living`` -> ``home_living``: lower-case letters and digits joined by underscores."""
    slug = re.sub(r"[^0-9a-z]+", "_", str(category).lower()).strip("_")
    return slug or "category"


def slugs(categories: Sequence[str]) -> list[str]:
    out = [category_slug(c) for c in categories]
    if len(set(out)) != len(out):
        raise ValueError(f"categories {list(categories)} map to clashing column names {out}")
    return out


def feature_columns(categories: Sequence[str]) -> list[str]:
    cols = ["n_purchases", "days_since_last_purchase"]
    for prefix in PER_CATEGORY:
        cols += [f"{prefix}_{s}" for s in slugs(categories)]
    return cols


def probability_columns(categories: Sequence[str]) -> list[str]:
    return [f"prob_{s}" for s in slugs(categories)]


def _crosstab(ids: pd.Series, cats: pd.Series, index: pd.Index, categories: Sequence[str]) -> np.ndarray:
    counts = pd.crosstab(ids, cats) if len(ids) else pd.DataFrame()
    return counts.reindex(index=index, columns=list(categories), fill_value=0).to_numpy(float)


def build_features(tables: Mapping[str, pd.DataFrame], cutoff, categories: Sequence[str],
                   lookback_days: int = DEFAULT_LOOKBACK_DAYS, recent_days: int = DEFAULT_RECENT_DAYS,
                   event_days: int = DEFAULT_EVENT_DAYS) -> pd.DataFrame:
    """``customer_id`` + :func:`feature_columns` for customers active at ``cutoff`` (module docstring)."""
    t = pd.Timestamp(cutoff)
    tx = tables["transactions"]
    missing = [c for c in (ID_COLUMN, "category", "purchase_date") if c not in tx.columns]
    if missing:
        raise ValueError(f"transactions lack column(s) {', '.join(missing)} needed for next-category features")
    categories = list(categories)
    window = tx[(tx["purchase_date"] < t) & (tx["purchase_date"] >= t - lookback_days * DAY)
                & tx["category"].isin(categories)]
    ids = pd.Index(sorted(window[ID_COLUMN].unique()), name=ID_COLUMN)
    columns = feature_columns(categories)
    if len(ids) == 0:
        return pd.DataFrame({ID_COLUMN: pd.Series(dtype=str), **{c: pd.Series(dtype=float) for c in columns}})

    counts = _crosstab(window[ID_COLUMN], window["category"], ids, categories)
    n = counts.sum(axis=1)
    recent = window[window["purchase_date"] >= t - recent_days * DAY]
    recent_counts = _crosstab(recent[ID_COLUMN], recent["category"], ids, categories)
    recent_n = recent_counts.sum(axis=1, keepdims=True)
    last_by_cat = window.groupby([ID_COLUMN, "category"])["purchase_date"].max().unstack()
    last_by_cat = last_by_cat.reindex(index=ids, columns=categories)
    days_since = ((t - last_by_cat) / DAY).to_numpy(float)
    days_since = np.where(np.isnan(days_since), float(lookback_days), days_since)
    ordered = window.sort_values(["purchase_date", "transaction_id"] if "transaction_id" in window.columns
                                 else ["purchase_date"], kind="stable")
    last_cat = ordered.groupby(ID_COLUMN)["category"].last().reindex(ids)
    last_is = (last_cat.to_numpy(dtype=object)[:, None] == np.asarray(categories, dtype=object)[None, :]).astype(float)

    events = tables.get("events")
    if events is not None and len(events) and "products" in tables:
        ev = events[(events["event_date"] < t) & (events["event_date"] >= t - event_days * DAY)]
        ev = ev.merge(tables["products"][["product_id", "category"]], on="product_id", how="inner")
        ev = ev[ev[ID_COLUMN].isin(ids)]
        event_counts = _crosstab(ev[ID_COLUMN], ev["category"], ids, categories)
    else:
        event_counts = np.zeros_like(counts)

    with np.errstate(invalid="ignore", divide="ignore"):
        blocks = {
            "share": counts / n[:, None],
            "recent_share": np.where(recent_n > 0, recent_counts / np.where(recent_n > 0, recent_n, 1), 0.0),
            "days_since": days_since,
            "events": event_counts,
            "last_is": last_is,
        }
    data = {"n_purchases": n, "days_since_last_purchase": days_since.min(axis=1)}
    for prefix in PER_CATEGORY:
        for j, s in enumerate(slugs(categories)):
            data[f"{prefix}_{s}"] = blocks[prefix][:, j]
    frame = pd.DataFrame(data, index=ids).reset_index()
    frame[ID_COLUMN] = frame[ID_COLUMN].astype(str)
    return frame[[ID_COLUMN, *columns]]


def next_category_labels(transactions: pd.DataFrame, cutoff, horizon_days: int,
                         categories: Sequence[str] | None = None) -> pd.Series:
    """Category of each customer's first purchase in ``[cutoff, cutoff + horizon_days)``, indexed by customer."""
    t = pd.Timestamp(cutoff)
    tx = transactions[(transactions["purchase_date"] >= t) & (transactions["purchase_date"] < t + horizon_days * DAY)]
    if categories is not None:
        tx = tx[tx["category"].isin(list(categories))]
    keys = ["purchase_date", "transaction_id"] if "transaction_id" in tx.columns else ["purchase_date"]
    first = tx.sort_values(keys, kind="stable").groupby(ID_COLUMN)["category"].first()
    first.index = first.index.astype(str)
    return first.astype(object).rename("category")


def history_baseline(features: pd.DataFrame, categories: Sequence[str], prior: Sequence[float]) -> np.ndarray:
    """"Most frequent category in history" as probabilities: the customer's purchase shares, ties broken by
    a small weight (1e-3) on the overall category shares ``prior``; rows sum to 1."""
    shares = features[[f"share_{s}" for s in slugs(categories)]].to_numpy(float)
    p = shares + 1e-3 * np.asarray(prior, dtype=float)[None, :]
    return p / p.sum(axis=1, keepdims=True)


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


@dataclass
class NextCategoryClassifier:
    """Multinomial logistic regression on (log1p-)standardised features. ``fit`` sets the ``_`` attributes."""

    categories: list[str] = field(default_factory=list)
    C: float = 1.0
    class_weight: str | None = None  # None or "balanced"
    log_counts: bool = True
    feature_set: str = "all"
    max_iter: int = 2000
    columns_: list[str] = field(default_factory=list)
    log_mask_: np.ndarray | None = None
    mean_: np.ndarray | None = None
    scale_: np.ndarray | None = None
    coef_: np.ndarray | None = None  # (len(categories), features); rows of categories never seen are zero
    intercept_: np.ndarray | None = None  # -inf for categories never seen in training (probability 0)
    convergence_warnings_: int = 0

    def _design(self, X: pd.DataFrame) -> np.ndarray:
        """The input columns (log1p where masked) and the smoothed log-shares, unscaled."""
        x = X[self.columns_].to_numpy(float)
        x = np.where(self.log_mask_[None, :], np.log1p(np.clip(x, 0.0, None)), x)
        n = X["n_purchases"].to_numpy(float)[:, None]
        counts = X[[f"share_{s}" for s in slugs(self.categories)]].to_numpy(float) * n
        k = len(self.categories)
        log_shares = np.log((counts + SHARE_PRIOR) / (n + SHARE_PRIOR * k))
        return np.hstack([x, log_shares])

    def _transform(self, X: pd.DataFrame) -> np.ndarray:
        return (self._design(X) - self.mean_) / self.scale_

    @property
    def design_columns(self) -> list[str]:
        """Names of the model's coefficients: the used input columns, then ``log_share_<c>``."""
        return [*self.columns_, *(f"log_share_{s}" for s in slugs(self.categories))]

    @property
    def input_columns(self) -> list[str]:
        """Every column a request needs (the model's columns and what the log-shares derive from)."""
        return feature_columns(self.categories)

    def fit(self, X: pd.DataFrame, y) -> "NextCategoryClassifier":
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression
        from threadpoolctl import threadpool_limits

        y = np.asarray(y, dtype=object)
        unknown = set(y.tolist()) - set(self.categories)
        if unknown:
            raise ValueError(f"labels {sorted(unknown)} are not among the categories {self.categories}")
        if len(set(y.tolist())) < 2:
            raise ValueError("the training labels hold fewer than two categories")
        if self.feature_set not in FEATURE_SETS:
            raise ValueError(f"feature_set must be one of {FEATURE_SETS}, got {self.feature_set!r}")
        all_columns = feature_columns(self.categories)
        self.columns_ = (all_columns if self.feature_set == "all"
                         else [c for c in all_columns if c.startswith("events_")])
        self.log_mask_ = np.array([self.log_counts and c.startswith(LOG_PREFIXES) for c in self.columns_], dtype=bool)
        x = self._design(X)
        self.mean_ = x.mean(axis=0)
        scale = x.std(axis=0)
        self.scale_ = np.where(scale > 1e-12, scale, 1.0)
        z = (x - self.mean_) / self.scale_
        lr = LogisticRegression(C=float(self.C), class_weight=self.class_weight, solver="lbfgs",
                                max_iter=self.max_iter)
        # one BLAS/OpenMP thread: on data this small the thread pool's busy waiting costs seconds per fit
        with warnings.catch_warnings(record=True) as caught, threadpool_limits(1):
            warnings.simplefilter("ignore")
            warnings.simplefilter("always", ConvergenceWarning)
            lr.fit(z, y)
        self.convergence_warnings_ = sum(issubclass(w.category, ConvergenceWarning) for w in caught)
        index = {c: i for i, c in enumerate(self.categories)}
        self.coef_ = np.zeros((len(self.categories), z.shape[1]))
        self.intercept_ = np.full(len(self.categories), -np.inf)
        seen = [index[c] for c in lr.classes_]
        if len(lr.classes_) == 2:  # scikit-learn keeps one row for two classes: logits (0, w.x + b)
            self.coef_[seen[1]] = lr.coef_[0]
            self.intercept_[seen[0]] = 0.0
            self.intercept_[seen[1]] = lr.intercept_[0]
        else:
            self.coef_[seen] = lr.coef_
            self.intercept_[seen] = lr.intercept_
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """(n, len(categories)) probabilities; numpy only."""
        if len(X) == 0:
            return np.zeros((0, len(self.categories)))
        return _softmax(self._transform(X) @ self.coef_.T + self.intercept_[None, :])

    def to_dict(self) -> dict:
        return {"categories": list(self.categories), "C": self.C, "class_weight": self.class_weight,
                "log_counts": self.log_counts, "feature_set": self.feature_set, "columns": list(self.columns_), "log_mask": self.log_mask_.tolist(),
                "mean": self.mean_.tolist(), "scale": self.scale_.tolist(), "coef": self.coef_.tolist(),
                "intercept": [None if not np.isfinite(v) else float(v) for v in self.intercept_]}

    @classmethod
    def from_dict(cls, d: dict) -> "NextCategoryClassifier":
        model = cls(categories=list(d["categories"]), C=float(d["C"]), class_weight=d["class_weight"],
                    log_counts=bool(d["log_counts"]), feature_set=d.get("feature_set", "all"))
        model.columns_ = list(d["columns"])
        model.log_mask_ = np.asarray(d["log_mask"], dtype=bool)
        model.mean_, model.scale_ = np.asarray(d["mean"], float), np.asarray(d["scale"], float)
        model.coef_ = np.asarray(d["coef"], float)
        model.intercept_ = np.array([-np.inf if v is None else v for v in d["intercept"]], dtype=float)
        return model

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "NextCategoryClassifier":
        return cls.from_dict(json.loads(Path(path).read_text()))
