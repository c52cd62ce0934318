"""An example third-party scheduler filter for nimbus (``max_instances``)."""

from nimbus_filter_example.filters import MaxInstancesFilter

__all__ = ["MaxInstancesFilter"]
