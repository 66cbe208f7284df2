"""Driftline collector: receive -> decode -> normalize -> buffer -> write."""
