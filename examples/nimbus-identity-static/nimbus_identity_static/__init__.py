"""A read-only nimbus identity back-end: users listed in a JSON file.

An example of a third-party nimbus driver; see its README.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
