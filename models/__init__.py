"""Model families and their pyfunc serving classes. Never imports ``pipelines``."""
