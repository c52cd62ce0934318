"""Image stores: where image data lives."""

from nimbus.drivers.image.base import ImageStore
from nimbus.drivers.image.types import Capability, Capacity, DataReader, StoredData

__all__ = ["Capability", "Capacity", "DataReader", "ImageStore", "StoredData"]
