"""Metrics and structured logs, shared by web and worker processes on any number of machines."""
