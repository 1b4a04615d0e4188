"""Placeholder: filled in by the coding work package."""
__all__ = []
