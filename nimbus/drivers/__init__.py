"""Driver kinds: one sub-package per kind, each with base.py, types.py and fake.py."""
