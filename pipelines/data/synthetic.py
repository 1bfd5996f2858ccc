"""A seeded synthetic online shop: the four canonical tables plus the ground truth planted in them.

``generate_shop`` builds ``products``, ``customers``, ``transactions`` and ``events`` (DESIGN.md, "Data
contract") and a :class:`SyntheticTruth` that records what was planted, so tests can check that models
find it:

* Products in five categories with subcategories, category-specific price ranges and a long-tailed
  popularity. Customers with spending power (low 20%, medium 60%, high 20%), purchase frequency (rare 30%,
  regular 50%, frequent 20%) and Dirichlet category preferences nudged by gender and age
  (:data:`DEMOGRAPHIC_TILTS`; ``demographic_strength`` raises every factor to that power: 1 is the default shop,
  0 no demographic signal, 3 a shop where demographics tell much more about what a customer buys).
* Low-rank affinity: every customer and product has ``N_FACTORS`` latent factors; within a category a
  customer picks a product with probability proportional to ``exp(u.v + log popularity + spend x price)``,
  so collaborative filtering beats popularity.
* Yearly seasonality (a December peak in Electronics, Books and Beauty, summer in Clothing) and a trend per
  category drive both the purchase rate and the category mix, so SARIMA beats a seasonal naive forecast.
* Churn: a latent satisfaction lowers the churn hazard and shows in behaviour (more browsing, fewer
  abandoned carts). Most churners slow down over months before their churn date, some stop abruptly;
  some customers who stay have a temporary slowdown. Nothing happens after a churn date.
* About 30% of purchases copy the category of an earlier purchase of the same customer. Each purchase is
  preceded by product views (and usually an add-to-cart) of the same product; browsing sessions without a
  purchase add noise.

Everything is vectorised numpy driven by one ``np.random.default_rng(seed)``; loops run over categories and
chunks only. Rows are sorted deterministically, so the same arguments give the same tables (and the same
bytes through :func:`pipelines.data.tables.write_tables`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.errors import ConfigurationError
from pipelines.data.tables import EVENT_TYPES, Tables

logger = logging.getLogger(__name__)

CATEGORIES = ("Electronics", "Clothing", "Home & Living", "Books", "Beauty")
SUBCATEGORIES = {
    "Electronics": ("Smartphones", "Laptops", "Headphones", "Cameras", "Accessories", "Smart Home"),
    "Clothing": ("Tops", "Dresses", "Outerwear", "Shoes", "Activewear"),
    "Home & Living": ("Kitchen", "Furniture", "Decor", "Bedding", "Garden"),
    "Books": ("Fiction", "Non-fiction", "Children", "Comics", "Textbooks"),
    "Beauty": ("Skincare", "Makeup", "Fragrance", "Haircare"),
}
PRICE_RANGES = {  # base price drawn log-uniformly in [low, high]
    "Electronics": (25.0, 1500.0),
    "Clothing": (10.0, 220.0),
    "Home & Living": (12.0, 600.0),
    "Books": (6.0, 60.0),
    "Beauty": (5.0, 130.0),
}
CATEGORY_SHARES = np.array([0.20, 0.25, 0.20, 0.20, 0.15])  # of the catalogue and of the mean preference
# Yearly seasonal profile per category (calendar months Jan..Dec), normalised to mean 1 below.
_SEASONAL_PROFILE = np.array(
    [
        [0.85, 0.75, 0.80, 0.80, 0.85, 0.85, 0.90, 0.90, 0.95, 1.00, 1.55, 2.10],  # Electronics: Nov-Dec
        [0.70, 0.65, 0.85, 1.00, 1.15, 1.45, 1.60, 1.35, 1.00, 0.90, 0.90, 1.00],  # Clothing: summer
        [0.95, 0.95, 1.10, 1.20, 1.15, 1.00, 0.95, 0.90, 0.95, 0.95, 0.95, 0.95],  # Home & Living: mild spring
        [0.90, 0.80, 0.85, 0.85, 0.85, 0.80, 0.90, 1.10, 1.15, 0.95, 1.05, 1.85],  # Books: back to school, Dec
        [0.85, 1.15, 0.90, 0.90, 1.10, 0.90, 0.85, 0.85, 0.90, 0.95, 1.20, 1.80],  # Beauty: Feb, May, Dec
    ]
)
SEASONALITY = _SEASONAL_PROFILE / _SEASONAL_PROFILE.mean(axis=1, keepdims=True)
SEASONAL_PEAK_RATIO = 1.3  # a category whose peak month is >= 1.3 x its mean counts as seasonal
TREND = np.array([0.10, 0.05, 0.12, -0.08, 0.15])  # log growth per year of each category's demand

SPENDING_POWER = ("low", "medium", "high")
SPENDING_SHARES = (0.2, 0.6, 0.2)
SPENDING_PRICE_TILT = np.array([-0.6, 0.0, 0.6], dtype=np.float32)  # x standardised log price in the logits
PURCHASE_FREQUENCY = ("rare", "regular", "frequent")
FREQUENCY_SHARES = (0.3, 0.5, 0.2)
FREQUENCY_RATE = np.array([1.0, 3.0, 8.0])  # relative purchase rates
TRANSACTIONS_PER_CUSTOMER_YEAR = 20.0 / 3.0  # expected volume: 5,000 customers x 3 years -> ~100,000

N_FACTORS = 8
AFFINITY_SCALE = 1.6  # standard deviation of the latent affinity u.v
POPULARITY_SIGMA = 1.1  # log-normal popularity weights
DIRICHLET_CONCENTRATION = 4.0
# (customers, category, factor on their Dirichlet concentration); each factor is raised to demographic_strength
DEMOGRAPHIC_TILTS = (
    ("female", "Beauty", 1.8), ("female", "Clothing", 1.3), ("male", "Electronics", 1.6),
    ("under 30", "Electronics", 1.3), ("under 30", "Clothing", 1.2),
    ("over 55", "Books", 1.5), ("over 55", "Home & Living", 1.3),
)
REPEAT_CATEGORY_SHARE = 0.3

CHURN_HAZARD = 0.16  # per year, for an average customer (satisfaction 0, regular buyer)
CHURN_SATISFACTION_EFFECT = 0.8  # hazard x exp(-0.8 x satisfaction)
CHURN_FREQUENCY_EFFECT = np.array([1.4, 1.0, 0.7])
CHURN_MIN_TENURE_DAYS = 30
ABRUPT_CHURN_SHARE = 0.25  # churners who keep their pace until the churn date
DECAY_DAYS = (60.0, 240.0)  # activity declines linearly over this many days before churning
DECAY_FLOOR = 0.1
SLOWDOWN_SHARE = 0.25  # customers with one temporary slowdown
SLOWDOWN_DAYS = (45.0, 150.0)
SLOWDOWN_LEVEL = 0.25

BROWSE_SESSIONS_PER_PURCHASE = 0.6  # x exp(0.5 x satisfaction)
FUNNEL_EXTRA_VIEWS = 0.8  # product views before a purchase: 1 + Poisson(0.8)
FUNNEL_CART_PROB = 0.8
FUNNEL_SEARCH_PROB = 0.4
FUNNEL_MAX_SECONDS = 172_000  # the funnel of a purchase starts at most ~2 days before it
SESSION_EXTRA_VIEWS = 1.8
SESSION_SEARCH_PROB = 0.35
OPEN_DELAY_DAYS = 2  # first purchase at least two days after signup (or the start of the window)
EXISTING_SHARE = 0.6  # customers who signed up before the window; arrivals roughly balance churn

QUANTITY_PROBS = np.array(
    [
        [0.90, 0.08, 0.02, 0.00, 0.00],  # Electronics
        [0.62, 0.25, 0.09, 0.03, 0.01],  # Clothing
        [0.72, 0.20, 0.06, 0.015, 0.005],  # Home & Living
        [0.60, 0.25, 0.10, 0.03, 0.02],  # Books
        [0.58, 0.26, 0.11, 0.03, 0.02],  # Beauty
    ]
)
PRICE_FACTOR = (0.85, 1.15)
HOUR_WEIGHTS = np.array(
    [0.6, 0.3, 0.2, 0.15, 0.15, 0.3, 0.8, 1.5, 2.2, 2.8, 3.2, 3.6]  # 00:00 .. 11:00
    + [4.2, 4.0, 3.6, 3.4, 3.5, 3.9, 4.6, 5.4, 5.8, 5.2, 3.6, 1.8]  # 12:00 .. 23:00
)

GENDERS = ("Female", "Male", "Non-binary")
GENDER_SHARES = (0.51, 0.46, 0.03)
LOCATIONS = (
    "New York", "Los Angeles", "Chicago", "Houston", "Phoenix", "Philadelphia", "San Antonio", "San Diego",
    "Dallas", "Austin", "Seattle", "Denver", "Boston", "Atlanta", "Miami", "Portland",
)  # fmt: skip
LOCATION_WEIGHTS = np.array([14, 10, 8, 7, 5, 5, 4, 4, 5, 4, 6, 4, 6, 5, 5, 3], dtype=float)
PROFESSIONS = (
    "Student", "Teacher", "Engineer", "Nurse", "Doctor", "Sales", "Designer", "Manager",
    "Retail Worker", "Developer", "Lawyer", "Retired", "Self-employed", "Administrator",
)  # fmt: skip
PROFESSION_WEIGHTS = np.array(  # rows: spending power low, medium, high
    [
        [9, 4, 1, 4, 0.2, 5, 2, 0.5, 8, 1, 0.2, 5, 3, 5],
        [3, 6, 5, 6, 2, 6, 4, 5, 4, 5, 1.5, 4, 4, 6],
        [0.5, 2, 8, 2, 7, 3, 3, 9, 0.5, 8, 6, 2, 5, 2],
    ]
)
BRANDS = (
    "Aurora", "Nimbus", "Vertex", "Lumen", "Solace", "Kestrel", "Orchid", "Summit", "Harbor", "Pinnacle",
    "Willow", "Zephyr", "Cobalt", "Juniper", "Atlas", "Meridian",
)  # fmt: skip

ProgressFn = Callable[[str], None]


@dataclass(frozen=True)
class SyntheticTruth:
    """What ``generate_shop`` planted, indexed by the ids used in the tables.

    Per customer (index ``customer_id``): ``preferences`` (customers x categories, rows sum to 1),
    ``spending_power``, ``purchase_frequency``, ``purchase_rate`` (expected purchases per active year
    before seasonality and decay), ``satisfaction`` (latent; lowers the churn hazard), ``churn_dates``
    (``datetime64[ns]``, NaT for customers who did not churn within the window; nothing happens on or
    after it), ``decay_days`` (how long activity declines before the churn date; 0 for abrupt churners and
    non-churners), ``customer_factors`` (customers x ``N_FACTORS``).
    Per product (index ``product_id``): ``product_factors`` (products x ``N_FACTORS``), ``product_popularity``.
    Per category: ``seasonality`` (categories x calendar months 1..12, mean 1), ``seasonal_categories``
    (category -> peak calendar month, for the strongly seasonal ones), ``trend`` (log growth per year).
    ``start`` and ``end`` bound the window (``end`` exclusive).
    """

    categories: tuple[str, ...]
    preferences: pd.DataFrame
    spending_power: pd.Series
    purchase_frequency: pd.Series
    purchase_rate: pd.Series
    satisfaction: pd.Series
    churn_dates: pd.Series
    decay_days: pd.Series
    customer_factors: pd.DataFrame
    product_factors: pd.DataFrame
    product_popularity: pd.Series
    seasonality: pd.DataFrame
    seasonal_categories: dict[str, int]
    trend: pd.Series
    start: pd.Timestamp
    end: pd.Timestamp

    @property
    def churned(self) -> pd.Series:
        """True for customers with a churn date inside the window."""
        return self.churn_dates.notna()

    def affinity(self, customer_ids: Sequence[str], product_ids: Sequence[str]) -> np.ndarray:
        """Latent affinity ``u_customer . v_product`` for aligned pairs of ids."""
        u = self.customer_factors.to_numpy()[self.customer_factors.index.get_indexer(customer_ids)]
        v = self.product_factors.to_numpy()[self.product_factors.index.get_indexer(product_ids)]
        return np.einsum("ij,ij->i", u, v)


def validate_parameters(customers: int, products: int, years: int, demographic_strength: float = 1.0) -> None:
    """Raise :class:`ConfigurationError` naming the first parameter out of range."""
    for name, value, minimum in (("customers", customers, 10), ("products", products, 10), ("years", years, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ConfigurationError(f"{name} must be an integer, got {value!r}")
        if value < minimum:
            raise ConfigurationError(f"{name} must be at least {minimum}, got {value}")
    if isinstance(demographic_strength, bool) or not isinstance(demographic_strength, (int, float, np.number)) \
            or not 0 <= demographic_strength <= 10:
        raise ConfigurationError(f"demographic_strength must be a number from 0 to 10, got {demographic_strength!r}")


def generate_shop(
    customers: int = 5000,
    products: int = 200,
    years: int = 3,
    seed: int = 42,
    start: str | pd.Timestamp = "2023-01-01",
    progress: ProgressFn | None = None,
    demographic_strength: float = 1.0,
) -> tuple[Tables, SyntheticTruth]:
    """Generate the four canonical tables for ``years`` years from ``start`` and the planted truth.

    About ``customers x years x 20/3`` transactions (100,000 with the defaults) and five to six times as
    many events. ``progress`` (optional) receives one line per finished stage. ``demographic_strength``
    scales how much gender and age tilt the category preferences (:data:`DEMOGRAPHIC_TILTS`; the default 1
    leaves every table as it always was).
    """
    validate_parameters(customers, products, years, demographic_strength)
    say = progress or (lambda message: None)
    rng = np.random.default_rng(seed)
    t_start = pd.Timestamp(start).normalize()
    t_end = t_start + pd.DateOffset(years=years)
    cal = _Calendar(t_start, t_end)

    prod = _make_products(rng, products)
    say(f"products: {products} rows")
    cust = _make_customers(rng, customers, cal, float(demographic_strength))
    say(f"customers: {customers} rows")
    model = _ChoiceModel(rng, prod, cust)
    cust.rate = _calibrated_rates(cust, cal, customers * years * TRANSACTIONS_PER_CUSTOMER_YEAR)
    tx = _make_transactions(rng, cust, prod, model, cal)
    say(f"transactions: {tx['cust'].size} rows")
    ev = _make_events(rng, cust, prod, model, cal, tx)
    say(f"events: {ev['cust'].size} rows")

    tables = _frames(cust, prod, tx, ev, cal)
    truth = _truth(cust, prod, model, cal, tables)
    return tables, truth


# --------------------------------------------------------------------------------------------- calendar


class _Calendar:
    """Days since ``start`` (floats), month intervals and their seasonal-trend multipliers."""

    def __init__(self, start: pd.Timestamp, end: pd.Timestamp):
        self.start, self.end = start, end
        self.days = (end - start).days
        month_starts = pd.date_range(start, end, freq="MS")
        edges = sorted({start, *month_starts, end})
        self.bounds = np.array([(e - start).days for e in edges], dtype=np.float64)  # n_intervals + 1
        self.calendar_month = np.array([e.month for e in edges[:-1]])  # 1..12 per interval
        mid_years = (self.bounds[:-1] + self.bounds[1:]) / 2 / 365.25
        # demand multiplier of each category in each interval: seasonality x trend
        self.demand = SEASONALITY[:, self.calendar_month - 1] * np.exp(TREND[:, None] * mid_years[None, :])

    def interval(self, day: np.ndarray) -> np.ndarray:
        return (np.searchsorted(self.bounds, day, side="right") - 1).astype(np.int32)

    def timestamps(self, seconds: np.ndarray) -> np.ndarray:
        """``datetime64[ns]`` from integer seconds since ``start``."""
        base = np.datetime64(self.start.to_datetime64(), "s")
        return (base + seconds.astype("timedelta64[s]")).astype("datetime64[ns]")


# --------------------------------------------------------------------------------------------- products


@dataclass
class _Products:
    category: np.ndarray  # int8 index into CATEGORIES
    subcategory: list[str]
    name: list[str]
    base_price: np.ndarray
    popularity: np.ndarray  # sums to 1
    price_z: np.ndarray  # standardised log price within its category


def _allocate(n: int, shares: Sequence[float], minimum: int = 0) -> np.ndarray:
    """Split ``n`` into counts close to ``shares`` (largest remainder), each at least ``minimum``."""
    shares = np.asarray(shares, dtype=float) / np.sum(shares)
    counts = np.maximum(np.floor(shares * n).astype(int), minimum)
    while counts.sum() < n:
        counts[np.argmax(shares * n - counts)] += 1
    while counts.sum() > n:
        counts[np.argmax(np.where(counts > minimum, counts - shares * n, -np.inf))] -= 1
    return counts


def _make_products(rng: np.random.Generator, n: int) -> _Products:
    counts = _allocate(n, CATEGORY_SHARES, minimum=1)
    category = rng.permutation(np.repeat(np.arange(len(CATEGORIES), dtype=np.int8), counts))
    base_price = np.empty(n)
    price_z = np.empty(n)
    sub_index = np.empty(n, dtype=np.int64)
    for c, name in enumerate(CATEGORIES):
        idx = np.flatnonzero(category == c)
        low, high = PRICE_RANGES[name]
        raw = np.exp(rng.uniform(np.log(low), np.log(high), idx.size))
        # charm prices: 19.99 below 100, 249.99 above
        base_price[idx] = np.where(raw < 100, np.floor(raw) + 0.99, np.round(raw / 10) * 10 - 0.01)
        logp = np.log(base_price[idx])
        price_z[idx] = (logp - logp.mean()) / (logp.std() + 1e-9)
        sub_index[idx] = rng.integers(0, len(SUBCATEGORIES[name]), idx.size)
    popularity = np.exp(rng.normal(0.0, POPULARITY_SIGMA, n))
    popularity /= popularity.sum()
    brand = rng.integers(0, len(BRANDS), n)
    model_no = rng.integers(1, 1000, n)
    series = rng.integers(0, 26, n)
    subcategory = [SUBCATEGORIES[CATEGORIES[c]][s] for c, s in zip(category, sub_index)]
    name = [f"{BRANDS[b]} {s} {chr(65 + x)}{m}" for b, s, x, m in zip(brand, subcategory, series, model_no)]
    return _Products(category, subcategory, name, np.round(base_price, 2), popularity, price_z.astype(np.float32))


# -------------------------------------------------------------------------------------------- customers


@dataclass
class _Customers:
    signup_day: np.ndarray  # int days since start (negative: signed up before the window)
    gender: np.ndarray  # int8 index
    age: np.ndarray
    location: np.ndarray
    profession: np.ndarray
    spend: np.ndarray  # int8 index into SPENDING_POWER
    freq: np.ndarray  # int8 index into PURCHASE_FREQUENCY
    pref: np.ndarray  # (n, n_categories)
    satisfaction: np.ndarray
    open_day: np.ndarray  # first day purchases are possible
    churn_day: np.ndarray  # float day of churn, inf when not within the window
    stop_day: np.ndarray  # min(churn_day, window end)
    decay: np.ndarray  # days of decline before churn (0: abrupt or no churn)
    slow_from: np.ndarray  # temporary slowdown [slow_from, slow_to), inf when none
    slow_to: np.ndarray
    relative_rate: np.ndarray
    rate: np.ndarray | None = None  # purchases per year, calibrated


def _exact_shares(rng: np.random.Generator, n: int, shares: Sequence[float]) -> np.ndarray:
    """Labels 0..k-1 in exactly the allocated proportions, in random order."""
    return rng.permutation(np.repeat(np.arange(len(shares), dtype=np.int8), _allocate(n, shares)))


def _make_customers(rng: np.random.Generator, n: int, cal: _Calendar, demographic_strength: float = 1.0) -> _Customers:
    spend = _exact_shares(rng, n, SPENDING_SHARES)
    freq = _exact_shares(rng, n, FREQUENCY_SHARES)
    gender = rng.choice(len(GENDERS), n, p=np.asarray(GENDER_SHARES)).astype(np.int8)
    age = np.clip(np.round(rng.normal(38, 13, n)), 18, 80).astype(np.int64)
    location = rng.choice(len(LOCATIONS), n, p=LOCATION_WEIGHTS / LOCATION_WEIGHTS.sum()).astype(np.int8)
    profession = np.empty(n, dtype=np.int8)
    for s in range(len(SPENDING_POWER)):
        idx = np.flatnonzero(spend == s)
        w = PROFESSION_WEIGHTS[s] / PROFESSION_WEIGHTS[s].sum()
        profession[idx] = rng.choice(len(PROFESSIONS), idx.size, p=w)
    profession[age >= 67] = PROFESSIONS.index("Retired")

    # Dirichlet category preferences around the catalogue shares, tilted by gender and age
    alpha = np.tile(CATEGORY_SHARES * DIRICHLET_CONCENTRATION, (n, 1))
    groups = {"female": gender == 0, "male": gender == 1, "under 30": age < 30, "over 55": age > 55}
    for who, category, factor in DEMOGRAPHIC_TILTS:  # factor ** 1.0 is factor: the default shop is unchanged
        alpha[groups[who], CATEGORIES.index(category)] *= factor ** demographic_strength
    pref = rng.gamma(alpha)
    pref /= pref.sum(axis=1, keepdims=True)

    # signup: some before the window (up to two years), the rest spread over it, about as many as churn
    before = rng.random(n) < EXISTING_SHARE
    late_span = max(30, cal.days - 120)
    signup_day = np.where(before, -rng.integers(1, 731, n), rng.integers(0, late_span, n)).astype(np.int64)
    open_day = np.maximum(signup_day, 0).astype(np.float64) + OPEN_DELAY_DAYS

    satisfaction = rng.normal(0.0, 1.0, n)
    hazard = CHURN_HAZARD * np.exp(-CHURN_SATISFACTION_EFFECT * satisfaction) * CHURN_FREQUENCY_EFFECT[freq]
    churn_day = np.floor(open_day + CHURN_MIN_TENURE_DAYS + rng.exponential(365.25 / hazard))
    churn_day = np.where(churn_day < cal.days, churn_day, np.inf)
    churner = np.isfinite(churn_day)
    decay = np.where(churner & (rng.random(n) >= ABRUPT_CHURN_SHARE), rng.uniform(*DECAY_DAYS, n), 0.0)
    stop_day = np.minimum(churn_day, cal.days)

    slowed = rng.random(n) < SLOWDOWN_SHARE
    slow_from = np.where(slowed, open_day + rng.random(n) * np.maximum(stop_day - open_day, 0), np.inf)
    slow_to = slow_from + rng.uniform(*SLOWDOWN_DAYS, n)

    relative_rate = FREQUENCY_RATE[freq] * np.exp(rng.normal(0.0, 0.35, n))
    return _Customers(
        signup_day=signup_day,
        gender=gender,
        age=age,
        location=location,
        profession=profession,
        spend=spend,
        freq=freq,
        pref=pref,
        satisfaction=satisfaction,
        open_day=open_day,
        churn_day=churn_day,
        stop_day=stop_day,
        decay=decay,
        slow_from=slow_from,
        slow_to=slow_to,
        relative_rate=relative_rate,
    )


def _activity(cust: _Customers, who: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Activity multiplier in [0, 1]: linear decline before churn, temporary slowdowns."""
    decay = cust.decay[who]
    to_churn = cust.churn_day[who] - day
    with np.errstate(invalid="ignore", divide="ignore"):
        declining = DECAY_FLOOR + (1 - DECAY_FLOOR) * np.clip(to_churn / decay, 0.0, 1.0)
    a = np.where((decay > 0) & (to_churn < decay), declining, 1.0)
    slowed = (day >= cust.slow_from[who]) & (day < cust.slow_to[who])
    return np.where(slowed, np.minimum(a, SLOWDOWN_LEVEL), a)


