"""Kadrio: turn long talk videos into short vertical clips."""

__version__ = "0.1.0"
