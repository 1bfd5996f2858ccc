"""Pure metric functions, data splits and model comparison. Imports neither ``pipelines`` nor ``models``."""
