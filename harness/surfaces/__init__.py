"""The surfaces: how people use the harness.

:mod:`.plugin` (pytest options and fixtures, the ``pytest11`` entry point), :mod:`.quality_check` (the
``harness_quality`` fixture's check: a skip, a failure, the JUnit properties) and :mod:`.suite` (the shipped
quality tests), :mod:`.job_summary` (a CI page of the results), :mod:`.cli` (the ``harness`` command),
:mod:`.diagnose` (one file, stage by stage) and :mod:`.bench` (throughput benchmarks).

They import every layer below (signal, model, judging) and, the command line only, the model builders.
"""
