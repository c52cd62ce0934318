"""The in-tree compute filters and weighers (entry points in nimbus's ``setup.cfg``)."""
