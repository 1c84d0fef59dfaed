"""The checks between what the model wrote and the answer shown: one stage, read top to bottom.

A small model answers off-corpus questions with real names and figures of the corpus,
cites [1] by habit, and drops the very figure it was asked for. Each check below either
lets the draft through (possibly rewritten) or refuses it; they run in this order and
every verdict is recorded, by name, in `Answer.checks`:

1. refusal    the model refused: the answer opens as a refusal, in any wording (an answer
              that merely contains « ne précise pas » is not one);
2. markers    markers of passages the model was not given are dropped;
3. cited      an answer without a marker is tied to the passage it copies from, or refused;
4. repointed  a marker moves to the passage that holds the answer's words when the cited
              one holds fewer;
5. complete   the answer holds the kind of thing asked for — a number for « combien »,
              a date for « quand » — when its evidence has one;
6. grounded   every number of the answer is in its cited passages or the question, every
              name in their articles (« Markus Klarner » found nowhere is an invention;
              « Mark » Zuckerberg, named so at the top of the article, is not);
7. verified   asked again on the cited evidence alone, the model says « oui »: P(oui)
              against P(non) at least `min_p_yes`, or a clear « oui » from a backend
              without probabilities (« No », « Faux », an empty reply confirm nothing);
8. confident  the model's own first-token probability of refusing, measured before it
              wrote, is at most `max_p_refuse`.
The thresholds of 7 and 8 are calibrated on the reference set's dev split
(bench/calibrate.py). Reading markers and finding supporting sentences is citations.py's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Mapping, Sequence

from rag import citations
from rag.prompts import render
from rag.records import Hit
from rag.text import STOPWORDS, fold, terms

REFUSAL = "Je ne trouve pas la réponse dans le corpus."
REFUSAL_START = "Je ne trouve pas"  # P(refusing) = P(the first token begins this)

# A refusal opens the answer: « Je ne trouve pas… », « Les extraits ne mentionnent pas… »
_REFUSAL_OPENING = re.compile(
    r"^\W*(?:je ne (?:trouve|sais|peux|dispose|connais|vois)|je n'ai pas"
    r"|(?:les |ces |l'|cet |aucun )?(?:extraits?|articles?|passages?|textes?|corpus|documents?|sources?)"
    r"(?: fournis| donnés| disponibles)? (?:ne |n')"
    r"|aucun(?:e)? (?:extrait|information|mention|réponse|passage|article|donnée|indication)"
    r"|il n'y a (?:pas|aucun)|pas d'information|cette information n'est pas|désolé"
    r"|i (?:don't|do not|cannot|can't)|(?:it is |this is )?not (?:mentioned|provided|found)|there is no)",
    re.IGNORECASE,
)
_LABEL = re.compile(r"^\W*r[ée]ponse\W*:\s*", re.IGNORECASE | re.MULTILINE)  # « Réponse : » on its line
_QUANTITY = re.compile(
    r"^\W*(?:combien|à combien|de combien|quel(?:le)?s? (?:est |sont |était |étaient |a été )?"
    r"(?:le |la |les |l')?(?:montant|prix|nombre|somme|part|pourcentage|proportion|taux|chiffre|coût"
    r"|budget|valeur|salaire|âge|tarif|effectif)|quelle somme)\b", re.IGNORECASE)
_WHEN = re.compile(r"^\W*(?:quand|depuis quand|en quelle année|en quel mois|à quelle date|quel jour"
                   r"|quelle année|à partir de quand|jusqu'à quand)\b", re.IGNORECASE)
_NUMBER_WORDS = {"un": "1", "une": "1", "deux": "2", "trois": "3", "quatre": "4", "cinq": "5", "six": "6",
                 "sept": "7", "huit": "8", "neuf": "9", "dix": "10", "onze": "11", "douze": "12",
                 "quinze": "15", "vingt": "20", "trente": "30", "cinquante": "50", "cent": "100",
                 "mille": "1000", "seize": "16", "treize": "13", "quatorze": "14", "quarante": "40"}
_QUANTITY_WORDS = set(_NUMBER_WORDS) | {"million", "millions", "milliard", "milliards", "moitie", "tiers",
                                        "quart", "dizaine", "dizaines", "centaine", "centaines", "millier",
                                        "milliers", "double", "triple", "aucun", "aucune"}
_MONTHS = set("""janvier fevrier mars avril mai juin juillet aout septembre octobre novembre decembre
    lundi mardi mercredi jeudi vendredi samedi dimanche hier aujourd'hui demain""".split())
_MARKER = re.compile(r"\s*\[\d+\]")


