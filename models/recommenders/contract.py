"""The served recommender's contract (``storefront-recommender``, ``storefront-itemcf``, ``storefront-svdpp``).

One request row per customer; one answer row per recommendation. An unknown customer gets the popular
products with reason ``popular`` (never an error).
"""

from __future__ import annotations

from pathlib import Path

from models.contracts import Column, Contract, Param

PYFUNC_FILE = Path(__file__).with_name("pyfunc.py")
K = Param("k", "long", 10, "number of recommendations per customer", low=1, high=100)
EXCLUDE_PURCHASED = Param("exclude_purchased", "boolean", True, "leave out products the customer already bought")

CONTRACT = Contract(
    name="recommender",
    inputs=(Column("customer_id", "string", "the customer's id (an integer id is read as its text)"),),
    params=(K, EXCLUDE_PURCHASED),
    outputs=(
        Column("customer_id", "string", "as sent"),
        Column("rank", "long", "1 for the best recommendation"),
        Column("product_id", "string", "the recommended product"),
        Column("score", "double", "the model's score (higher is better; popularity for `popular`)"),
        Column("reason", "string", "`because you bought <product>`, `matches your taste in <category>` or `popular`"),
    ),
)
