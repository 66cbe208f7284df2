"""Dev-time builders of the offline hallucination scorer's shipped data (driftline.scorers.grounding)."""
