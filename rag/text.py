"""French word handling shared by BM25, citation checks and the eval metrics.

Accent folding and a light plural stemmer only: on news text this is what makes a
question's « dépenses » meet the article's « dépenser ». No lemmatiser, no spell fixes.
"""

from __future__ import annotations

import re
import unicodedata

_WORD = re.compile(r"\d+(?:[.,]\d+)*|\w+", re.UNICODE)
# elided articles and pronouns glued by an apostrophe: l'IA, d'un, qu'il, jusqu'à
_ELISION = re.compile(r"\b(?:[ldjmnst]|qu|jusqu|lorsqu|puisqu|quoiqu)['’]", re.IGNORECASE)

STOPWORDS = frozenset(
    """a ai au aux avec avait avoir c ca ce ces cet cette ceci cela celle celui ci comme
    comment d dans de des du donc dont elle elles en est et etaient etait ete etre eu
    fait faire il ils je l la le les leur leurs lui m ma mais me meme mes moi mon n ne
    ni nos notre nous on ont ou par pas peu peut plus pour qu quand que quel quelle
    quelles quels qui s sa sans se ses si son sont sur t ta te tes toi ton tous tout
    toute toutes tres tu un une unes uns vos votre vous y est-ce quoi combien ou
    selon lors apres avant chez entre vers afin ainsi alors aussi autre autres""".split()
)


def fold(text: str) -> str:
    """Lowercase and strip accents: « Équité » -> « equite »."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def words(text: str) -> list[str]:
    """Folded words and numbers, elisions removed, nothing else dropped."""
    text = _ELISION.sub(" ", text)
    return _WORD.findall(fold(text))


def stem(word: str) -> str:
    """Light French stemmer: plurals and the commonest verb/noun endings."""
    if word.isdigit() or len(word) <= 3:
        return word
    for suffix in ("ements", "ement", "ations", "ation", "euses", "euse", "eurs", "eur",
                   "ees", "ee", "es", "er", "ez", "s", "x", "e"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def terms(text: str) -> list[str]:
    """Index terms: folded, stopwords out, stemmed. Used by BM25 and overlap checks."""
    return [stem(w) for w in words(text) if w not in STOPWORDS]
