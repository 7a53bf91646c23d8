"""The consumer wing: from a study's run records to tables, verdicts and the report.

It reads run directories only (summary.json, metrics.jsonl, the saved config), never
the repo's ``conf/``, and never imports torch, so a report builds anywhere pandas and
matplotlib do. ``load`` reads; ``tables``, ``stats``, ``shapes``, ``compare``, ``design``, ``claims`` (the
claims scorecard), ``regimes`` (the 2x2 factorial, data-size trend) and ``diagnostics``
(embedding diagnostics, step-0 check) are pure;
``report`` renders. Import the submodules directly; this package re-exports nothing,
so importing one part does not pull in the rest (matplotlib stays unloaded for tables).
"""
