"""The image service (Glance v2): image records, members, tags and streamed data."""

from nimbus.image.data import Download, ImageData
from nimbus.image.service import ImageService

__all__ = ["Download", "ImageData", "ImageService"]
