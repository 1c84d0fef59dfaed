"""The checks between what the model wrote and the answer shown: one stage, read top to bottom.

A small model answers off-corpus questions with real names and figures of the corpus,
cites [1] by habit, and drops the very figure it was asked for. Each check below either
lets the draft through (possibly rewritten) or refuses it; they run in this order and
every verdict is recorded, by name, in `Answer.checks`:

1. refusal    the model refused: the answer opens as a refusal, in any wording (an answer
              that merely contains « ne précise pas » is not one);
2. markers    markers of passages the model was not given are dropped; an extract number
              used as a value (« [3] millions ») is no answer;
3. cited      an answer without a marker is tied to the passage it copies from, or refused;
4. repointed  a marker moves to the passage that holds the answer's words when the cited
              one holds fewer;
5. complete   the answer holds the kind of thing asked for: a number for « combien »,
              a sum of money when a price or a cost is asked, a count rather than only a
              percentage for « combien de… », a date for « quand » (« Elon Musk a payé
              pour acheter Twitter » is none);
6. adds       the answer says something the question does not (« Nvidia a chuté à cause
              de DeepSeek » does not answer « De combien… »);
7. grounded   every number of the answer is in its cited passages or the question, by
              value (« 12000 » is « 12 000 », « 25 » is « vingt-cinq ») and with its unit
              (« 200 calories » is not « 200 g »), every name and every word of a command
              in `backticks` in their articles (« Markus Klarner » or `ssh-keygen` found
              nowhere is an invention; « Mark » Zuckerberg, named so at the top of the
              article, is not);
8. aligned    a figure of the answer comes from a sentence that, with its neighbours,
              names what the question names (not the « 180 000 » subscribers of Twitter
              Blue for « Combien d'utilisateurs compte Instagram Reels ? »), unless the
              document's own title is about all of it (a manual's spec line);
9. verified   asked again on the cited evidence alone, the model says « oui »: P(oui)
              against P(non) at least `min_p_yes`, or a clear « oui » from a backend
              without probabilities (« No », « Faux », an empty reply confirm nothing);
10. confident  the model's own first-token probability of refusing, measured before it
              wrote, is at most `max_p_refuse`.
Which of the rules 5 to 8 run (`settings.rules`) and the thresholds of 9 and 10 are
chosen on the dev splits (bench/calibrate.py). Reading markers and finding supporting
sentences is citations.py's.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Mapping, Sequence

from rag import citations
from rag.citations import strip_markers
from rag.passages import split_sentences
from rag.prompts import render
from rag.records import Hit
from rag.text import NUMBER, STOPWORDS, figures, fold, number, number_forms, readings, terms, with_scales

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
_LIST_ITEM = re.compile(r"^\s*\d{1,2}[.)]\s+")
_NUMBER_WORDS = {"un": "1", "une": "1", "deux": "2", "trois": "3", "quatre": "4", "cinq": "5", "six": "6",
                 "sept": "7", "huit": "8", "neuf": "9", "dix": "10", "onze": "11", "douze": "12",
                 "quinze": "15", "vingt": "20", "trente": "30", "cinquante": "50", "cent": "100",
                 "mille": "1000", "seize": "16", "treize": "13", "quatorze": "14", "quarante": "40"}
_QUANTITY_WORDS = set(_NUMBER_WORDS) | {"million", "millions", "milliard", "milliards", "moitie", "tiers",
                                        "quart", "dizaine", "dizaines", "centaine", "centaines", "millier",
                                        "milliers", "double", "triple", "aucun", "aucune"}
# A sum of money is asked for: the answer must carry one (« près d'une décennie » is no price)
_MONEY_ASKED = re.compile(r"\b(?:pa[yi](?:é|ée|és|ées|er|e|es|ent|ait|aient|a|era|eront)|co[uû]t\w*|d[ée]pens\w*"
                          r"|investi\w*|prix|montant|tarif\w*|salaires?|budgets?|sommes?|amendes?|chiffre d'affaires"
                          r"|valorisation|vendu\w* pour|rachet\w* pour)\b",
                          re.IGNORECASE)
_MONEY = re.compile(r"[$€£]|\b(?:dollars?|euros?|livres?|francs?|yuans?|yens?|millions?|milliards?|mds?|k€|m€)\b",
                    re.IGNORECASE)
# « Combien d'Européens… » counts people: a percentage alone does not say how many
_COUNT_ASKED = re.compile(r"^\W*(?:à |de )?combien (?:de |d')", re.IGNORECASE)
_SHARE_ASKED = re.compile(r"\b(?:pourcentage|part|proportion|taux|pour ?cent|%)", re.IGNORECASE)
_PERCENT = re.compile(r"\d+(?:[.,]\d+)?\s*(?:%|pour ?cent)")
_MONTHS = set("""janvier fevrier mars avril mai juin juillet aout septembre octobre novembre decembre
    lundi mardi mercredi jeudi vendredi samedi dimanche hier aujourd'hui demain""".split())
