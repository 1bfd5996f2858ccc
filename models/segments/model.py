"""Customer segmentation: RFM-style features, K-Means in a log-standardised space, segments named from centroids.

Features per customer (:data:`FEATURES`), from purchases strictly before the reference date:

* ``total_spending``: sum of ``amount``;
* ``frequency_days``: distinct purchase days (shopping frequency);
* ``avg_spend_per_item``: ``total_spending`` / units bought;
* ``recency_days``: days from the last purchase to the reference date.

All four are non-negative and heavy-tailed, so the model space is ``z = (log1p(x) - mean) / scale`` with the
training mean and scale. :class:`Segmenter` stores that transform and the centroids in that space; assigning a
customer is a nearest-centroid lookup in numpy (no scikit-learn on the serving path). Names come from the
centroids (:func:`name_segments`): each archetype of :data:`ARCHETYPES` scores a centroid by a weighted sum of
its z-coordinates and a one-to-one assignment maximises the total score; with more segments than
archetypes, the extra ones take their best archetype's name with a number.

:func:`evaluation_silhouette` is the score the study, the test and the champion re-scoring share: the
silhouette of an assignment in the data's *own* log-standardised space (so any model's labels can be judged
on any customers, whatever scaler it was trained with).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

FEATURES = ("total_spending", "frequency_days", "avg_spend_per_item", "recency_days")
FEATURE_DOC = {
    "total_spending": "sum of the customer's purchase amounts",
    "frequency_days": "distinct days with a purchase",
    "avg_spend_per_item": "total spending / units bought",
    "recency_days": "days from the last purchase to the reference date",
}
# archetype -> weights on the z-scores of (total_spending, frequency_days, avg_spend_per_item, recency_days)
ARCHETYPES: dict[str, tuple[float, float, float, float]] = {
    "high spenders": (1.0, 0.0, 1.0, -0.25),
    "frequent shoppers": (0.25, 1.0, -0.25, -0.5),
    "value seekers": (0.0, 0.25, -1.0, -0.25),
    "occasional buyers": (-0.75, -1.0, 0.0, 0.0),
    "lapsed customers": (0.0, -0.25, 0.0, 1.0),
}
SILHOUETTE_SAMPLE = 3000
SILHOUETTE_SEED = 0


def customer_features(transactions: pd.DataFrame, reference_date=None) -> pd.DataFrame:
    """``customer_id`` + :data:`FEATURES` for every customer with a purchase before ``reference_date``.

    The default reference date is the day after the last purchase. Rows sorted by ``customer_id``.
    """
    missing = [c for c in ("customer_id", "quantity", "amount", "purchase_date") if c not in transactions.columns]
    if missing:
        raise ValueError(f"transactions lack column(s) {', '.join(missing)} needed for segment features")
    dates = transactions["purchase_date"]
    reference = (pd.Timestamp(dates.max()).normalize() + pd.Timedelta(days=1) if reference_date is None
                 else pd.Timestamp(reference_date))
    tx = transactions[dates < reference]
    g = tx.assign(day=tx["purchase_date"].dt.normalize()).groupby("customer_id", sort=True)
    out = pd.DataFrame({
        "total_spending": g["amount"].sum().astype(float),
        "frequency_days": g["day"].nunique().astype(float),
        "units": g["quantity"].sum().astype(float),
        "last": g["purchase_date"].max(),
    })
    out["avg_spend_per_item"] = np.where(out["units"] > 0, out["total_spending"] / out["units"].where(out["units"] > 0, 1), 0.0)
    out["recency_days"] = (reference - out["last"]).dt.total_seconds() / 86400.0
    out = out.reset_index()
    out["customer_id"] = out["customer_id"].astype(str)
    return out[["customer_id", *FEATURES]].reset_index(drop=True)


def log_space(features: pd.DataFrame) -> np.ndarray:
    """``log1p`` of the feature columns (negative values are clipped to 0)."""
    return np.log1p(np.clip(features[list(FEATURES)].to_numpy(float), 0.0, None))


def standardise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column mean and scale (a constant column gets scale 1)."""
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    return mean, np.where(scale > 1e-12, scale, 1.0)


def evaluation_silhouette(features: pd.DataFrame, labels, sample: int = SILHOUETTE_SAMPLE) -> float:
    """Silhouette of ``labels`` in the data's own log-standardised space, in [-1, 1].

    0.0 for a single segment (the one-cluster baseline, where the silhouette is undefined). At most
    ``sample`` customers (a fixed random subset), so it is deterministic and quick.
    """
    from sklearn.metrics import silhouette_score

    labels = np.asarray(labels)
    if len(labels) != len(features):
        raise ValueError(f"{len(labels)} labels for {len(features)} customers")
    if len(np.unique(labels)) < 2 or len(labels) < 3:
        return 0.0
    x = log_space(features)
    mean, scale = standardise(x)
    z = (x - mean) / scale
    if len(z) > sample:
        keep = np.sort(np.random.default_rng(SILHOUETTE_SEED).choice(len(z), sample, replace=False))
        z, labels = z[keep], labels[keep]
        if len(np.unique(labels)) < 2:
            return 0.0
    return float(silhouette_score(z, labels))


