"""A fitted churn pipeline compiled to plain numpy arrays, for cheap single-row scoring.

The served model (``models.churn.pyfunc``) answers one customer per request; most of the time of
``Pipeline.predict_proba`` on one row goes to scikit-learn's input validation, DataFrame column selection
and per-step copies, not to arithmetic. :func:`compile_pipeline` reads the fitted steps of a pipeline built
by :func:`models.churn.classifier.make_pipeline` once, at load time, into arrays:

* numeric blocks: the imputer's medians, the optional signed log, the scaler's means and scales, and either
  the logistic-regression coefficients (linear terms) or, for the cubic ``SplineTransformer``, each column's
  knots and the coefficients of its basis functions (the column's term is one spline: the basis evaluated by
  de Boor's recursion at the value's knot interval, as SciPy's ``BSpline`` does, then weighted; values
  outside the training range take the boundary term, as ``extrapolation="constant"`` does);
* categorical columns: a dict from level to its one-hot coefficient (an unseen level adds nothing, as
  ``handle_unknown="ignore"`` does);
* missing indicators (``MissingIndicator(features="all")`` over the numeric columns that had missing values in
  training): the coefficient of each, added where the value is NaN;
* the intercept; the positive-class probability is ``expit`` of the log-odds, as for ``LogisticRegression``.

The result equals the pipeline's ``predict_proba[:, 1]`` up to floating-point rounding (summation order).
A pipeline with any other step or setting raises :class:`UnsupportedPipeline`; callers then keep using the
scikit-learn pipeline. Never imports ``pipelines``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from models.churn.classifier import signed_log1p
from models.churn.columns import FeatureSpec


class UnsupportedPipeline(ValueError):
    """The pipeline has a step or setting the compiler does not reproduce exactly."""


@dataclass(frozen=True)
class _NumericBlock:
    index: np.ndarray      # positions of the block's columns in the numeric matrix
    median: np.ndarray     # imputation values
    log: bool
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray       # linear: (F,); spline: (n_splines, F)
    knots: np.ndarray | None = None  # spline: (n_knots + 2 * degree, F)
    degree: int = 0
    xmin: np.ndarray | None = None
    xmax: np.ndarray | None = None
    below: np.ndarray | None = None  # the term for x < xmin (constant extrapolation)
    above: np.ndarray | None = None  # the term for x > xmax

    def decision(self, numeric: np.ndarray) -> np.ndarray:
        x = numeric[:, self.index]
        x = np.where(np.isnan(x), self.median, x)
        if self.log:
            x = signed_log1p(x)
        x = (x - self.mean) / self.scale
        if self.knots is None:
            return x @ self.coef
        return self._spline_terms(x).sum(axis=1)

    def _spline_terms(self, x: np.ndarray) -> np.ndarray:
        """(rows, F) spline term of each column: sum_j coef[j, f] * B_j(x[:, f])."""
        t, k, coef = self.knots, self.degree, self.coef
        n_splines, n_features = coef.shape
        cols = np.arange(n_features)
        inside = (self.xmin <= x) & (x <= self.xmax)
        xs = np.where(inside, x, self.xmin)  # any in-range value; replaced below
        # knot interval ell with t[ell] <= x < t[ell + 1], k <= ell <= n_splines - 1 (SciPy's find_interval)
        ell = (t[None, :, :] <= xs[:, None, :]).sum(axis=1) - 1
        np.clip(ell, k, n_splines - 1, out=ell)
        # de Boor's recursion, as SciPy evaluates a B-spline: h[m] = B_{ell - k + m}(x), m = 0..k
        h = [np.ones_like(xs)]
        for j in range(1, k + 1):
            hh = h
            h = [np.zeros_like(xs)] + [None] * j
            for n in range(1, j + 1):
                xb = t[ell + n, cols]
                xa = t[ell + n - j, cols]
                span = xb - xa
                tied = span == 0  # repeated knots: this basis function is zero
                w = hh[n - 1] / np.where(tied, 1.0, span)
                h[n - 1] = np.where(tied, h[n - 1], h[n - 1] + w * (xb - xs))
                h[n] = np.where(tied, 0.0, w * (xs - xa))
        term = np.zeros_like(xs)
        for m in range(k + 1):
            term = term + coef[ell - k + m, cols] * h[m]
        term = np.where(inside, term, 0.0)
        term = np.where(x < self.xmin, self.below, term)
        return np.where(x > self.xmax, self.above, term)


@dataclass(frozen=True)
class _IndicatorBlock:
    index: np.ndarray  # positions of the indicated columns in the numeric matrix
    coef: np.ndarray

    def decision(self, numeric: np.ndarray) -> np.ndarray:
        return np.isnan(numeric[:, self.index]).astype(float) @ self.coef


@dataclass(frozen=True)
class CompiledPipeline:
    """Log-odds and probabilities from a numeric matrix and categorical string columns (spec order)."""

    numeric_blocks: tuple[_NumericBlock | _IndicatorBlock, ...]
    levels: tuple[dict, ...]  # per categorical column: level -> coefficient
    intercept: float

    def decision_function(self, numeric: np.ndarray, categorical: list[np.ndarray]) -> np.ndarray:
        n = numeric.shape[0] if numeric.ndim == 2 and numeric.shape[1] else (len(categorical[0]) if categorical else 0)
        z = np.full(n, self.intercept, dtype=float)
        for block in self.numeric_blocks:
            z = z + block.decision(numeric)
        for values, table in zip(categorical, self.levels):
            z = z + np.fromiter((table.get(v, 0.0) for v in values), dtype=float, count=len(values))
        return z

    def predict_proba(self, numeric: np.ndarray, categorical: list[np.ndarray]) -> np.ndarray:
        return expit(self.decision_function(numeric, categorical))


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise UnsupportedPipeline(what)


def _numeric_block(steps, columns: list[str], spec: FeatureSpec, coef: np.ndarray) -> tuple[_NumericBlock, int]:
    """The block for a fitted numeric sub-pipeline and the number of model terms it produces."""
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import FunctionTransformer, SplineTransformer, StandardScaler

    named = dict(steps)
    _check(list(named) in (["impute", "scale"], ["impute", "log", "scale"], ["impute", "scale", "spline"],
                           ["impute", "log", "scale", "spline"]), f"numeric steps {list(named)}")
    imputer, scaler = named["impute"], named["scale"]
    _check(type(imputer) is SimpleImputer and imputer.keep_empty_features and not imputer.add_indicator
           and imputer.missing_values is not None and np.isnan(imputer.missing_values), "imputer settings")
    _check(type(scaler) is StandardScaler and scaler.with_mean and scaler.with_std, "scaler settings")
    if "log" in named:
        _check(type(named["log"]) is FunctionTransformer and named["log"].func is signed_log1p
               and named["log"].inverse_func is None and not named["log"].kw_args, "log step")
    position = {c: i for i, c in enumerate(spec.numeric)}
    common = dict(index=np.array([position[c] for c in columns], dtype=np.intp),
                  median=np.asarray(imputer.statistics_, dtype=float), log="log" in named,
                  mean=np.asarray(scaler.mean_, dtype=float), scale=np.asarray(scaler.scale_, dtype=float))
    n_features = len(columns)
    if "spline" not in named:
        return _NumericBlock(coef=coef[:n_features].copy(), **common), n_features
    spline = named["spline"]
    _check(type(spline) is SplineTransformer and spline.extrapolation == "constant" and spline.include_bias
           and not spline.sparse_output and getattr(spline, "handle_missing", "error") == "error",
           "spline settings")
    degree = int(spline.degree)
    bsplines = spline.bsplines_
    n_splines = bsplines[0].c.shape[1]
    _check(len(bsplines) == n_features and all(b.k == degree and b.c.shape == (n_splines, n_splines)
                                               and np.array_equal(b.c, np.eye(n_splines)) for b in bsplines),
           "spline basis")
    n_terms = n_features * n_splines
    weights = coef[:n_terms].reshape(n_features, n_splines).T.copy()  # (n_splines, F), column-major per feature
    knots = np.stack([b.t for b in bsplines], axis=1)
    xmin, xmax = knots[degree], knots[-degree - 1]
    below = np.array([weights[:degree, f] @ bsplines[f](xmin[f])[:degree] for f in range(n_features)])
    above = np.array([weights[-degree:, f] @ bsplines[f](xmax[f])[-degree:] for f in range(n_features)])
    return _NumericBlock(coef=weights, knots=knots, degree=degree, xmin=xmin, xmax=xmax, below=below,
                         above=above, **common), n_terms


def compile_pipeline(pipeline, spec: FeatureSpec) -> CompiledPipeline:
    """Compile a fitted :func:`models.churn.classifier.make_pipeline` pipeline (raises :class:`UnsupportedPipeline`)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import MissingIndicator
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    # exact types: a subclass may change what a step computes
    _check(type(pipeline) is Pipeline and list(pipeline.named_steps) == ["features", "model"], "pipeline steps")
    features, model = pipeline.named_steps["features"], pipeline.named_steps["model"]
    _check(type(features) is ColumnTransformer and type(model) is LogisticRegression, "pipeline steps")
    _check(model.coef_.shape[0] == 1 and len(model.classes_) == 2 and list(model.classes_) == [0, 1],
           "binary classes 0/1")
    coef = np.asarray(model.coef_[0], dtype=float)
    blocks, indicators, levels, offset = [], [], [], 0
    categorical_seen: list[str] = []
    for name, transformer, columns in features.transformers_:
        if name == "remainder":
            _check(transformer == "drop", "remainder")
            continue
        columns = list(columns)
        if type(transformer) is Pipeline:
            _check(all(c in spec.numeric for c in columns), f"numeric block {name}")
            block, used = _numeric_block(transformer.steps, columns, spec, coef[offset:])
            blocks.append(block)
        elif type(transformer) is MissingIndicator:
            _check(transformer.features == "all" and np.isnan(transformer.missing_values)
                   and all(c in spec.numeric for c in columns), "missing indicator settings")
            position = {c: i for i, c in enumerate(spec.numeric)}
            used = len(columns)
            indicators.append(_IndicatorBlock(np.array([position[c] for c in columns], dtype=np.intp),
                                              coef[offset:offset + used].copy()))
        elif type(transformer) is OneHotEncoder:
            _check(transformer.handle_unknown == "ignore" and transformer.drop_idx_ is None
                   and getattr(transformer, "_infrequent_enabled", False) is False, "one-hot settings")
            used = 0
            for column, categories in zip(columns, transformer.categories_):
                table = {}
                for i, level in enumerate(categories):
                    _check(isinstance(level, str), f"one-hot levels of {column!r} are not strings")
                    table[level] = float(coef[offset + used + i])
                used += len(categories)
                levels.append(table)
                categorical_seen.append(column)
        else:
            raise UnsupportedPipeline(f"transformer {name!r}")
        offset += used
    _check(offset == coef.size, "number of model terms")
    _check(categorical_seen == list(spec.categorical), "categorical columns")
    covered = sorted(int(i) for b in blocks for i in b.index)  # the indicators add terms, not columns
    _check(covered == list(range(len(spec.numeric))), "numeric columns")
    return CompiledPipeline((*blocks, *indicators), tuple(levels), float(model.intercept_[0]))
