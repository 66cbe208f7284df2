"""The README's SDK example runs as written, in its own process, against the real collector, and
the calls it records come back from the trace API with their text, tokens, service and release."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import KEY_A, LiveServer

README = Path(__file__).parent.parent / "README.md"
SECTION = "## Record LLM calls with the SDK"
QUESTION = "When was the Eiffel Tower completed?"
ANSWER = "The Eiffel Tower was completed in March 1889."


def readme_sdk_example() -> str:
    text = README.read_text()
    assert SECTION in text, f"README has no {SECTION!r} section"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert len(blocks) == 1, "the section shows one Python example"
    return str(blocks[0])


def test_readme_sdk_example_records_llm_calls(live: LiveServer, tmp_path: Path) -> None:
    code = readme_sdk_example()
    # The example's placeholders, pointed at this test's collector and tenant.
    assert code.count('endpoint="http://127.0.0.1:4318"') == 1 and code.count('api_key="..."') == 1
    code = code.replace('endpoint="http://127.0.0.1:4318"', f'endpoint="{live.url}"')
    code = code.replace('api_key="..."', f'api_key="{KEY_A}"')
    script = tmp_path / "example.py"
    script.write_text(code)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "DRIFTLINE_"))}
    done = subprocess.run(
        [sys.executable, str(script)], check=False, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr  # nothing failed to export

    assert live.runtime.flush(10)
    auth = {"Authorization": f"Bearer {KEY_A}"}
    listed = httpx.get(f"{live.url}/api/v1/traces", headers=auth).json()["traces"]
    assert len(listed) == 2  # the `with` block and the decorated function: one trace each
    for t in listed:
        (span,) = httpx.get(f"{live.url}/api/v1/traces/{t['trace_id']}", headers=auth).json()["spans"]
        assert (span["service"], span["release"]) == ("my-app", "1.4.0")
        assert (span["operation"], span["provider"], span["request_model"]) == ("chat", "openai", "gpt-4o-mini")
        assert (span["input_text"], span["output_text"]) == (QUESTION, ANSWER)
        assert (span["input_tokens"], span["output_tokens"]) == (14, 11)
        assert span["name"] == "chat gpt-4o-mini" and span["kind"] == "client"
