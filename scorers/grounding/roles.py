"""Question-role matching: "Beowulf ... directed by who?" answered with the film's writer.

A wrong answer to "who/which X did <verb> ...?" often names someone the context does mention, even in
the same sentence, but in another role: the writer where the director was asked for. So when the
question asks for the agent of a verb ("directed by whom?", "Who directed ...?", "What company
published ...?", "Who was the director of ...?") and the context states that agent in the clear passive
pattern "<verb> by <Name>[, <Name>][ and <Name>]", the answer must name one of those agents.

The same reading covers partners asked about with "with"/"for" ("worked with what artist?" against
"worked with artists such as A, B"; "best known for what cantata?" against "best known for his
cantata X"), the subject of an asked description ("What retailer is the second-largest ...?" against
"X is the second-largest ..."), the title a year or compound modifier is attached to ("what 2016
movie?" against 'the 2016 film "X"'), and a "Who ...?" answered only with the question's own names.

Each check is for precision, not recall: it is silent unless the question's pattern and the context's
are both unambiguous (a description before the name, "founded by Olympic wrestler X", makes the
context's agents unclear), and it only ever says an answer is wrong.
"""

from __future__ import annotations

import re

__all__ = [
    "asked_agent_verbs",
    "attribute_mismatch",
    "context_agents",
    "copula_mismatch",
    "echoes_question",
    "role_mismatch",
]

_WH = r"(?:who|whom|what|which)"
# "<verb> by whom?", "directed by who?", "worked with what artist?"
_PASSIVE_ASKED = re.compile(rf"\b([a-z]+)\s+(by|with|for)\s+{_WH}\b", re.IGNORECASE)
# Words ending like a participle that are not verbs the question asks the agent of.
_NOT_VERBS = frozenset({"mixed", "red", "bed", "seed", "need", "speed", "hundred", "often", "eleven", "seven", "even"})
# "Who was the director of ...": an agent noun and the verb whose agent it is.
_AGENT_NOUNS = {
    "director": "directed",
    "founder": "founded",
    "creator": "created",
    "composer": "composed",
    "publisher": "published",
    "designer": "designed",
    "producer": "produced",
    "author": "written",
    "writer": "written",
    "developer": "developed",
    "chair": "chaired",
    "chairman": "chaired",
}
_NOUN_ASKED = re.compile(r"^\s*(?:who|what|which)\s+(?:\w+\s+)?(?:is|was)\s+the\s+([a-z]+)\s+(?:of|for)\b", re.I)
_VERB = re.compile(r"^[a-z]+(?:ed|en|wn)$|^(?:built|led|won|made|drawn|run|held|taught|sung|sold|owned|hosted)$")
_NAME = r"[A-Z][\w'’.-]*(?:\s+(?:of|de|van|von|da|del|der|la|le|du)?\s*[A-Z][\w'’.-]*)*"
_ITEM_SEP = re.compile(r"^(?:\s*,\s*(?:and\s+)?|\s+and\s+|\s*&\s*)")
_NAME_AT = re.compile(_NAME)
# Lowercase words that may follow a name without making it a description.
_AFTER_NAME = frozenset(
    {"and", "or", "in", "on", "at", "for", "from", "with", "during", "between", "until", "as", "to"}
)
# "What retailer is the second-largest ...", "Which city was the capital of ...": the word after "the".
_COPULA_ASKED = re.compile(r"^\s*(?:what|which)\s+(?:[\w-]+\s+){1,3}?(is|was)\s+the\s+([\w-]+)", re.IGNORECASE)
# Words after "is the" that do not single out one thing.
_VAGUE = frozenset({"name", "same", "one", "only", "main", "most", "best", "first", "last", "other", "type", "kind"})
# "what 2016 movie", "which Oscar-nominated film": a year or a compound modifier before the asked noun.
_ATTRIBUTE_ASKED = re.compile(r"\b(?:what|which)\s+(1[0-9]{3}|20[0-9]{2}|[A-Z][a-z]+-[a-z]+)\s+[a-z]+", re.IGNORECASE)
_OWNER = r"(?:his|her|its|their)"  # "known for his cantata X"
_PRONOUNS = frozenset({"he", "she", "it", "they", "his", "her", "its", "their", "a", "an"})
_INNER = frozenset({"of", "de", "van", "von", "da", "del", "der", "la", "le", "du", "the"})


