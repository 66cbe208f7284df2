"""Which parts of a prompt are evidence an answer can be checked against, and which are not.

Most LLM calls are not retrieval-augmented: their prompt is instructions ("You are a support agent.")
and a question. Instructions are not evidence: judged against them, every answer of a plain chat
call says something "unsupported". But many applications paste their documents into the prompt
(LangChain's and LlamaIndex's question-answering templates, "Summarize the following article: ...").
`split_prompt` takes those documents out of a system prompt or a user message and leaves the rest
(instructions, the question). A document is recognised by how prompts mark one:
- a tag: <context>...</context>, <document>, <source id=2>, <search_results>, ...;
- a fenced block: ``` ... ``` or \"\"\" ... \"\"\";
- a block between two rule lines (------, =====), as LlamaIndex's templates put it;
- a labelled section: a line that opens with "Context:", "Documents:", "Source 2:", "Article:", ...
  up to the next "Question:" / "Answer:" / "Instructions:" line;
- a lead-in that points at it: "Answer from: ...", "Use the following pieces of context ...", then
  what follows (up to a "Question:" line).
Text with none of these marks is instructions only, however long: a false "hallucinated" on a plain
call costs more than a missed check on an unmarked document.
"""

from __future__ import annotations

import re

__all__ = ["is_empty_answer", "split_prompt", "strip_role"]

