"""Evaluation sessions (issue #8): the scoring engine first (scoring.py)."""