def asked_agent_verbs(question: str) -> set[str]:
    """The verbs (lowercased, as the context would use them before "by") whose agent the question asks."""
    verbs: set[str] = set()
    for m in _PASSIVE_ASKED.finditer(question):
        prep = m.group(2).lower()
        verbs.add(m.group(1).lower() + ("" if prep == "by" else " " + prep))
    words = re.findall(r"[\w'’-]+", question)
    if words and words[0].lower() in ("who", "which", "what"):
        # "Who directed ...", "What comic book published ...": the first verb within a few words of the
        # question word. After "was"/"is" it is passive ("Which magazine was started first"), and
        # followed by "by" it asks for the thing ("Which film directed by ..."): neither asks the agent.
        for k, word in enumerate(words[1:8], start=1):
            low = word.lower()
            if low in ("was", "is", "were", "are", "did", "does", "do", "by"):
                break
            if _VERB.match(low) and low not in _NOT_VERBS:
                if k + 1 >= len(words) or words[k + 1].lower() != "by":
                    verbs.add(low)
                break
    noun = _NOUN_ASKED.match(question)
    if noun and noun.group(1).lower() in _AGENT_NOUNS:
        verbs.add(_AGENT_NOUNS[noun.group(1).lower()])
    return {v for v in verbs if _VERB.match(v.split()[0])}


def context_agents(sentences: list[str], verb: str) -> list[str] | None:
    """The names the context states as agents of `verb` ("directed by A and B"), or as its partners
    for a verb asked about "with" ("worked with artists such as A, B"); None if one of its phrases is
    not a plain list of names (then the agents are unclear)."""
    head, _, prep = verb.partition(" ")
    prep = prep or "by"
    pattern = re.compile(
        rf"\b{re.escape(head)}\s+{prep}\s+(?:[a-z]+\s+such\s+as\s+|[a-z]+\s+including\s+|{_OWNER}\s+[a-z]+\s+)?[\"“]?",
        re.IGNORECASE,
    )
    agents: list[str] = []
    for sentence in sentences:
        for m in pattern.finditer(sentence):
            rest = sentence[m.end() :]
            items = _name_list(rest)
            if items is None:
                return None
            agents.extend(items)
    return agents


def _name_list(text: str) -> list[str] | None:
    items: list[str] = []
    pos = 0
    while True:
        m = _NAME_AT.match(text, pos)
        if m is None:
            return items or None
        end = m.end()
        after = text[end:]
        # A capitalised word before a common noun is a description ("by Olympic wrestler X", "by
        # American country pop artist X"): then who the agents are is unclear.
        word = re.match(r"^\s+([a-z]+)", after)
        if word and word.group(1) not in _AFTER_NAME:
            return None
        items.append(m.group(0))
        sep = _ITEM_SEP.match(after)
        if sep is None:
            return items
        pos = end + sep.end()
        if not text[pos : pos + 1].isupper():
            return items


def _words(name: str) -> set[str]:
    return {w.lower().strip(".'’") for w in re.findall(r"[\w'’.-]+", name) if w.lower() not in _INNER}


def role_mismatch(answer: str, question: str, sentences: list[str]) -> str | None:
    """The asked-about verb, if the context names its agents and the answer names none of them."""
    verbs = asked_agent_verbs(question)
    if not verbs:
        return None
    answer_names = [_words(n) for n in _NAME_AT.findall(answer)]
    answer_names = [n for n in answer_names if n]
    if not answer_names:
        return None
    for verb in sorted(verbs):
        agents = context_agents(sentences, verb)
        if not agents:
            continue
        agent_words = [_words(a) for a in agents]
        named = any(n <= a or a <= n for n in answer_names for a in agent_words)
        if not named:
            return verb
    return None


