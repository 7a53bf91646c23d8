"""Alias of ``embinit.study.stats``, kept so old imports work; new code imports that."""

from __future__ import annotations

from embinit.study.stats import NAN, excludes_zero, mean_ci, paired_diff, t_critical

__all__ = ["NAN", "excludes_zero", "mean_ci", "paired_diff", "t_critical"]
