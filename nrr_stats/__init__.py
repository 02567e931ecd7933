"""nrr-stats: calibrated proceed / caution / avoid decisions for autoresearch loops."""

__version__ = "0.2.0"
