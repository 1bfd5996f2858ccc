"""The served recommender's contract (``storefront-recommender``, ``storefront-itemcf``, ``storefront-svdpp``).

One request row per customer; one answer row per recommendation. An unknown customer gets the products popular
with customers like them when the row carries demographics the model knows (``age``, ``gender``, ``location``,
``profession``: optional, used only for a customer unknown to the model), else the popular products with reason
``popular`` (never an error). A malformed demographic value (an age that is not a whole number from
``AGE.low`` to ``AGE.high``, a gender that is not text) is a 400 naming the column.
"""

from __future__ import annotations

from pathlib import Path

from models.contracts import Column, Contract, Param

PYFUNC_FILE = Path(__file__).with_name("pyfunc.py")
K = Param("k", "long", 10, "number of recommendations per customer", low=1, high=100)
EXCLUDE_PURCHASED = Param("exclude_purchased", "boolean", True, "leave out products the customer already bought")
AGE = Column("age", "long", "age in years (null: unknown); used only for a customer unknown to the model",
             low=13, high=110, required=False)
TEXT_DEMOGRAPHICS = tuple(
    Column(name, "string", f"{what} (null or a value the model never saw: unknown); used only for a customer "
                           "unknown to the model", required=False)
    for name, what in (("gender", "gender"), ("location", "city or region"), ("profession", "profession")))
DEMOGRAPHICS = (AGE, *TEXT_DEMOGRAPHICS)  # the columns, in the contract's order

CONTRACT = Contract(
    name="recommender",
    inputs=(Column("customer_id", "string", "the customer's id (an integer id is read as its text)"), *DEMOGRAPHICS),
    params=(K, EXCLUDE_PURCHASED),
    outputs=(
        Column("customer_id", "string", "as sent"),
        Column("rank", "long", "1 for the best recommendation"),
        Column("product_id", "string", "the recommended product"),
        Column("score", "double", "the model's score (higher is better; for `popular...` reasons the product's "
                                  "popularity or its share of the segment's buyers)"),
        Column("reason", "string", "`because you bought <product>`, `matches your taste in <category>`, "
                                   "`similar to <product> you bought`, `popular with customers like you (<segment>)` "
                                   "or `popular`"),
    ),
)
