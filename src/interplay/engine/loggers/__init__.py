"""Logger callbacks chosen by name with ``train.loggers`` (one module each; see :mod:`interplay.engine.callbacks`)."""
