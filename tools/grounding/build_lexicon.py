"""Build the compact lexicon the scorer ships, from the WordNet 3.0 database files.

Dev-time only: `python -m tools.grounding.build_lexicon [/usr/share/wordnet]` (Debian's
`wordnet-base` package puts the files there). The scorer never reads WordNet itself, only the
`scorers/grounding/data/wordnet.tsv.gz` written here, so nothing has to be installed or downloaded at run time.

What is kept is only what the scorer asks: for single-word lemmas, their most frequent senses
(a rare sense would let almost any word "paraphrase" any other), the senses they are related to
(similar-to, also-see, verb group, derivation, pertainym, participle, attribute), up to two levels
of hypernyms, antonym words, and the irregular inflections. Synset ids are renumbered densely and
neighbours that are nobody's kept sense are dropped, since no context word could ever match them.
"""

from __future__ import annotations

import gzip
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from driftline.scorers.grounding.lexicon import DEFAULT_LEXICON_PATH

__all__ = ["SENSES_KEPT", "build", "main"]

# Senses kept per (lemma, part of speech), in WordNet's frequency order.
SENSES_KEPT = 3

_POS_FILES = {"n": "noun", "v": "verb", "a": "adj", "r": "adv"}
_REL_POINTERS = frozenset({"&", "^", "$", "+", "\\", "<", "="})
_HYPER_POINTERS = frozenset({"@", "@i"})
_CNT_POS = {"1": "n", "2": "v", "3": "a", "4": "r", "5": "a"}

SynsetKey = tuple[str, int]


@dataclass
class _Synset:
    lexfile: int
    words: list[str]
    pointers: list[tuple[str, SynsetKey, int, int]] = field(default_factory=list)


def _clean_word(raw: str) -> str:
    # Adjective markers such as "(a)" or "(p)" are syntax notes, not part of the word.
    return raw.split("(", 1)[0]


def _read_data(root: Path) -> dict[SynsetKey, _Synset]:
    synsets: dict[SynsetKey, _Synset] = {}
    for pos, name in _POS_FILES.items():
        with open(root / f"data.{name}", encoding="latin-1") as fh:
            for line in fh:
                if line.startswith("  "):
                    continue  # licence header
                head = line.split(" | ", 1)[0].split()
                offset, lexfile = int(head[0]), int(head[1])
                count = int(head[3], 16)
                words = [_clean_word(head[4 + 2 * i]) for i in range(count)]
                i = 4 + 2 * count
                n_ptr = int(head[i])
                i += 1
                syn = _Synset(lexfile, words)
                for _ in range(n_ptr):
                    sym, toff, tpos, st = head[i : i + 4]
                    i += 4
                    tpos = "a" if tpos == "s" else tpos
                    syn.pointers.append((sym, (tpos, int(toff)), int(st[:2], 16), int(st[2:], 16)))
                synsets[(pos, offset)] = syn
    return synsets


def _read_index(root: Path) -> dict[tuple[str, str], list[int]]:
    senses: dict[tuple[str, str], list[int]] = {}
    for pos, name in _POS_FILES.items():
        with open(root / f"index.{name}", encoding="latin-1") as fh:
            for line in fh:
                if line.startswith("  "):
                    continue
                parts = line.split()
                n_syn, n_ptr = int(parts[2]), int(parts[3])
                senses[(parts[0], pos)] = [int(x) for x in parts[4 + n_ptr + 2 : 4 + n_ptr + 2 + n_syn]]
    return senses


def _read_counts(root: Path) -> dict[tuple[str, str], int]:
    counts: dict[tuple[str, str], int] = defaultdict(int)
    with open(root / "cntlist.rev", encoding="latin-1") as fh:
        for line in fh:
            key, _sense_no, tag_count = line.split()
            lemma, rest = key.split("%", 1)
            counts[(lemma, _CNT_POS[rest[0]])] += int(tag_count)
    return counts


def _read_exceptions(root: Path) -> list[tuple[str, str, list[str]]]:
    out: list[tuple[str, str, list[str]]] = []
    for pos, name in _POS_FILES.items():
        with open(root / f"{name}.exc", encoding="latin-1") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) >= 2 and "_" not in parts[0]:
                    out.append((pos, parts[0], [p for p in parts[1:] if "_" not in p]))
    return out


def _single_word(lemma: str) -> bool:
    return "_" not in lemma and any(ch.isalpha() for ch in lemma)


