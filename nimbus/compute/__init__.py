"""Compute service: API logic, conductor, scheduler and agent."""