def name_segments(centroids_z: np.ndarray) -> list[str]:
    """A name per centroid (z-space rows ordered as :data:`FEATURES`), unique, from :data:`ARCHETYPES`."""
    from scipy.optimize import linear_sum_assignment

    centroids_z = np.asarray(centroids_z, dtype=float)
    names_list = list(ARCHETYPES)
    weights = np.array([ARCHETYPES[n] for n in names_list])  # (archetypes, features)
    scores = centroids_z @ weights.T  # (k, archetypes)
    rows, cols = linear_sum_assignment(-scores)
    names: list[str | None] = [None] * len(centroids_z)
    for r, c in zip(rows, cols):
        names[r] = names_list[c]
    used: dict[str, int] = {}
    for i in range(len(names)):
        if names[i] is None:
            best = names_list[int(np.argmax(scores[i]))]
            used[best] = used.get(best, 1) + 1
            names[i] = f"{best} {used[best]}"
    return [str(n) for n in names]


@dataclass
class Segmenter:
    """K-Means segments in the log-standardised feature space. ``fit`` sets the attributes ending in ``_``."""

    k: int = 4
    seed: int = 42
    n_init: int = 4
    mean_: np.ndarray | None = None
    scale_: np.ndarray | None = None
    centroids_: np.ndarray | None = None  # (k, features), z-space
    names_: list[str] = field(default_factory=list)

    def fit(self, features: pd.DataFrame) -> "Segmenter":
        from sklearn.cluster import KMeans
        from threadpoolctl import threadpool_limits

        x = log_space(features)
        if len(x) < self.k:
            raise ValueError(f"{len(x)} customers cannot form {self.k} segments")
        self.mean_, self.scale_ = standardise(x)
        z = (x - self.mean_) / self.scale_
        # one thread: on small data the OpenMP pool costs seconds per fit (busy waiting), the work milliseconds
        with threadpool_limits(1):
            km = KMeans(n_clusters=self.k, n_init=self.n_init, random_state=self.seed).fit(z)
        centroids = km.cluster_centers_
        # segment ids ordered by total spending of the centroid (0 = lowest), so ids are stable across refits
        order = np.argsort(centroids[:, 0], kind="stable")
        self.centroids_ = centroids[order]
        self.names_ = name_segments(self.centroids_)
        return self

    def transform(self, features: pd.DataFrame) -> np.ndarray:
        return (log_space(features) - self.mean_) / self.scale_

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        z = self.transform(features)
        d = ((z[:, None, :] - self.centroids_[None, :, :]) ** 2).sum(axis=2)
        return d.argmin(axis=1)

    def to_dict(self) -> dict:
        return {"features": list(FEATURES), "k": int(self.k), "mean": self.mean_.tolist(),
                "scale": self.scale_.tolist(), "centroids": self.centroids_.tolist(), "names": list(self.names_)}

    @classmethod
    def from_dict(cls, data: dict) -> "Segmenter":
        if list(data.get("features", [])) != list(FEATURES):
            raise ValueError(f"segment model features {data.get('features')} differ from {list(FEATURES)}")
        return cls(k=int(data["k"]), mean_=np.asarray(data["mean"], float), scale_=np.asarray(data["scale"], float),
                   centroids_=np.asarray(data["centroids"], float), names_=list(data["names"]))

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Segmenter":
        return cls.from_dict(json.loads(Path(path).read_text()))


def describe_segments(features: pd.DataFrame, labels, names: list[str]) -> tuple[pd.DataFrame, dict[str, str]]:
    """Per segment: size, share, medians of the features (and against the whole base); one paragraph each."""
    labels = np.asarray(labels)
    overall = features[list(FEATURES)].median()
    rows, paragraphs = [], {}
    for seg, name in enumerate(names):
        part = features[labels == seg]
        med = part[list(FEATURES)].median() if len(part) else pd.Series(np.nan, index=list(FEATURES))
        row = {"segment_id": seg, "segment_name": name, "size": int(len(part)),
               "share": len(part) / max(len(features), 1), **{f"median_{f}": float(med[f]) for f in FEATURES}}
        rows.append(row)
        if not len(part):
            paragraphs[name] = f"Segment {seg}, {name}: no customers in this data."
            continue

        def rel(f):
            base = overall[f]
            return f"{med[f] / base:.1f}x the median customer" if base > 0 else "n/a"

        paragraphs[name] = (
            f"Segment {seg}, {name}: {len(part)} customers ({row['share']:.0%} of the base). The median customer "
            f"here spent {med['total_spending']:,.0f} in total ({rel('total_spending')}), shopped on "
            f"{med['frequency_days']:.0f} distinct days ({rel('frequency_days')}), paid {med['avg_spend_per_item']:,.2f} "
            f"per item ({rel('avg_spend_per_item')}) and last bought {med['recency_days']:.0f} days before the "
            f"reference date ({rel('recency_days')})."
        )
    return pd.DataFrame(rows), paragraphs
