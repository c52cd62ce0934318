"""nimbus: an OpenStack-style IaaS framework with pluggable drivers."""

__all__ = ["__version__"]

__version__ = "0.1.0"
