"""The SARIMA family: sales series, the per-series search, the served forecaster's training (docs/sarima.md)."""
