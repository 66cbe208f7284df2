"""Offline groundedness (hallucination) scoring: does the context support the answer? No LLM needed."""

from driftline.scorers.grounding.scorer import GroundednessScorer, GroundingResult, Label

__all__ = ["GroundednessScorer", "GroundingResult", "Label"]