_MARKER_AS_VALUE = re.compile(r"\[\d+\]\s*(?:[%$€]|(?:millions?|milliards?|mille|dollars?|euros?|ans|heures|jours|mois)\b)",
                              re.IGNORECASE)


@dataclass(frozen=True)
class Draft:
    """The answer as it goes through the checks."""

    text: str
    question: str
    hits: tuple[Hit, ...]
    p_refuse: float | None = None  # P(the reply's first token opens a refusal), if known
    articles: Mapping[str, str] = field(default_factory=dict)  # doc id -> whole text, for names
    subjects: Mapping[str, frozenset[str]] = field(default_factory=dict)  # doc id -> `own_subjects`


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
        failed = next((v.check for v in self.verdicts if not v.passed), None) if self.refused else None
        return {"refusal": failed, "verdicts": [{"check": v.check, "passed": v.passed, "detail": v.detail}
                                                for v in self.verdicts]}


Check = Callable[[Draft], "tuple[Draft, Verdict]"]


def run(draft: Draft, checks: Sequence[Check], enforce: bool = True) -> Outcome:
    """Apply `checks` in order; the first that fails turns the answer into the refusal.
    Not enforced (a calibration run), every check runs and only the model's own refusal
    refuses: the record then tells what any subset of checks would have done."""
    verdicts = []
    for check in checks:
        draft, verdict = check(draft)
        verdicts.append(verdict)
        if not verdict.passed and (enforce or verdict.check == "refusal"):
            return Outcome(REFUSAL, True, tuple(verdicts))
    return Outcome(draft.text, False, tuple(verdicts))


def standard(llm, prompts_dir: Path, verify: bool = True, min_p_yes: float = 0.5,
             max_p_refuse: float = 1.0, rules: Sequence[str] = ()) -> list[Check]:
    """The checks of the module docstring, in their order, with these thresholds; of the
    hand-written rules (5 to 8), only those named in `rules`."""
    checks: list[Check] = [refusal, markers, cited, repointed]
    checks += [check for name, check in RULES.items() if name in rules]
    if verify:
        checks.append(lambda d: verified(d, llm, prompts_dir, min_p_yes))
    checks.append(lambda d: confident(d, max_p_refuse))
    return checks


# ------------------------------------------------------------------ the checks, in order


def refusal(draft: Draft) -> tuple[Draft, Verdict]:
    text = tidy(answer_part(draft.text))
    refused = not strip_markers(text).strip(" .") or bool(_REFUSAL_OPENING.match(text))
    return replace(draft, text=text), Verdict("refusal", not refused, text[:80] if refused else None)


def markers(draft: Draft) -> tuple[Draft, Verdict]:
    if misused := _MARKER_AS_VALUE.search(draft.text):
        return draft, Verdict("markers", False, f"« {misused.group(0).strip()} » : un numéro d'extrait pris pour une valeur")
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
    """A « combien » answer without a quantity, or a « quand » answer without a date, is no
    answer, whatever the passages hold (off the corpus, they hold none)."""
    wants = "quantité" if _QUANTITY.match(draft.question) else "date" if _WHEN.match(draft.question) else None
    if wants is None:
        return draft, Verdict("complete", True)
    text = strip_markers(draft.text)
    if wants == "date":
        ok = _has_date(text)
        return draft, Verdict("complete", ok, None if ok else "date absente de la réponse")
    if not _has_quantity(text):
        missing = "quantité absente de la réponse"
    elif _MONEY_ASKED.search(draft.question) and not _MONEY.search(text):
        missing = "somme d'argent absente de la réponse"
    elif _only_percentages(text, draft.question):
        missing = "un pourcentage au lieu d'un nombre"
    else:
        missing = None
    return draft, Verdict("complete", missing is None, missing)


def adds(draft: Draft) -> tuple[Draft, Verdict]:
    """The answer's content words that the question does not have; a first name put before
    one of the question's names (« Elon » Musk for « Musk ») adds nothing, a word after it
    does (« Meta AI » for « l'IA que Meta… »)."""
    asked = set(terms(draft.question)) | _tokens(draft.question)
    answer = strip_markers(draft.text)
    extended = {t for run in _name_runs(answer) for t in _before_asked(terms(run), asked)}
    said = [*terms(answer), *(w.lower() for w in re.findall(r"\b[A-Z][A-Z0-9]+\b|\d+", answer))]  # « AI », « 2024 »
    new = [t for t in dict.fromkeys(said) if t not in asked and t not in extended]
    return draft, Verdict("adds", bool(new), None if new else "la réponse ne fait que reprendre la question")


