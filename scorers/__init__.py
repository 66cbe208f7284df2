"""Driftline scorers."""
