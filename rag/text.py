"""French word handling shared by BM25, citation checks and the eval metrics.

Accent folding and a light plural stemmer only: on news text this is what makes a
question's « dépenses » meet the article's « dépenser ». No lemmatiser, no spell fixes.
Numbers are read by value for the checks (`number`, `number_forms`, `figures`): « 12 000 »
is « 12000 », « vingt-cinq » (text2num) is 25, and a figure keeps its scale and unit.
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


# A number as written: digits grouped by thousands (« 12 000 », « 1 200 000,50 », « 1.200.000 »),
# a version (« 2.6.32 »), or plain with one decimal part (« 44 », « 3,5 », « 10.0 »)
_NUMBER = (r"(?<![\d.,])(?:\d{1,3}(?:[ \u00a0\u202f]\d{3})+(?:,\d+)?|\d{1,3}(?:\.\d{3}){2,}(?![.\d])"
           r"|\d+(?:\.\d+){2,}|\d+(?:[.,]\d+)?)(?![\d])")
NUMBER = re.compile(_NUMBER)
_SCALE = re.compile(f"({_NUMBER})" + r"\s*(mille|millions?|milliards?|mds?|mrds?)\b", re.IGNORECASE)
_FACTORS = {"mille": 10**3, "million": 10**6, "milliard": 10**9, "md": 10**9, "mrd": 10**9}


def number(written: str) -> str:
    """One canonical form of a number as written: « 12 000 », « 12000 » and « 1.200.000 »
    lose their separators, « 3,50 » and « 3.5 » are « 3.5 », « 10.0 » is « 10 »; a version
    (« 2.6.30 ») stays as written."""
    digits = re.sub(r"[ \u00a0\u202f]", "", written)
    if re.fullmatch(r"\d{1,3}(?:\.\d{3}){2,}", digits):
        digits = digits.replace(".", "")
    if digits.count(".") > 1:
        return digits
    digits = digits.replace(",", ".")
    return digits.rstrip("0").rstrip(".") if "." in digits else digits


def readings(written: str) -> set[str]:
    """The canonical forms a number as written may stand for: one (`number`), but two for
    « 12.000 », French grouping (12000) or a decimal (12)."""
    if re.fullmatch(r"\d{1,3}\.\d{3}", written):
        return {number(written), written.replace(".", "")}
    return {number(written)}


def number_forms(text: str) -> set[str]:
    """Every form in which an answer may faithfully write the numbers of `text`: each one's
    canonical form (`number`), spelled-out numbers as digits (« vingt-cinq » 25, by
    text2num), a number with its scale (« 1,2 million » also 1200000, « 44 milliards »
    also 44000000000), and large round numbers by the million and billion (« 1 200 000 »
    also 1.2). « 12.000 » is read both ways, 12000 and 12."""
    from decimal import Decimal

    from text_to_num import alpha2digit

    out: set[str] = set()
    for source in (fold(text), fold(alpha2digit(with_scales(text), "fr"))):
        for match in NUMBER.finditer(source):
            out |= readings(match.group())
    for form in list(out):
        if form.isdigit() and int(form) >= 10**6:
            out |= {_plain(Decimal(form) / 10**6), _plain(Decimal(form) / 10**9)}
    return out


def with_scales(text: str) -> str:
    """`text` with each number and its scale written as one number: « 1,2 million » becomes
    « 1200000 », « 12 mille » « 12000 »."""
    from decimal import Decimal

    def scaled(match: re.Match) -> str:
        factor = _FACTORS[match.group(2).lower().rstrip("s")]
        return _plain(Decimal(number(match.group(1))) * factor)

    return _SCALE.sub(scaled, text)


# Units a figure may carry, each spelling (folded) to one name: « 200 g » is not « 200 calories »
_UNITS = {spelling: unit for unit, spellings in {
    "seconde": "s sec seconde secondes", "minute": "min mn minute minutes", "heure": "h heure heures",
    "jour": "jour jours", "semaine": "semaine semaines", "mois": "mois", "an": "an ans annee annees",
    "mg": "mg milligramme milligrammes", "g": "g gr gramme grammes", "kg": "kg kilo kilos kilogramme kilogrammes",
    "tonne": "tonne tonnes", "ml": "ml millilitre millilitres", "cl": "cl centilitre centilitres",
    "l": "l litre litres", "mm": "mm millimetre millimetres", "cm": "cm centimetre centimetres",
    "m": "m metre metres", "km": "km kilometre kilometres", "calorie": "cal calorie calories kcal kilocalories",
    "w": "w watt watts", "kw": "kw kilowatt kilowatts", "v": "v volt volts", "degre": "°c °f ° degre degres",
    "octet": "o octet octets", "ko": "ko kb", "mo": "mo mb", "go": "go gb", "to": "to tb",
    "euro": "€ euro euros eur", "dollar": "$ dollar dollars usd", "livre": "£ livre livres",
    "pourcent": "% pourcent",
}.items() for spelling in spellings.split()}
_FIGURE = re.compile(f"({_NUMBER})" + r"\s*(?:(?:de|d')\s*)?(°\s?[cf]\b|[%€$£°]|[^\W\d_]+)?")


def figures(text: str) -> list[tuple[str, str | None]]:
    """The numbers of `text` with their scale and spelled-out ones as digits (« quarante-cinq
    minutes » is 45), each as (canonical value, unit or None): « 200 g de farine » is
    (200, g), « 1,7 litre » (1.7, l), « 44 milliards de dollars » (44000000000, dollar),
    « 4 pommes » (4, None)."""
    from text_to_num import alpha2digit

    text = re.sub(r"(?<=\d)\s*pour\s?cent\b", " %", text, flags=re.IGNORECASE)  # before text2num reads « cent »
    source = fold(alpha2digit(with_scales(text), "fr"))
    return [(number(m.group(1)), _UNITS.get((m.group(2) or "").replace(" ", ""))) for m in _FIGURE.finditer(source)]


def _plain(value) -> str:
    """A Decimal without exponent or trailing zeros: 1.2, 44000000000."""
    text = format(value.normalize(), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text