def _calibrated_rates(cust: _Customers, cal: _Calendar, target: float) -> np.ndarray:
    """Purchases per year per customer, scaled so that the expected total is ``target``.

    The expectation is taken on the month grid (exposure x demand x activity at the middle of the exposure).
    """
    lo = np.maximum(cust.open_day[:, None], cal.bounds[None, :-1])
    hi = np.minimum(cust.stop_day[:, None], cal.bounds[None, 1:])
    exposure = np.maximum(hi - lo, 0.0)
    n, m = exposure.shape
    who = np.repeat(np.arange(n), m)
    mid = ((lo + hi) / 2).ravel()
    activity = _activity(cust, who, mid).reshape(n, m)
    demand = cust.pref @ cal.demand  # (n, intervals)
    expected = (exposure * activity * demand).sum(axis=1) / 365.25 * cust.relative_rate
    scale = target / max(expected.sum(), 1e-9)
    return cust.relative_rate * scale


# ----------------------------------------------------------------------------------------- choice model


class _ChoiceModel:
    """Which category and which product a customer picks at a given time."""

    def __init__(self, rng: np.random.Generator, prod: _Products, cust: _Customers):
        n_customers = cust.pref.shape[0]
        self.U = (rng.normal(0.0, 1.0, (n_customers, N_FACTORS)) * AFFINITY_SCALE / np.sqrt(N_FACTORS)).astype(
            np.float32
        )
        self.V = rng.normal(0.0, 1.0, (prod.category.size, N_FACTORS)).astype(np.float32)
        # logits = [u, 1, tilt] . [v, log popularity, price_z]: affinity + popularity + spending x price
        tilt = SPENDING_PRICE_TILT[cust.spend]
        self._left = np.column_stack([self.U, np.ones(n_customers, np.float32), tilt]).astype(np.float32)
        self._right = np.column_stack([self.V, np.log(prod.popularity), prod.price_z]).astype(np.float32)
        self.by_category = [np.flatnonzero(prod.category == c).astype(np.int32) for c in range(len(CATEGORIES))]
        self.pref = cust.pref

    def categories(self, rng: np.random.Generator, who: np.ndarray, interval: np.ndarray, demand: np.ndarray):
        """A category per row, with probability proportional to preference x seasonal-trend demand."""
        weights = self.pref[who] * demand[:, interval].T
        cum = np.cumsum(weights, axis=1)
        u = rng.random(who.size) * cum[:, -1]
        return np.minimum((cum < u[:, None]).sum(axis=1), len(CATEGORIES) - 1).astype(np.int8)

    def products(self, rng: np.random.Generator, who: np.ndarray, category: np.ndarray) -> np.ndarray:
        """A product per row within its category: softmax of affinity + log popularity + price tilt."""
        out = np.empty(who.size, dtype=np.int32)
        for c, items in enumerate(self.by_category):
            rows = np.flatnonzero(category == c)
            right = np.ascontiguousarray(self._right[items].T)
            chunk = max(1, 4_000_000 // items.size)
            for s in range(0, rows.size, chunk):
                r = rows[s : s + chunk]
                weights = self._left[who[r]] @ right
                np.exp(weights, out=weights)
                np.cumsum(weights, axis=1, out=weights)  # inverse-CDF sampling per row
                u = rng.random(r.size, dtype=np.float32) * weights[:, -1]
                pick = np.minimum((weights < u[:, None]).sum(axis=1), items.size - 1)
                out[r] = items[pick]
        return out


# ---------------------------------------------------------------------------------------- transactions


def _order(*keys: np.ndarray) -> np.ndarray:
    """Stable sort order by integer keys, most significant first (one composite key when it fits)."""
    shifted = [k.astype(np.int64) - (int(k.min()) if k.size else 0) for k in keys]
    bounds = [int(k.max()) + 1 if k.size else 1 for k in shifted]
    if np.prod([float(b) for b in bounds]) < 2.0**62:
        composite = np.zeros(keys[0].size, dtype=np.int64)
        for k, b in zip(shifted, bounds):
            composite = composite * b + k
        return np.argsort(composite, kind="stable")
    return np.lexsort(shifted[::-1])


def _thinned_days(rng: np.random.Generator, cust: _Customers, cal: _Calendar, rate: np.ndarray, demand_w: np.ndarray):
    """Event days of an inhomogeneous Poisson process per customer, by thinning.

    Intensity per year: ``rate x activity(t) x demand_w[customer, interval(t)]``, on [open_day, stop_day).
    Returns customer index, integer day and interval, grouped by customer in generation order.
    """
    wmax = demand_w.max(axis=1)
    span = np.maximum(cust.stop_day - cust.open_day, 0.0)
    n_candidates = rng.poisson(rate * wmax * span / 365.25)
    who = np.repeat(np.arange(span.size, dtype=np.int32), n_candidates)
    day = cust.open_day[who] + rng.random(who.size) * span[who]
    interval = cal.interval(day)
    accept = _activity(cust, who, day) * demand_w[who, interval] / wmax[who]
    keep = rng.random(who.size) < accept
    return who[keep], np.floor(day[keep]).astype(np.int32), interval[keep]


def _time_of_day(rng: np.random.Generator, n: int) -> np.ndarray:
    hour = rng.choice(24, n, p=HOUR_WEIGHTS / HOUR_WEIGHTS.sum())
    return hour * 3600 + rng.integers(0, 3600, n)


def _repeat_categories(rng: np.random.Generator, who: np.ndarray, category: np.ndarray) -> np.ndarray:
    """With probability REPEAT_CATEGORY_SHARE, copy the category of a random earlier purchase.

    Rows must be ordered by customer, then time. Chains of copies are resolved by pointer jumping.
    """
    n = who.size
    if n == 0:
        return category
    first = np.r_[0, np.flatnonzero(np.diff(who)) + 1]
    first_of_row = np.repeat(first, np.diff(np.r_[first, n]))
    position = np.arange(n) - first_of_row
    repeat = (position > 0) & (rng.random(n) < REPEAT_CATEGORY_SHARE)
    pointer = np.arange(n)
    pointer[repeat] = first_of_row[repeat] + (rng.random(int(repeat.sum())) * position[repeat]).astype(np.int64)
    while True:
        nxt = pointer[pointer]
        if np.array_equal(nxt, pointer):
            break
        pointer = nxt
    return category[pointer]


def _make_transactions(rng, cust: _Customers, prod: _Products, model: _ChoiceModel, cal: _Calendar) -> dict:
    demand_w = (cust.pref @ cal.demand).astype(np.float64)
    who, day, interval = _thinned_days(rng, cust, cal, cust.rate, demand_w)
    seconds = day.astype(np.int64) * 86400 + _time_of_day(rng, who.size)
    order = _order(who, seconds)
    who, seconds, interval = who[order], seconds[order], interval[order]
    category = model.categories(rng, who, interval, cal.demand)
    category = _repeat_categories(rng, who, category)
    product = model.products(rng, who, category)

    qcum = np.cumsum(QUANTITY_PROBS, axis=1)[category]
    quantity = 1 + (qcum < rng.random(who.size)[:, None]).sum(axis=1)
    quantity = np.minimum(quantity, QUANTITY_PROBS.shape[1]).astype(np.int64)
    base = prod.base_price[product]
    unit = np.round(base * rng.uniform(*PRICE_FACTOR, who.size), 2)
    unit = np.clip(unit, np.ceil(base * PRICE_FACTOR[0] * 100) / 100, np.floor(base * PRICE_FACTOR[1] * 100) / 100)
    amount = np.round(quantity * unit, 2)

    order = _order(seconds, who, product)  # chronological, ties by customer and product
    return {
        "cust": who[order],
        "prod": product[order],
        "cat": category[order],
        "quantity": quantity[order],
        "amount": amount[order],
        "seconds": seconds[order],
    }


# --------------------------------------------------------------------------------------------- events

_PAGE_VIEW, _PRODUCT_VIEW, _ADD_TO_CART, _SEARCH = map(
    EVENT_TYPES.index, ("page_view", "product_view", "add_to_cart", "search")
)


def _funnel_events(rng: np.random.Generator, tx: dict) -> tuple[np.ndarray, ...]:
    """Product views (>= 1), usually an add-to-cart and sometimes a search before every purchase."""
    n = tx["cust"].size
    n_views = 1 + rng.poisson(FUNNEL_EXTRA_VIEWS, n)
    row = np.repeat(np.arange(n), n_views)
    low, high = np.log(120.0), np.log(FUNNEL_MAX_SECONDS - 600.0)
    view_offset = np.exp(rng.uniform(low, high, row.size)).astype(np.int64)
    starts = np.r_[0, np.cumsum(n_views)[:-1]]
    nearest = np.minimum.reduceat(view_offset, starts) if n else view_offset
    farthest = np.maximum.reduceat(view_offset, starts) if n else view_offset

    cart = np.flatnonzero(rng.random(n) < FUNNEL_CART_PROB)
    cart_offset = np.maximum(1, (nearest[cart] * rng.uniform(0.05, 0.9, cart.size)).astype(np.int64))
    search = np.flatnonzero(rng.random(n) < FUNNEL_SEARCH_PROB)
    search_offset = farthest[search] + rng.integers(30, 600, search.size)

    rows = np.concatenate([row, cart, search])
    offset = np.concatenate([view_offset, cart_offset, search_offset])
    kind = np.concatenate(
        [np.full(row.size, _PRODUCT_VIEW), np.full(cart.size, _ADD_TO_CART), np.full(search.size, _SEARCH)]
    ).astype(np.int8)
    return tx["cust"][rows], tx["prod"][rows], kind, tx["seconds"][rows] - offset


def _session_events(rng, cust: _Customers, prod: _Products, model: _ChoiceModel, cal: _Calendar):
    """Browsing sessions without a purchase: a landing page, maybe a search, product views, maybe an
    abandoned cart. Engaged (satisfied) customers browse more; dissatisfied ones abandon more carts."""
    demand_w = (cust.pref @ cal.demand).astype(np.float64)
    session_rate = cust.rate * BROWSE_SESSIONS_PER_PURCHASE * np.exp(0.5 * cust.satisfaction)
    who, day, interval = _thinned_days(rng, cust, cal, session_rate, demand_w)
    n = who.size
    anchor = day.astype(np.int64) * 86400 + _time_of_day(rng, n)  # time of the session's last event
    focus = model.categories(rng, who, interval, cal.demand)

    n_views = 1 + rng.poisson(SESSION_EXTRA_VIEWS, n)
    view_session = np.repeat(np.arange(n), n_views)
    view_product = model.products(rng, who[view_session], focus[view_session])
    starts = np.r_[0, np.cumsum(n_views)[:-1]].astype(np.int64)
    view_order = 2 + np.arange(view_session.size) - np.repeat(starts, n_views)

    landing = rng.choice(prod.popularity.size, n, p=prod.popularity).astype(np.int32)
    search = np.flatnonzero(rng.random(n) < SESSION_SEARCH_PROB)
    abandon_p = 1.0 / (1.0 + np.exp(1.2 + 1.0 * cust.satisfaction[who]))
    cart = np.flatnonzero(rng.random(n) < abandon_p)
    last_view = starts + n_views - 1

    session = np.concatenate([np.arange(n), search, view_session, cart])
    product = np.concatenate([landing, view_product[starts[search]], view_product, view_product[last_view[cart]]])
    kind = np.concatenate(
        [
            np.full(n, _PAGE_VIEW),
            np.full(search.size, _SEARCH),
            np.full(view_session.size, _PRODUCT_VIEW),
            np.full(cart.size, _ADD_TO_CART),
        ]
    ).astype(np.int8)
    cart_step = np.full(cart.size, view_order.max(initial=1) + 1)
    step = np.concatenate([np.zeros(n), np.ones(search.size), view_order, cart_step])
    order = _order(session, step)
    session, product, kind = session[order], product[order], kind[order]
    # events spaced by 15 s .. 4 min, the last one at the anchor
    gap = np.cumsum(rng.integers(15, 240, session.size))
    last = np.r_[np.flatnonzero(np.diff(session)), session.size - 1] if session.size else np.array([], int)
    seconds = anchor[session] - (gap[last][session] - gap)
    return who[session], product, kind, seconds


def _make_events(rng, cust: _Customers, prod: _Products, model: _ChoiceModel, cal: _Calendar, tx: dict) -> dict:
    parts = [_funnel_events(rng, tx), _session_events(rng, cust, prod, model, cal)]
    who, product, kind, seconds = (np.concatenate(col) for col in zip(*parts))
    order = _order(seconds, who, kind, product)
    return {
        "cust": who[order].astype(np.int32),
        "prod": product[order].astype(np.int32),
        "kind": kind[order],
        "seconds": seconds[order].astype(np.int64),
    }


# ------------------------------------------------------------------------------------------- assembly

_STR = pd.StringDtype("pyarrow", na_value=np.nan)  # pandas' default ``str`` dtype


def _ids(prefix: str, n: int, min_width: int) -> np.ndarray:
    width = max(min_width, len(str(n)))
    return np.array([f"{prefix}{i:0{width}d}" for i in range(1, n + 1)])


def _take(labels: Sequence[str] | np.ndarray, codes: np.ndarray) -> pd.Series:
    """``labels[codes]`` as a ``str`` column, without building Python objects per row."""
    return pd.Series(pc.take(pa.array(np.asarray(labels)), pa.array(codes)), dtype=_STR)


def _frames(cust: _Customers, prod: _Products, tx: dict, ev: dict, cal: _Calendar) -> Tables:
    customer_ids = _ids("C", cust.spend.size, 5)
    product_ids = _ids("P", prod.category.size, 4)
    signup = (np.datetime64(cal.start.to_datetime64(), "D") + cust.signup_day.astype("timedelta64[D]")).astype(
        "datetime64[ns]"
    )
    customers = pd.DataFrame(
        {
            "customer_id": pd.Series(customer_ids, dtype=_STR),
            "signup_date": signup,
            "gender": _take(GENDERS, cust.gender),
            "age": cust.age,
            "location": _take(LOCATIONS, cust.location),
            "profession": _take(PROFESSIONS, cust.profession),
        }
    )
    products = pd.DataFrame(
        {
            "product_id": pd.Series(product_ids, dtype=_STR),
            "product_name": pd.Series(prod.name, dtype=_STR),
            "category": _take(CATEGORIES, prod.category),
            "subcategory": pd.Series(prod.subcategory, dtype=_STR),
            "base_price": prod.base_price,
        }
    )
    n_tx = tx["cust"].size
    width = max(7, len(str(n_tx)))
    numbers = pc.utf8_lpad(pc.cast(pa.array(np.arange(1, n_tx + 1)), pa.string()), width=width, padding="0")
    transactions = pd.DataFrame(
        {
            "transaction_id": pd.Series(pc.binary_join_element_wise("T", numbers, ""), dtype=_STR),
            "customer_id": _take(customer_ids, tx["cust"]),
            "product_id": _take(product_ids, tx["prod"]),
            "category": _take(CATEGORIES, tx["cat"]),
            "quantity": tx["quantity"],
            "amount": tx["amount"],
            "purchase_date": cal.timestamps(tx["seconds"]),
        }
    )
    events = pd.DataFrame(
        {
            "customer_id": _take(customer_ids, ev["cust"]),
            "product_id": _take(product_ids, ev["prod"]),
            "event_type": _take(EVENT_TYPES, ev["kind"]),
            "event_date": cal.timestamps(ev["seconds"]),
        }
    )
    return {"customers": customers, "products": products, "transactions": transactions, "events": events}


def _truth(cust: _Customers, prod: _Products, model: _ChoiceModel, cal: _Calendar, tables: Tables) -> SyntheticTruth:
    cid = pd.Index(tables["customers"]["customer_id"], name="customer_id")
    pid = pd.Index(tables["products"]["product_id"], name="product_id")
    factor_names = [f"f{k}" for k in range(N_FACTORS)]
    churn = np.where(np.isfinite(cust.churn_day), cust.churn_day, np.nan)
    churn_dates = pd.Series(cal.start + pd.to_timedelta(churn, unit="D"), index=cid, name="churn_date")
    peaks = SEASONALITY.max(axis=1)
    return SyntheticTruth(
        categories=CATEGORIES,
        preferences=pd.DataFrame(cust.pref, index=cid, columns=list(CATEGORIES)),
        spending_power=pd.Series(np.array(SPENDING_POWER)[cust.spend], index=cid, name="spending_power"),
        purchase_frequency=pd.Series(np.array(PURCHASE_FREQUENCY)[cust.freq], index=cid, name="purchase_frequency"),
        purchase_rate=pd.Series(cust.rate, index=cid, name="purchase_rate"),
        satisfaction=pd.Series(cust.satisfaction, index=cid, name="satisfaction"),
        churn_dates=churn_dates.astype("datetime64[ns]"),
        decay_days=pd.Series(cust.decay, index=cid, name="decay_days"),
        customer_factors=pd.DataFrame(model.U.astype(np.float64), index=cid, columns=factor_names),
        product_factors=pd.DataFrame(model.V.astype(np.float64), index=pid, columns=factor_names),
        product_popularity=pd.Series(prod.popularity, index=pid, name="popularity"),
        seasonality=pd.DataFrame(SEASONALITY, index=list(CATEGORIES), columns=range(1, 13)),
        seasonal_categories={
            c: int(np.argmax(SEASONALITY[k])) + 1 for k, c in enumerate(CATEGORIES) if peaks[k] >= SEASONAL_PEAK_RATIO
        },
        trend=pd.Series(TREND, index=list(CATEGORIES), name="trend"),
        start=cal.start,
        end=cal.end,
    )
