"""Development tools: run from the repository, never installed (setup.py packages only `driftline`).

They may import development-only packages (the dev extra); the installed package never imports
them, which tests/test_packaging.py checks.

    python -m tools.dashboards                 the Grafana dashboards in deploy/grafana/dashboards
    python -m tools.grounding.train            refit the hallucination scorer's model
    python -m tools.grounding.build_lexicon    rebuild its WordNet lexicon
    tools.loadgen                              realistic OTLP requests for benchmarks and tests
"""
