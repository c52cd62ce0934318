"""The image service (Glance v2): image records, members, tags and streamed data."""

from nimbus.image.data import Download, ImageData
from nimbus.image.service import ImageService
from nimbus.image.task_service import TaskService

__all__ = ["Download", "ImageData", "ImageService", "TaskService"]
