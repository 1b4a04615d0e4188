"""Placeholder: filled in by the monitor work package."""
__all__ = []
