"""A retrieval span keeps its documents whichever convention wrote them.

The demo's retrieval spans say `gen_ai.operation.name=retrieval` and carry OpenInference's indexed
`retrieval.documents.N.document.*` attributes without `openinference.span.kind`: such a mixed span
must store its documents as a marked OpenInference RETRIEVER span or a GenAI
`gen_ai.retrieval.documents` span does. Checked end to end (the demo's own code and the SDK
through the real exporter, app and store) and on single recorded spans.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

import driftline.sdk as dl
from driftline.demo import DEMO_FACTS, DemoTraffic
from tests.conftest import KEY_A, LiveServer
from tests.support.recorded import normalize

_AUTH = {"Authorization": f"Bearer {KEY_A}"}


def _stored_retrievals(live: LiveServer) -> list[dict[str, Any]]:
    """Every retrieval span of tenant A, read back through the trace API."""
    assert live.runtime.flush(10)
    listed = httpx.get(f"{live.url}/api/v1/traces", headers=_AUTH)
    assert listed.status_code == 200, listed.text
    out: list[dict[str, Any]] = []
    for t in listed.json()["traces"]:
        r = httpx.get(f"{live.url}/api/v1/traces/{t['trace_id']}", headers=_AUTH)
        assert r.status_code == 200, r.text
        out.extend(s for s in r.json()["spans"] if s["operation"] == "retrieval")
    return out


def test_demo_retrieval_spans_store_their_documents(live: LiveServer) -> None:
    demo = DemoTraffic(live.url, KEY_A, seed=3)
    for _ in range(4):
        demo.one_trace()
    demo.stop()  # flushes the demo's batch exporter
    spans = _stored_retrievals(live)
    assert len(spans) == 4
    passages = {fact[1] for fact in DEMO_FACTS}
    for span in spans:
        (doc,) = json.loads(span["retrieved_documents"])
        assert doc["id"] == "kb-1" and doc["content"] in passages


def test_sdk_retrieval_span_stores_its_documents(live: LiveServer) -> None:
    dl.init(live.url, KEY_A, service="sdk-rag", instrument=False, set_global=False, capture_content=True)
    try:
        with dl.retrieval("refund policy?", data_source="kb") as r:
            r.set_documents([{"id": "d1", "content": "Refunds within 30 days.", "score": 0.9}, "No receipts."])
        assert dl.flush(10)
    finally:
        dl.shutdown()
    (span,) = _stored_retrievals(live)
    docs = json.loads(span["retrieved_documents"])
    assert [(d["id"], d["content"], d["score"]) for d in docs] == [
        ("d1", "Refunds within 30 days.", 0.9),
        (docs[1]["id"], "No receipts.", None),
    ]
    assert span["input_text"] == "refund policy?"


_OI_DOCS = {
    "retrieval.documents.0.document.id": "doc-1",
    "retrieval.documents.0.document.content": "30 days",
    "retrieval.documents.0.document.score": 0.5,
    "retrieval.documents.1.document.content": "no receipts",
}
_OI_EXPECTED = [
    {"id": "doc-1", "content": "30 days", "score": 0.5},
    {"id": "", "content": "no receipts", "score": None},
]


@pytest.mark.parametrize(
    "attrs",
    [
        pytest.param({"gen_ai.operation.name": "retrieval", **_OI_DOCS}, id="genai-operation-oi-documents"),
        pytest.param({"openinference.span.kind": "RETRIEVER", **_OI_DOCS}, id="openinference"),
        pytest.param(dict(_OI_DOCS), id="oi-documents-alone"),
        pytest.param(
            {"gen_ai.retrieval.documents": json.dumps(_OI_EXPECTED), "gen_ai.retrieval.query.text": "refunds"},
            id="genai-documents-without-operation",
        ),
    ],
)
def test_retrieval_span_of_either_convention_keeps_documents(attrs: dict[str, Any]) -> None:
    row = normalize("retrieve", attrs)
    assert json.loads(row["retrieved_documents"]) == _OI_EXPECTED
    assert row["operation"] == "retrieval"  # a span that lists retrieved documents is a retrieval


def test_reranker_output_documents_without_kind_are_kept() -> None:
    row = normalize(
        "rerank",
        {
            "gen_ai.operation.name": "rerank",
            "reranker.output_documents.0.document.id": "a",
            "reranker.output_documents.0.document.content": "kept",
        },
    )
    assert json.loads(row["retrieved_documents"]) == [{"id": "a", "content": "kept", "score": None}]
    assert row["operation"] == "rerank"