_DOC_NOUNS = (
    r"context|contexts|context information|documents?|docs?|sources?|passages?|knowledge|references?|"
    r"background|excerpts?|articles?|text|transcript|retrieved \w+|search results?|facts|notes|data|"
    r"dialogue|conversation|email|report|paper|abstract|information|snippets?|records?|results?"
)
_TAG = re.compile(
    r"<(?P<tag>context|contexts|documents?|docs?|sources?|passages?|knowledge|references?|articles?|excerpts?"
    r"|search_results?|retrieved\w*|information|data|transcript|text|email|conversation|dialogue|input_document"
    r"|tool_result|function_results?)(?:\s[^>]*)?>(?P<body>.*?)</(?P=tag)\s*>",
    re.IGNORECASE | re.DOTALL,
)
_FENCE = re.compile(r"```[\w-]*\n?(?P<body>.*?)```|\"\"\"(?P<body2>.*?)\"\"\"", re.DOTALL)
_RULE_LINE = r"^[ \t]*[-=*#_~]{5,}[ \t]*$"  # not markdown's "---": that separates instructions too
# A fenced block that shows the answer's format is no evidence of its facts.
_FORMAT_CUE = re.compile(r"format|schema|example|template|respond|reply|output|return", re.IGNORECASE)
_RULED = re.compile(rf"{_RULE_LINE}\n(?P<body>.*?)\n{_RULE_LINE}", re.MULTILINE | re.DOTALL)
# A line that starts a labelled section of evidence: "Context:", "Source 2:", "[1]", "Document (a.pdf):".
_LABEL = re.compile(
    rf"^[ \t]*(?:#+[ \t]*)?(?:\*\*)?(?:{_DOC_NOUNS})(?:[ \t]*(?:\d+|\([^)\n]*\)|\[[^\]\n]*\]))?(?:\*\*)?[ \t]*:[ \t]*"
    r"|^[ \t]*\[\d+\][ \t]*",
    re.IGNORECASE | re.MULTILINE,
)
# A line that ends a section: what comes after the evidence.
_STOP = re.compile(
    r"^[ \t]*(?:#+[ \t]*)?(?:\*\*)?(?:question|query|answer|helpful answer|instructions?|task|user|assistant|"
    r"human|ai|summary|response|output|input|request)(?:\*\*)?[ \t]*:",
    re.IGNORECASE | re.MULTILINE,
)
# "Answer from: ...", "Summarize the following article: ...", "Use the following pieces of context to
# answer ...\n\n...", "Answer using the documents below.\n...", "Here is some information about the
# account: ...": a pointer at a document, then the
# document from the next colon or line break on. "Answer the following question:" points at no document.
_LEAD_IN = re.compile(
    rf"\b(?:the\s+following|below)\s+(?:[\w-]+\s+){{0,3}}?(?:{_DOC_NOUNS})\b"
    rf"|\b(?:{_DOC_NOUNS})\s+(?:below|(?:as\s+)?follows)\b"
    rf"|\bhere\s+(?:is|are)\s+(?:[\w'-]+\s+){{0,4}}?(?:{_DOC_NOUNS})\b"
    r"|\b(?:from|using|based\s+on)\s*(?=:)",
    re.IGNORECASE,
)
_DOC_START = re.compile(r":[ \t]*|[^\n]{0,300}?(?::[ \t]+|:$|\n)", re.MULTILINE)
_ROLE = re.compile(r"^\s*(?:(?:assistant|ai|model|bot|system|user|human|tool|function)\s*:\s*)+", re.IGNORECASE)
_WORD = re.compile(r"[^\W_]", re.UNICODE)
# A body that talks to the model ("You are ...", "Always answer ...") is instructions under a document's
# label ("Background: You are Acme's assistant."), not evidence.
_INSTRUCTION = re.compile(
    r"^\W*(?:you|your|you're|be|do|don't|never|always|answer|respond|reply|use|keep|make|follow|avoid|ask|"
    r"help|act|write|provide|ensure|please|if|only|remember|refuse|stay|greet|assist)\b",
    re.IGNORECASE,
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_INNER_TAG = re.compile(r"</?[A-Za-z][\w:-]*(?:\s[^<>]*)?>")  # <document index="1"> inside <documents>


def _cut(text: str, spans: list[tuple[int, int, int, int]]) -> tuple[list[str], str]:
    """The bodies of `spans` (outer start, outer end, body start, body end) and the text without them."""
    docs: list[str] = []
    rest: list[str] = []
    pos = 0
    for start, end, body_start, body_end in sorted(spans):
        if start < pos:
            continue  # nested in a block already taken
        rest.append(text[pos:start])
        body = _INNER_TAG.sub(" ", text[body_start:body_end]).strip()
        if _WORD.search(body) and not _instructions(body):
            docs.append(body)
        pos = end
    rest.append(text[pos:])
    return docs, "".join(rest)


def _instructions(body: str) -> bool:
    """Whether most sentences of `body` address the model."""
    sentences = [x for x in _SENTENCE.split(body) if _WORD.search(x)]
    return 2 * sum(1 for x in sentences if _INSTRUCTION.match(x)) > len(sentences)


def _marked(text: str) -> list[tuple[int, int, int, int]]:
    spans: list[tuple[int, int, int, int]] = []
    for m in _TAG.finditer(text):
        spans.append((m.start(), m.end(), m.start("body"), m.end("body")))
    for m in _FENCE.finditer(text):
        if _FORMAT_CUE.search(text[max(0, m.start() - 80) : m.start()]):
            continue
        group = "body" if m.group("body") is not None else "body2"
        spans.append((m.start(), m.end(), m.start(group), m.end(group)))
    for m in _RULED.finditer(text):
        spans.append((m.start(), m.end(), m.start("body"), m.end("body")))
    return spans


def _until_stop(text: str, start: int) -> int:
    stop = _STOP.search(text, start)
    return stop.start() if stop else len(text)


def _labelled(text: str) -> list[tuple[int, int, int, int]]:
    spans = []
    labels = list(_LABEL.finditer(text))
    for k, m in enumerate(labels):
        end = _until_stop(text, m.end())
        if k + 1 < len(labels):
            end = min(end, labels[k + 1].start())
        spans.append((m.start(), end, m.end(), end))
    return spans


def _led_in(text: str) -> list[tuple[int, int, int, int]]:
    m = _LEAD_IN.search(text)
    if m is None:
        return []
    start = _DOC_START.match(text, m.end())
    if start is None:
        return []
    end = _until_stop(text, start.end())
    return [(start.end(), end, start.end(), end)]


def split_prompt(text: str) -> tuple[list[str], str]:
    """(documents pasted into the prompt, the rest of it: instructions and question)."""
    if not text or not text.strip():
        return [], text or ""
    for find in (_marked, _labelled, _led_in):
        spans = find(text)
        if spans:
            docs, rest = _cut(text, spans)
            if docs:
                return docs, rest
    return [], text


def strip_role(answer: str) -> str:
    """The answer without a leading role tag ("assistant: ..."), as some instrumentations store it."""
    return _ROLE.sub("", answer, count=1)


def is_empty_answer(answer: str) -> bool:
    """Nothing to check: empty, blank, punctuation or a bare role tag ("assistant: ")."""
    return not _WORD.search(strip_role(answer))