def grounded(draft: Draft) -> tuple[Draft, Verdict]:
    """Numbers of the answer found in none of its cited passages nor in the question, or
    found there with another unit, and names found in none of their articles (titles
    included): the surest sign of an invention.
    Names may come from the whole article, which names a person in full once and by the
    surname after; a figure from elsewhere in the article is another fact's figure."""
    passages = cited_passages(draft)
    near = draft.question + " " + " ".join(f"{p.title} {p.text}" for p in passages)
    numbers = _tokens(near)
    names = numbers | _words(" ".join(draft.articles.get(p.doc_id, "") for p in passages))
    answer = strip_markers(draft.text)
    missing = [w for w in _names_and_numbers(draft.text) if not _known(w, numbers if w[0].isdigit() else names)]
    missing += [w for w in _code_words(answer) if not _known(w, names) and w not in missing]
    missing += _other_units(answer, near)
    return draft, Verdict("grounded", not missing, missing or None)


def _other_units(answer: str, evidence: str) -> list[str]:
    """The answer's figures whose unit the evidence never gives them: « 200 calories » when
    the extract has « 200 g de farine », « 65 milliards d'euros » for its « 65 milliards de
    dollars ». A figure the evidence also writes bare, or that it does not hold, is left to
    the rule above."""
    units: dict[str, set] = {}
    for value, unit in figures(evidence):
        units.setdefault(value, set()).add(unit)
    return list(dict.fromkeys(f"{value} {unit}" for value, unit in figures(answer)
                              if unit and units.get(value) and None not in units[value] and unit not in units[value]))


def aligned(draft: Draft) -> tuple[Draft, Verdict]:
    """Each figure of the answer must come from a sentence of a cited article that, with the
    sentence before and after it, names something the question names. A question that names
    nothing, or a figure found nowhere (grounded's business), passes."""
    names = set(_question_names(draft.question))
    if not names:
        return draft, Verdict("aligned", True)
    # A document whose own subject is all the question names is about it throughout: a
    # manual's spec line, a biography's « elle épouse… », a town bulletin's fees name it only
    # in the title.
    passages = cited_passages(draft)
    if any(names <= draft.subjects.get(p.doc_id, frozenset()) for p in passages):
        return draft, Verdict("aligned", True)
    texts = [draft.articles.get(p.doc_id) or p.text for p in passages]
    stray = [n for n in _names_and_numbers(draft.text)
             if n[0].isdigit() and _near_names(n, texts, names) is False]
    return draft, Verdict("aligned", not stray, stray or None)


def own_subjects(titles: Mapping[str, str]) -> dict[str, frozenset[str]]:
    """Doc id -> the words of its title that no other title of the corpus has: what that
    document alone is about (« Léonie Castagnède », « AéroSec DS-20 »). A word every
    chapter's title shares (« Debian » in the Debian FAQ) tells no document from another."""
    words = {doc_id: _words(title) for doc_id, title in titles.items()}
    counts = Counter(w for ws in words.values() for w in ws)
    return {doc_id: frozenset(w for w in ws if counts[w] == 1) for doc_id, ws in words.items()}


def _near_names(number: str, texts: Sequence[str], names: set[str]) -> bool | None:
    """True if a sentence holding `number` has one of `names` within one sentence of its
    paragraph, False if sentences hold it but none does, None if no sentence holds it."""
    seen = False
    for text in texts:
        sentences = split_sentences(text)
        for i, (start, end) in enumerate(sentences):
            if number in _tokens(text[start:end]):
                seen = True
                if names & _words(_with_neighbours(text, sentences, i)):
                    return True
    return False if seen else None


def _with_neighbours(text: str, sentences: list[tuple[int, int]], i: int) -> str:
    """Sentence i with the one before and the one after, when they are in its paragraph."""
    start, end = sentences[i]
    if i > 0 and "\n" not in text[sentences[i - 1][1]:start]:
        start = sentences[i - 1][0]
    if i + 1 < len(sentences) and "\n" not in text[end:sentences[i + 1][0]]:
        end = sentences[i + 1][1]
    return text[start:end]


def _known(word: str, known: set[str]) -> bool:
    """In `known` as written, without a plural s or x, or (« 12.000 ») in either reading."""
    return word in known or word.rstrip("sx") in known or (word[0].isdigit() and bool(readings(word) & known))


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


# the hand-written rules a setting may leave out (settings.rules), chosen on dev (bench/calibrate.py)
RULES: dict[str, Check] = {"complete": complete, "adds": adds, "grounded": grounded, "aligned": aligned}


# ------------------------------------------------------------------ helpers


