"""docsynth: synthetic vision-language training data from document collections."""

__version__ = "0.1.0"
