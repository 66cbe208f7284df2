"""Driftline: monitoring for LLM applications in production.

`import driftline` is the light app-side SDK; the server lives behind the `server` extra.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
