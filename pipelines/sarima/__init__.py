"""The SARIMA family: sales series, the per-series search, the served forecaster's training (docs/sarima.md)."""

# The AICc screen's default margin, in AICc units: "substantial support" (Burnham & Anderson); None turns the
# screen off. Here, not in the tuning module, so that ``storefront --help`` can show it without importing
# statsmodels.
IC_MARGIN = 2.0