@dataclass(frozen=True)
class Draft:
    """The answer as it goes through the checks."""

    text: str
    question: str
    hits: tuple[Hit, ...]
    p_refuse: float | None = None  # P(the reply's first token opens a refusal), if known
    articles: Mapping[str, str] = field(default_factory=dict)  # doc id -> whole text, for names


@dataclass(frozen=True)
class Verdict:
    check: str
    passed: bool
    detail: object = None  # what the check saw, JSON-able


@dataclass(frozen=True)
class Outcome:
    text: str  # the checked answer, or REFUSAL
    refused: bool
    verdicts: tuple[Verdict, ...]

    def record(self) -> dict:
        """The verdicts as plain data, for `Answer.checks` and batch records."""
        failed = next((v.check for v in self.verdicts if not v.passed), None)
        return {"refusal": failed, "verdicts": [{"check": v.check, "passed": v.passed, "detail": v.detail}
                                                for v in self.verdicts]}


Check = Callable[[Draft], "tuple[Draft, Verdict]"]


def run(draft: Draft, checks: Sequence[Check]) -> Outcome:
    """Apply `checks` in order; the first that fails turns the answer into the refusal."""
    verdicts = []
    for check in checks:
        draft, verdict = check(draft)
        verdicts.append(verdict)
        if not verdict.passed:
            return Outcome(REFUSAL, True, tuple(verdicts))
    return Outcome(draft.text, False, tuple(verdicts))


def standard(llm, prompts_dir: Path, verify: bool = True, min_p_yes: float = 0.5,
             max_p_refuse: float = 1.0) -> list[Check]:
    """The checks of the module docstring, in their order, with these thresholds."""
    checks: list[Check] = [refusal, markers, cited, repointed, complete, grounded]
    if verify:
        checks.append(lambda d: verified(d, llm, prompts_dir, min_p_yes))
    checks.append(lambda d: confident(d, max_p_refuse))
    return checks


# ------------------------------------------------------------------ the checks, in order


def refusal(draft: Draft) -> tuple[Draft, Verdict]:
    text = " ".join(answer_part(draft.text).split())
    refused = not _MARKER.sub("", text).strip(" .") or bool(_REFUSAL_OPENING.match(text))
    return replace(draft, text=text), Verdict("refusal", not refused, text[:80] if refused else None)


def markers(draft: Draft) -> tuple[Draft, Verdict]:
    given = len(draft.hits)
    dropped = [n for n in citations.cited_numbers(draft.text) if not 1 <= n <= given]
    return replace(draft, text=citations.clean_markers(draft.text, given)), Verdict("markers", True, dropped or None)


def cited(draft: Draft) -> tuple[Draft, Verdict]:
    if citations.cited_numbers(draft.text):
        return draft, Verdict("cited", True)
    n = best_source(draft.text, draft.hits)
    if n is None:
        return draft, Verdict("cited", False, "aucun passage ne porte la réponse")
    text = citations.clean_markers(f"{draft.text} [{n}]", len(draft.hits))
    return replace(draft, text=text), Verdict("cited", True, f"[{n}] ajouté")


def repointed(draft: Draft) -> tuple[Draft, Verdict]:
    text = citations.repoint(draft.text, draft.hits, draft.question)
    moved = citations.cited_numbers(text) != citations.cited_numbers(draft.text)
    return replace(draft, text=text), Verdict("repointed", True, citations.cited_numbers(text) if moved else None)


def complete(draft: Draft) -> tuple[Draft, Verdict]:
    """A « combien » answer without a quantity, or a « quand » answer without a date, when
    the cited evidence holds one, is no answer (« Elon Musk a payé pour acheter Twitter »)."""
    wants = "quantité" if _QUANTITY.match(draft.question) else "date" if _WHEN.match(draft.question) else None
    if wants is None:
        return draft, Verdict("complete", True)
    has = _has_quantity if wants == "quantité" else _has_date
    evidence = " ".join(p.text for p in cited_passages(draft))
    ok = has(strip_markers(draft.text)) or not has(evidence)
    return draft, Verdict("complete", ok, None if ok else f"{wants} absente de la réponse")


def grounded(draft: Draft) -> tuple[Draft, Verdict]:
    """Numbers of the answer found in none of its cited passages nor in the question, and
    names found in none of their articles (titles included): the surest sign of an invention.
    Names may come from the whole article, which names a person in full once and by the
    surname after; a figure from elsewhere in the article is another fact's figure."""
    passages = cited_passages(draft)
    near = draft.question + " " + " ".join(f"{p.title} {p.text}" for p in passages)
    numbers = _tokens(near)
    names = numbers | _tokens(" ".join(draft.articles.get(p.doc_id, "") for p in passages))
    missing = [w for w in _names_and_numbers(strip_markers(draft.text))
               if not _known(w, numbers if w[0].isdigit() else names)]
    return draft, Verdict("grounded", not missing, missing or None)


