"""Placeholder: filled in by the plasticity work package."""
__all__ = []
