"""Build hook: with DRIFTLINE_COMPILE=1 the collector's normalize path is compiled with mypyc.

The same typed Python, compiled to C: the normalizer runs ~1.4x faster (bench/normalize_bench.py),
and it is most of a decode worker's CPU. Without the variable the package stays pure Python, so the
app-side SDK never needs a compiler. `make up` / `make test` (and CI) build it compiled.
"""

import os

from setuptools import setup

ext_modules = []
if os.environ.get("DRIFTLINE_COMPILE") == "1":
    from mypyc.build import mypycify

    ext_modules = mypycify(
        [
            "--config-file=scripts/mypyc.ini",
            "driftline/collector/otlp_values.py",
            "driftline/collector/normalize.py",
            "driftline/collector/batch.py",
            "driftline/collector/conventions/__init__.py",
            "driftline/collector/conventions/_common.py",
            "driftline/collector/conventions/derive.py",
            "driftline/collector/conventions/events.py",
            "driftline/collector/conventions/genai.py",
            "driftline/collector/conventions/langfuse.py",
            "driftline/collector/conventions/logfire.py",
            "driftline/collector/conventions/messages.py",
            "driftline/collector/conventions/openinference.py",
            "driftline/collector/conventions/openlit.py",
            "driftline/collector/conventions/providers.py",
            "driftline/collector/conventions/traceloop.py",
            "driftline/collector/conventions/vercel.py",
        ],
        opt_level="3",
        group_name="driftline_native",
    )

setup(ext_modules=ext_modules)
