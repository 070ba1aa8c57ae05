"""Marketing Minds worker: MongoDB-scheduled jobs, run once on Dramatiq workers."""

__version__ = "0.1.0"
__all__ = ["__version__"]
