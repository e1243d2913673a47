"""reku: host tooling for a microcontroller AI co-processor (train, pack, flash, deploy, query)."""

__version__ = "0.1.0"