def _known(word: str, known: set[str]) -> bool:
    return word in known or word.rstrip("sx") in known


def verified(draft: Draft, llm, prompts_dir: Path, min_p_yes: float) -> tuple[Draft, Verdict]:
    """The model, shown the question, the answer and only the two best sentences of each cited
    passage, confirms it: P(oui) / (P(oui) + P(non)) >= min_p_yes, or a clear « oui »."""
    evidence = " ".join(citations.evidence(draft.text, c, draft.question)
                        for c in citations.resolve(draft.text, draft.hits))
    messages = [
        {"role": "system", "content": render(prompts_dir, "verify_system.txt")},
        {"role": "user", "content": render(prompts_dir, "verify.txt", question=draft.question,
                                           answer=strip_markers(draft.text), evidence=evidence)},
    ]
    probs = llm.first_token_probs(messages, ["oui", "non"])
    if probs and sum(probs.values()) > 0:
        p_yes = probs["oui"] / (probs["oui"] + probs["non"])
        return draft, Verdict("verified", p_yes >= min_p_yes, round(p_yes, 4))
    reply = fold("".join(llm.stream(messages, 3, 0.0))).strip(" .!«»\"'*\n")
    return draft, Verdict("verified", re.match(r"oui\b", reply) is not None, reply[:20])


def confident(draft: Draft, max_p_refuse: float) -> tuple[Draft, Verdict]:
    if draft.p_refuse is None:
        return draft, Verdict("confident", True, None)
    return draft, Verdict("confident", draft.p_refuse <= max_p_refuse, round(draft.p_refuse, 4))


# ------------------------------------------------------------------ helpers


def answer_part(raw: str) -> str:
    """What follows the last « Réponse : » label some models write (after a « Preuve : »…)."""
    labels = list(_LABEL.finditer(raw))
    return raw[labels[-1].end():] if labels else raw


def cited_passages(draft: Draft):
    return [draft.hits[n - 1].passage for n in citations.cited_numbers(draft.text) if 1 <= n <= len(draft.hits)]


def best_source(text: str, hits: Sequence[Hit], min_shared: int = 2) -> int | None:
    """The 1-based passage sharing most terms with an uncited answer, if it shares enough."""
    wanted = set(terms(text))
    shared = [len(wanted & set(terms(h.passage.text))) for h in hits]
    if not shared:
        return None
    best = max(range(len(hits)), key=lambda i: shared[i])
    return best + 1 if shared[best] >= min_shared else None


def strip_markers(text: str) -> str:
    return " ".join(_MARKER.sub("", text).split())


def _tokens(text: str) -> set[str]:
    """Folded words and numbers of `text`, number words also as digits, plurals also bare."""
    out = set()
    for word in re.findall(r"\d+(?:[.,]\d+)*|[^\W\d_]+", fold(text)):
        out |= {word, word.rstrip("sx"), _NUMBER_WORDS.get(word, word), word.replace(",", ".")}
    return out


def _names_and_numbers(answer: str) -> list[str]:
    """The answer's numbers and name-like words (a capital letter anywhere, not a common word
    opening a sentence), folded, in order, once each."""
    found = []
    for sentence in re.split(r"(?<=[.!?])\s+", answer):
        for i, word in enumerate(re.findall(r"\d+(?:[.,]\d+)*|[^\W\d_]+(?:['’][^\W\d_]+)?", sentence)):
            folded = fold(word).split("'")[-1]
            if word[0].isdigit() or (any(c.isupper() for c in word) and not (i == 0 and folded in _OPENERS)):
                found.append(folded.replace(",", ".") if word[0].isdigit() else folded)
    return [w for w in dict.fromkeys(found) if w and w not in STOPWORDS]


_OPENERS = STOPWORDS | {"selon", "depuis", "lors", "oui", "non", "cela", "ceci", "grace", "malgre", "parmi",
                        "pendant", "outre", "contrairement", "finalement", "ensuite", "enfin", "aujourd"}


def _has_quantity(text: str) -> bool:
    return bool(re.search(r"\d", text)) or bool(set(re.findall(r"\w+", fold(text))) & _QUANTITY_WORDS)


def _has_date(text: str) -> bool:
    return bool(re.search(r"\d", text)) or bool(set(re.findall(r"[\w']+", fold(text))) & _MONTHS)
