"""Training pipelines of storefront-ml: one module per MLproject entry point plus shared glue."""
