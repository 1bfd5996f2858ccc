"""Batch scoring: a registered model over every customer (or category x horizon), locally or on Apache Spark."""
