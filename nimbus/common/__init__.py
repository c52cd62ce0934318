"""Helpers shared by nimbus's services and drivers."""
