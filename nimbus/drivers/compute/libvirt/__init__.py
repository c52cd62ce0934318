"""The ``libvirt`` compute driver: QEMU guests through libvirt."""

from nimbus.drivers.compute.libvirt.driver import LibvirtDriver

__all__ = ["LibvirtDriver"]