def _antonym_words(syn: _Synset, key: SynsetKey, lemma: str, synsets: dict[SynsetKey, _Synset]) -> set[str]:
    """Words opposite to `lemma` in this sense: WordNet's direct antonyms of the word itself, and
    for an adjective satellite the antonyms of its head (WordNet's "indirect antonyms")."""
    out: set[str] = set()
    own = {i + 1 for i, w in enumerate(syn.words) if w == lemma}
    for sym, target, src, dst in syn.pointers:
        if sym == "!" and (src == 0 or src in own):
            words = synsets[target].words
            out.update(words if dst == 0 else [words[dst - 1]])
    if key[0] == "a":
        for sym, head, _src, _dst in syn.pointers:
            if sym == "&":
                for sym2, target, _s2, dst2 in synsets[head].pointers:
                    if sym2 == "!":
                        words = synsets[target].words
                        out.update(words if dst2 == 0 else [words[dst2 - 1]])
    out.discard(lemma)
    return {w for w in out if _single_word(w)}


def build(root: Path, out_path: Path) -> dict[str, int]:
    synsets = _read_data(root)
    # WordNet keeps the case of proper nouns ("Mumbai", "Lutheran"): remember which lemmas are only
    # ever written capitalised, then work in lower case like the index files do.
    cased: dict[str, set[bool]] = defaultdict(set)
    for syn in synsets.values():
        for i, word in enumerate(syn.words):
            cased[word.lower()].add(word[:1].isupper())
            syn.words[i] = word.lower()
    senses = _read_index(root)
    counts = _read_counts(root)
    kept: dict[tuple[str, str], list[SynsetKey]] = {}
    for (lemma, pos), offsets in senses.items():
        if _single_word(lemma):
            kept[(lemma, pos)] = [(pos, off) for off in offsets[:SENSES_KEPT]]
    ids: dict[SynsetKey, int] = {}
    for keys in kept.values():
        for key in keys:
            ids.setdefault(key, len(ids))

    def hypernyms(key: SynsetKey) -> set[SynsetKey]:
        return {t for sym, t, _s, _d in synsets[key].pointers if sym in _HYPER_POINTERS}

    lines: list[str] = [
        "# Derived from WordNet 3.0 (c) 2006 Princeton University; see WORDNET_LICENSE.txt beside this file.",
        "# S <id> <pos> <lexfile> <related ids,> <hypernym ids (2 levels),>",
        "# L <lemma> <pos> <tag count> <sense ids,> <antonym words,> <P if only ever a proper noun>",
        "# X <pos> <inflected form> <lemmas,>",
    ]
    for key, sid in sorted(ids.items(), key=lambda kv: kv[1]):
        syn = synsets[key]
        rel = {ids[t] for sym, t, _s, _d in syn.pointers if sym in _REL_POINTERS and t in ids}
        level1 = hypernyms(key)
        level2 = {h2 for h in level1 for h2 in hypernyms(h)}
        hyp = {ids[h] for h in level1 | level2 if h in ids}
        lines.append(
            f"S\t{sid}\t{key[0]}\t{syn.lexfile}\t{','.join(map(str, sorted(rel)))}\t{','.join(map(str, sorted(hyp)))}"
        )
    for (lemma, pos), keys in sorted(kept.items()):
        ants: set[str] = set()
        for key in keys:
            ants |= _antonym_words(synsets[key], key, lemma, synsets)
        lines.append(
            f"L\t{lemma}\t{pos}\t{counts.get((lemma, pos), 0)}\t{','.join(str(ids[k]) for k in keys)}\t"
            f"{','.join(sorted(ants))}\t{'P' if cased[lemma] == {True} else ''}"
        )
    for pos, form, lemmas in _read_exceptions(root):
        if lemmas:
            lines.append(f"X\t{pos}\t{form}\t{','.join(lemmas)}")
    data = ("\n".join(lines) + "\n").encode()
    # mtime=0 keeps the file byte-identical from one build to the next.
    with open(out_path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as gz:
        gz.write(data)
    return {"synsets": len(ids), "lemmas": len(kept), "bytes": out_path.stat().st_size}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    root = Path(args[0]) if args else Path("/usr/share/wordnet")
    out = DEFAULT_LEXICON_PATH
    stats = build(root, out)
    print(f"wrote {out}: {stats}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
