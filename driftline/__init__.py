"""Driftline: monitoring for LLM applications in production.

`import driftline` is the light app-side SDK (OpenTelemetry only); the server lives behind the
`server` extra and is never imported from here.

    import driftline
    driftline.init(endpoint="http://127.0.0.1:4318", api_key="...", service="my-app", release="1.4.0")

    @driftline.tool_call("search")
    def search(q: str) -> list[str]: ...
"""

from driftline.sdk import (
    AgentStep,
    Driftline,
    FeedbackError,
    GenAISpan,
    LLMCall,
    Operation,
    Retrieval,
    ToolCall,
    agent_step,
    current_call,
    feedback,
    feedback_batch,
    flush,
    init,
    llm_call,
    retrieval,
    shutdown,
    tool_call,
)

__version__ = "0.1.0"
__all__ = [
    "AgentStep",
    "Driftline",
    "FeedbackError",
    "GenAISpan",
    "LLMCall",
    "Operation",
    "Retrieval",
    "ToolCall",
    "__version__",
    "agent_step",
    "current_call",
    "feedback",
    "feedback_batch",
    "flush",
    "init",
    "llm_call",
    "retrieval",
    "shutdown",
    "tool_call",
]
