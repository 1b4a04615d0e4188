"""Placeholder: filled in by the plot work package."""
__all__ = []
