"""Placeholder: filled in by the metrics work package."""
__all__ = []
