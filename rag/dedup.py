"""Near-duplicate articles (one story told by several articles) and passages that repeat
each other.

What « saying the same thing » means here: two sentences, or two short passages, whose
content terms (rag.stores.bm25.analyze: accent-folded words, French Snowball stems, no
stopwords) overlap with a Jaccard similarity of at least SIMILARITY. Two articles tell
one story when at least MIN_SHARED sentences of one say the same thing as sentences of
the other. Rewritten copies (000_… and 001_… of seeds/ report one Zuckerberg meeting in
their own words) share almost no word sequences, so shingles of whole articles miss
them (Jaccard 0.016); their sentences still match in pairs (0.36-0.38, when unrelated
seed articles reach 0.25 at most).

Candidate sentence pairs come from MinHash LSH (datasketch), so the cost grows with the
number of sentences rather than its square; every candidate is then checked on its exact
Jaccard. Stories are the connected groups of matching articles, recorded in the index
manifest at build time. `repeats` is the same test on two passages, for the retriever's
diversification (rag/retrieval.py). Left out: copies in another language, and articles
that share a single sentence (a quotation repeated by many).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable, Sequence

from rag.passages import split_sentences
from rag.records import Article
from rag.stores.bm25 import analyze

SIMILARITY = 0.3  # Jaccard of content terms from which two sentences say the same thing
MIN_TERMS = 5  # shorter sentences (« Ça craint. ») say too little to compare
MIN_SHARED = 2  # sentences two articles must share to be one story
NUM_PERM = 128  # MinHash permutations
LSH_THRESHOLD = 0.2  # candidates are looked for below SIMILARITY: LSH misses some pairs near its threshold


def terms_of(text: str) -> frozenset[str]:
    return frozenset(analyze(text))


def similarity(a: frozenset[str], b: frozenset[str]) -> float:
    union = len(a | b)
    return len(a & b) / union if union else 0.0


def repeats(a: frozenset[str], b: frozenset[str], threshold: float = SIMILARITY) -> bool:
    """Whether two texts' terms say the same thing (both need some content)."""
    return min(len(a), len(b)) >= MIN_TERMS and similarity(a, b) >= threshold


def duplicate_groups(articles: Sequence[Article]) -> list[list[str]]:
    """Groups of doc ids telling one story (two or more each), sorted."""
    sentences = [(a.doc_id, t) for a in articles for t in _sentence_terms(a.text)]
    shared = _shared_sentences(sentences)
    return _groups(pair for pair, count in shared.items() if count >= MIN_SHARED)


def copies(groups: Iterable[Sequence[str]], doc_id: str) -> list[str]:
    """The other articles of `doc_id`'s story, none when it has no near-duplicate."""
    for group in groups:
        if doc_id in group:
            return [other for other in group if other != doc_id]
    return []


def _sentence_terms(text: str) -> list[frozenset[str]]:
    found = (terms_of(text[start:end]) for start, end in split_sentences(text))
    return [t for t in found if len(t) >= MIN_TERMS]


def _shared_sentences(sentences: list[tuple[str, frozenset[str]]]) -> dict[tuple[str, str], int]:
    """For each pair of articles, how many sentences of the one (the fewer side) match the other."""
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=LSH_THRESHOLD, num_perm=NUM_PERM)
    signatures = []
    for row, (_, terms) in enumerate(sentences):
        signature = MinHash(num_perm=NUM_PERM)
        signature.update_batch([t.encode("utf-8") for t in sorted(terms)])
        lsh.insert(row, signature)
        signatures.append(signature)
    matched: dict[tuple[str, str], tuple[set, set]] = defaultdict(lambda: (set(), set()))
    for row, (doc, terms) in enumerate(sentences):
        for other in lsh.query(signatures[row]):
            other_doc, other_terms = sentences[other]
            if other_doc > doc and similarity(terms, other_terms) >= SIMILARITY:
                mine, theirs = matched[(doc, other_doc)]
                mine.add(row)
                theirs.add(other)
    return {pair: min(len(a), len(b)) for pair, (a, b) in matched.items()}


def _groups(pairs: Iterable[tuple[str, str]]) -> list[list[str]]:
    """Connected components of the pairs (union-find), each sorted, sorted by first id."""
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        parent[root(a)] = root(b)
    members: dict[str, list[str]] = defaultdict(list)
    for x in parent:
        members[root(x)].append(x)
    return sorted(sorted(group) for group in members.values() if len(group) > 1)