def copula_mismatch(answer: str, question: str, sentences: list[str]) -> str | None:
    """ "What retailer is the second-largest in the US?": the context's "<Name> is the second-largest
    ..." says who. The answer must name one such subject, not another name of the sentence ("...,
    behind Walmart"). Returns the asked description ("is the second-largest") on a mismatch."""
    m = _COPULA_ASKED.match(question)
    if m is None or m.group(2).lower() in _VAGUE:
        return None
    key = m.group(2)
    pattern = re.compile(rf"({_NAME})\s+(?:is|was)\s+the\s+{re.escape(key)}\b", re.IGNORECASE)
    subjects = [_words(found.group(1)) for sentence in sentences for found in pattern.finditer(sentence)]
    subjects = [w for w in subjects if w - _PRONOUNS]
    if not subjects:
        return None
    answer_names = [w for w in (_words(n) for n in _NAME_AT.findall(answer)) if w - _PRONOUNS]
    if not answer_names or any(n <= a or a <= n for n in answer_names for a in subjects):
        return None
    return f"is the {key}"


def attribute_mismatch(answer: str, question: str, sentences: list[str]) -> str | None:
    """ "Starred in what 2016 movie?", "Which Oscar-nominated film ...?": the context puts that year or
    compound modifier right before the title it describes ('the 2016 zombie film "Train to Busan"',
    'Oscar-nominated "Salaam Bombay"'), or states it of a sentence's subject ("X is a 2016 film").
    An answer that names none of those picked another title. Returns the modifier on a mismatch."""
    m = _ATTRIBUTE_ASKED.search(question)
    if m is None:
        return None
    modifier = m.group(1)
    described = re.compile(
        rf"(?<![\w-]){re.escape(modifier)}\s+(?:[a-z][\w-]*\s+){{0,4}}(?:[\"“]([^\"”]+)[\"”]|({_NAME}))"
    )
    subject = re.compile(rf"^\s*({_NAME})[^.]*?\s(?:is|was)\s+(?:a|an|the)\s+(?:[\w-]+\s+)*?{re.escape(modifier)}\b")
    titles: list[set[str]] = []
    for sentence in sentences:
        for found in described.finditer(sentence):
            title = found.group(1) or found.group(2)
            # An unquoted capitalised word before a common noun is a description ("2016 American film").
            if found.group(2) and re.match(r"^\s+[a-z]", sentence[found.end() :]):
                continue
            titles.append(_words(title))
        lead = subject.match(sentence)
        if lead:
            titles.append(_words(lead.group(1)))
    titles = [t for t in titles if t - _PRONOUNS]
    if not titles:
        return None
    answer_names = [w for w in (_words(n) for n in _NAME_AT.findall(answer)) if w - _PRONOUNS]
    if not answer_names or any(n <= t or t <= n for n in answer_names for t in titles):
        return None
    return modifier


def echoes_question(answer: str, question: str) -> bool:
    """Whether an answer to "Who ...?" names nobody but those the question already names: "Who won a
    Nobel Prize and is associated with Max Volmer?" - "Max Volmer won it." (yes/no answers and choice
    questions are for the other checks)."""
    if not re.match(r"\s*(?:who|whom)\b", question, re.IGNORECASE) or re.match(r"\s*(?:yes|no)\b", answer, re.I):
        return False
    names = [n for n in _NAME_AT.findall(answer) if _words(n) - _PRONOUNS]
    if not names:
        return False
    question_words = {w.lower().strip(".'’") for w in re.findall(r"[\w'’.-]+", question)}
    return all(_words(n) <= question_words for n in names)
