"""Confidence bands: what a hit's score means for an SME, calibrated on judged needs.

`bench/matching/calibrate.py` ranks the tune third of the judged needs and sets the two
score thresholds: a **strong** hit was relevant (grade ≥ 1) at least half the time in
calibration, a **possible** one at least one time in six; anything lower is **weak**
(mostly shared words). The same script reports how the bands hold on the test split
(docs/matching.md). Scores are only comparable under one analyser and normalisation, so
the thresholds are recalibrated whenever the ranker changes.
"""

from __future__ import annotations

from enum import StrEnum


class Band(StrEnum):
    STRONG = "strong"
    POSSIBLE = "possible"
    WEAK = "weak"


STRONG_FROM = 0.020
POSSIBLE_FROM = 0.009


def band(score: float) -> Band:
    if score >= STRONG_FROM:
        return Band.STRONG
    if score >= POSSIBLE_FROM:
        return Band.POSSIBLE
    return Band.WEAK


def hidden_note(hidden: int, by: dict[str, int], need_modes: bool = False) -> str:
    """Say how many better-scoring patents the filters hid, and which filter did it."""
    parts = []
    for name, n in sorted(by.items(), key=lambda kv: -kv[1]):
        label = name
        if name == "modes" and need_modes:
            label = "modes (taken from the need; use_need_terms=false to lift it)"
        parts.append(f"{label}: {n}")
    return (
        f"{hidden} better-scoring patent{'s' if hidden != 1 else ''} hidden by the filters "
        f"({'; '.join(parts)})"
    )