def tidy(text: str) -> str:
    """Spaces collapsed within each line; the lines kept (a numbered list, a code block), at
    most one empty line between them."""
    lines = [" ".join(line.split()) for line in text.strip().splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines))


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


def _tokens(text: str) -> set[str]:
    """`_words` of `text` and its numbers in every form an answer may write them
    (rag.text.number_forms: « 12 000 » is 12000, « vingt-cinq » 25, « 1,2 million » 1200000)."""
    return number_forms(text) | _words(text)


def _words(text: str) -> set[str]:
    """Folded words of `text`, plurals also bare, small number words (« trois ») also as
    digits: what names are looked for in (a whole article needs no number forms)."""
    out = set()
    for word in re.findall(r"[^\W\d_]+", fold(text)):
        out |= {word, word.rstrip("sx"), _NUMBER_WORDS.get(word, word)}
    return out


def _names_and_numbers(answer: str) -> list[str]:
    """The answer's numbers (with their scale: « 1,2 million » is 1200000) and name-like
    words (a capital letter anywhere, not a word capitalised only for opening its
    sentence), folded, in order, once each. A line opens
    a sentence, and the number of a list item (« 1. Installez… », « 2) … ») is no fact."""
    found = []
    lines = (with_scales(strip_markers(_LIST_ITEM.sub("", line))) for line in answer.splitlines())
    for sentence in (s for line in lines for s in re.split(citations.SENTENCE_BREAK, line)):
        words = re.findall(NUMBER.pattern + r"|[^\W\d_]+(?:['’][^\W\d_]+)?", sentence)
        for i, word in enumerate(words):
            if word[0].isdigit():  # « 12.000 » stays as written: _known tries its two readings
                found.append(word if len(readings(word)) > 1 else number(word))
            elif any(c.isupper() for c in word) and not (i == 0 and _opener(word, words)):
                found.append(fold(word).split("'")[-1])
    return [w for w in dict.fromkeys(found) if w and w not in STOPWORDS]


def _code_words(answer: str) -> list[str]:
    """The words of what the answer marks as code (`apt-get install`): a command is a name."""
    words = re.findall(r"[^\W\d_]{3,}", fold(" ".join(re.findall(r"`([^`]+)`", answer))))
    return [w for w in dict.fromkeys(words) if w not in STOPWORDS]


_OPENERS = STOPWORDS | {"selon", "depuis", "lors", "oui", "non", "cela", "ceci", "grace", "malgre", "parmi",
                        "pendant", "outre", "contrairement", "finalement", "ensuite", "enfin", "aujourd"}


def _opener(word: str, words: list[str]) -> bool:
    """A sentence's first word capitalised only for opening it: a common word (« Selon »), or
    a lone capitalised word before a lower-case one (« Utilisez la commande… », « Mélangez »);
    « Markus Klarner », « ByteDance » and a one-word answer stay names."""
    if fold(word).split("'")[-1] in _OPENERS:
        return True
    return (not any(c.isupper() for c in word[1:]) and len(words) > 1
            and words[1][0].islower())


def _question_names(question: str) -> list[str]:
    """Folded name-like words of a question (a capital letter, not its first word)."""
    words = re.findall(r"[^\W\d_]+(?:['’][^\W\d_]+)?", question)
    found = [fold(w).split("'")[-1] for i, w in enumerate(words) if i > 0 and any(c.isupper() for c in w)]
    return [w for w in dict.fromkeys(found) if len(w) > 1 and w not in STOPWORDS]


def _before_asked(run: list[str], asked: set[str]) -> list[str]:
    """The words of a name that come before its last word the question has."""
    last = max((i for i, t in enumerate(run) if t in asked), default=-1)
    return run[:last]


def _name_runs(text: str) -> list[str]:
    """Runs of consecutive capitalised words: « Elon Musk », « Business Insider »."""
    return re.findall(r"(?:\b[A-ZÀ-Ý][\w'’-]*(?:\s+|$)){1,4}", text)


def _has_quantity(text: str) -> bool:
    """Digits, a number word (« soixante ans », read by rag.text.number_forms), or a word of
    quantity (« une dizaine »)."""
    return bool(re.search(r"\d", text) or number_forms(text)) or bool(set(re.findall(r"\w+", fold(text))) & _QUANTITY_WORDS)


def _only_percentages(text: str, question: str) -> bool:
    """« Combien de X » answered by percentages only (the question asks for no share)."""
    if not _COUNT_ASKED.match(question) or _SHARE_ASKED.search(question):
        return False
    numbers = re.findall(r"\d+(?:[.,]\d+)?", _PERCENT.sub("", text))
    return bool(_PERCENT.search(text)) and not numbers


def _has_date(text: str) -> bool:
    return bool(re.search(r"\d", text)) or bool(set(re.findall(r"[\w']+", fold(text))) & _MONTHS)
