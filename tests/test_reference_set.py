"""Checks the reference question set, eval/reference.jsonl, against the seed articles.

Plain pytest, no project imports: the set is data, and these checks keep it honest
(evidence copied verbatim from article bodies, key facts present in that evidence,
unanswerable questions really empty, enough questions of each kind and per article).

Kinds of question (`tags`, the first one is the record's primary kind):

- simple, paraphrase: one fact, asked in the article's words or reworded;
- paraphrase-hard: one fact, asked without any content word of its evidence (checked
  mechanically: `shared_content_words`);
- who-said: who said, wrote, reported or claimed something (speaker, medium, study);
- date: when something happened, or how long (dates, months, years, durations);
- multi: two facts from two evidence spans (possibly two articles);
- near-duplicate: the fact is in only one of the articles that report the same Meta
  internal meeting (`NEAR_DUPLICATES`), so the right article must be cited;
- unanswerable: the articles do not hold the answer (off-corpus);
- unanswerable-entity (always with unanswerable): a plausible attribute of an entity
  the corpus does name, that no article body gives.

The dev/test split (`split`): « dev » is for tuning, « test » is reported and never
tuned on. It is made by `assign_splits`, a fixed procedure that never looks at how the
app does: records are grouped into strata by primary tag and article (the doc_id of
the first evidence span; without evidence, the first of `home_articles`, else « - »);
strata are visited in sorted order, each stratum's records in id order alternate
dev, test, dev, ... (no shuffle, no seed), and a stratum starts on the side that has
fewer records of that primary tag so far (dev on a tie), so every tag is split within
one record of 50/50. Growing the set means running `assign_splits` again (a record
appended to a stratum does not move the records before it in that stratum, but it can
flip the starting side of later strata of the same tag).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter, defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
REFERENCE = ROOT / "eval" / "reference.jsonl"

FIELDS = {
    "id": str,
    "question": str,
    "answer": str,
    "answerable": bool,
    "key_facts": list,
    "evidence": list,
    "tags": list,
    "split": str,
}
TAGS = {"simple", "paraphrase", "paraphrase-hard", "who-said", "date", "multi",
        "near-duplicate", "unanswerable", "unanswerable-entity"}
SPLITS = ("dev", "test")

MIN_TOTAL = 150
MIN_PER_ARTICLE = 20  # answerable questions citing it + unanswerable-entity ones about it
MIN_PER_TAG = {
    "simple": 1,
    "paraphrase": 12,
    "paraphrase-hard": 12,
    "who-said": 10,
    "date": 10,
    "multi": 12,
    "near-duplicate": 8,
    "unanswerable": 45,
    "unanswerable-entity": 30,
}
MIN_SPLIT_SHARE = 0.4  # of every tag with at least SPLIT_TAG_MIN records, in each split
SPLIT_TAG_MIN = 10
MIN_HARD_EVIDENCE_WORDS = 6  # a paraphrase-hard question is checked against a real sentence

# The three articles on Mark Zuckerberg's internal meeting about leaks: 000 retells most
# of 001 (polling system, Llama, DeepSeek, DEI, Trump, Reels) in other words, and 002
# covers the same meeting from the TikTok / AI angle.
NEAR_DUPLICATES = {"000_6aa0d2c1c64dd291", "001_7964a669a5581a1c", "002_dbf84de5b56e379c"}

# Scraped noise that evidence must never come from: whole lines (titles, teasers to other
# articles, widgets, the « EN BREF » summary box) given by their start, and the page tail
# (ratings, author bios, comments, related links) starting at a marker. Compared after
# normalisation.
NOISE_LINES = {
    "000_6aa0d2c1c64dd291": [
        "La France « sidérée » par ce bio-ordinateur",
        "Le PDG de Klarna",
        "L’IA s’empare du cinéma",
        "EN BREF",
        "🔍 Mark Zuckerberg doit faire face à des fuites",
        "🤖 L’entreprise mise sur l’IA open source",
        "🤝 Meta cherche à établir une relation productive",
        "🚀 Concurrence féroce face à TikTok",
    ],
    "001_7964a669a5581a1c": ["date 2025-01"],
    "002_dbf84de5b56e379c": ["fermer", "Réseaux sociaux", "« Trop sceptique » sur TikTok"],
    "003_311ccccd3c182cae": ["Meta Entraîne Son IA avec des Données EU"],
    "004_36b0a24bd3ea13c0": ["Désolé Twitter", "Lire aussi", "Commentaire"],
}
TAIL_MARKERS = {
    "000_6aa0d2c1c64dd291": "Ça vous a plu ?",
    "001_7964a669a5581a1c": "Quel est votre avis sur le sujet ?",
    "002_dbf84de5b56e379c": "Tags :",
    "003_311ccccd3c182cae": "author avatar",
    "004_36b0a24bd3ea13c0": "Plus de Bloomberg Opinion",
}

# French function words (the usual stopword list: articles, pronouns, prepositions,
# conjunctions, forms of être and avoir) plus question words and adverbs. Words of three
# letters or fewer are dropped anyway.
STOPWORDS_TEXT = """
au aux avec ce ces dans de des du elle en et eux il ils je la le les leur lui ma mais me
même mes moi mon ne nos notre nous on ou par pas pour qu que qui sa se ses son sur ta te
tes toi ton tu un une vos votre vous été étée étées étés étant étante étants étantes suis
es est sommes êtes sont serai seras sera serons serez seront serais serait serions seriez
seraient étais était étions étiez étaient fus fut fûmes fûtes furent sois soit soyons
soyez soient fusse fusses fût fussions fussiez fussent ayant ayante ayantes ayants eu eue
eues eus ai as avons avez ont aurai auras aura aurons aurez auront aurais aurait aurions
auriez auraient avais avait avions aviez avaient eut eûmes eûtes eurent aie aies ait
ayons ayez aient eusse eusses eût eussions eussiez eussent être avoir
quel quelle quels quelles lequel laquelle lesquels lesquelles auquel auxquels duquel
comment combien pourquoi quand quoi où
cet cette ceux celle celles celui cela ceci ça leurs autre autres mêmes tout tous toute
toutes chaque certains certaines plusieurs quelque quelques aucun aucune dont
selon après avant depuis pendant contre entre sans sous vers chez parmi lors lorsque afin
comme ainsi alors aussi donc puis car quant dès auprès envers malgré durant jusqu jusque
parce tandis plus moins très bien déjà encore toujours jamais trop peu beaucoup plutôt
environ vraiment ensuite enfin également notamment seulement ici
"""

ENTITY_IGNORED = {"IA", "PDG"}  # capitalised but not names


def fold(text: str) -> str:
    """Strip accents, keep case."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def normalize(text: str) -> str:
    """Lowercase, strip accents, punctuation to spaces, collapse whitespace."""
    folded = fold(text.lower())
    return " ".join(re.sub(r"[^\w]+", " ", folded).split())


def contains(haystack: str, needle: str) -> bool:
    return normalize(needle) in normalize(haystack)


STOPWORDS = set(normalize(STOPWORDS_TEXT).split())


def content_words(text: str) -> set[str]:
    """Folded, lowercased words longer than three letters, stopwords dropped, a final
    s or x (plural) stripped."""
    out = set()
    for word in normalize(text).split():
        if len(word) <= 3 or word in STOPWORDS:
            continue
        if word[-1] in "sx":
            word = word[:-1]
        if word not in STOPWORDS:
            out.add(word)
    return out


def shared_content_words(question: str, evidence: str) -> set[str]:
    return content_words(question) & content_words(evidence)


def load_records() -> list[dict]:
    raw = REFERENCE.read_text(encoding="utf-8")
    records = []
    for n, line in enumerate(raw.splitlines(), 1):
        assert line.strip(), f"blank line {n}"
        records.append(json.loads(line))
    return records


RECORDS = load_records()
SEED_TEXT = {p.stem: p.read_text(encoding="utf-8") for p in sorted(SEEDS.glob("*.txt"))}
BY_ID = {r.get("id"): r for r in RECORDS}


def body_of(doc_id: str) -> str:
    """The seed text with noise lines and the page tail blanked out (offsets kept)."""
    text = SEED_TEXT[doc_id]
    tail = TAIL_MARKERS[doc_id]
    cut = text.find(tail)
    assert cut > 0, f"tail marker {tail!r} not found in {doc_id}"
    masked = text[:cut] + "\0" * (len(text) - cut)
    out = []
    for line in masked.splitlines(keepends=True):
        stripped = normalize(line)
        if any(stripped.startswith(normalize(p)) for p in NOISE_LINES[doc_id]):
            line = "\0" * len(line)
        out.append(line)
    return "".join(out)


BODIES = {doc_id: body_of(doc_id) for doc_id in SEED_TEXT}

_WORD = re.compile(r"\w[\w-]*")  # keeps hyphenated names (États-Unis) whole
BODY_WORDS = {doc_id: {fold(w) for w in _WORD.findall(body)} for doc_id, body in BODIES.items()}


def named_entities(question: str) -> list[str]:
    """Words of the question with a capital letter (not its first word; xAI counts) that
    an article body contains with the same capitals: names of the corpus (accents folded)."""
    words = _WORD.findall(question)[1:]
    caps = [fold(w) for w in words if any(c.isupper() for c in w) and w not in ENTITY_IGNORED]
    return [w for w in caps if any(w in BODY_WORDS[d] for d in BODY_WORDS)]


def home_articles(question: str) -> tuple[str, ...]:
    """The articles a question without evidence is about: those whose body holds its
    rarest corpus name (the one in the fewest bodies; ties pool their articles)."""
    docs = [{d for d in BODY_WORDS if e in BODY_WORDS[d]} for e in named_entities(question)]
    if not docs:
        return ()
    fewest = min(len(s) for s in docs)
    return tuple(sorted(set().union(*(s for s in docs if len(s) == fewest))))


def stratum(rec: dict) -> tuple[str, str]:
    """(primary tag, article) of a record, for the dev/test split."""
    if rec["evidence"]:
        article = rec["evidence"][0]["doc_id"]
    else:
        article = next(iter(home_articles(rec["question"])), "-")
    return rec["tags"][0], article


def assign_splits(records: list[dict]) -> dict[str, str]:
    """id -> « dev » or « test », by the procedure in the module docstring."""
    strata = defaultdict(list)
    for rec in records:
        strata[stratum(rec)].append(rec)
    sizes = Counter()  # (primary tag, split) -> records so far
    out = {}
    for key in sorted(strata):
        tag = key[0]
        first = "dev" if sizes[tag, "dev"] <= sizes[tag, "test"] else "test"
        second = "test" if first == "dev" else "dev"
        for n, rec in enumerate(sorted(strata[key], key=lambda r: int(r["id"][1:]))):
            side = first if n % 2 == 0 else second
            out[rec["id"]] = side
            sizes[tag, side] += 1
    return out


def ids(records):
    return [r["id"] for r in records]


def tagged(tag):
    return [r for r in RECORDS if tag in r["tags"]]


# ------------------------------------------------------------------ file and schema


def test_file_is_plain_utf8_jsonl():
    raw = REFERENCE.read_bytes().decode("utf-8")
    assert raw.endswith("\n")
    assert "\\u" not in raw, "write with ensure_ascii=False"


def test_seeds_present():
    assert len(SEED_TEXT) == 5
    assert set(SEED_TEXT) == set(NOISE_LINES) == set(TAIL_MARKERS)
    assert NEAR_DUPLICATES <= set(SEED_TEXT)


def check_shape(rec: dict, id_pattern: str) -> None:
    """A record's fields, their types, its tags and split: the format every reference set shares."""
    assert set(rec) == set(FIELDS), f"fields: {sorted(rec)}"
    for name, kind in FIELDS.items():
        assert isinstance(rec[name], kind), f"{name} should be {kind.__name__}"
    assert re.fullmatch(id_pattern, rec["id"])
    assert rec["question"].strip() and rec["question"].rstrip().endswith("?")
    assert rec["tags"] and set(rec["tags"]) <= TAGS and len(set(rec["tags"])) == len(rec["tags"])
    assert rec["split"] in SPLITS
    for fact in rec["key_facts"]:
        assert isinstance(fact, list) and fact, "each key fact is a non-empty list of forms"
        for form in fact:
            assert isinstance(form, str) and normalize(form), f"bad form {form!r}"
    for ev in rec["evidence"]:
        assert isinstance(ev, dict) and set(ev) == {"doc_id", "text"}
        assert isinstance(ev["doc_id"], str) and isinstance(ev["text"], str)
        assert ev["text"].strip()


def check_answerability(rec: dict) -> None:
    """An unanswerable record is tagged so and empty; an answerable one has evidence, key facts
    and an answer."""
    unanswerable = "unanswerable" in rec["tags"]
    assert rec["answerable"] is (not unanswerable)
    if unanswerable:
        assert rec["tags"] in (["unanswerable"], ["unanswerable-entity", "unanswerable"])
        assert rec["evidence"] == [] and rec["key_facts"] == [] and rec["answer"] == ""
    else:
        assert "unanswerable-entity" not in rec["tags"]
        assert rec["evidence"] and rec["key_facts"] and rec["answer"].strip()


@pytest.mark.parametrize("rec", RECORDS, ids=ids(RECORDS))
def test_fields_and_types(rec):
    check_shape(rec, r"q\d{3}")


def test_ids_unique_and_sequential():
    got = ids(RECORDS)
    assert len(got) == len(set(got))
    assert got == [f"q{i:03d}" for i in range(1, len(got) + 1)]


def test_questions_unique():
    questions = [normalize(r["question"]) for r in RECORDS]
    dupes = [q for q, n in Counter(questions).items() if n > 1]
    assert not dupes


# ------------------------------------------------------------------ evidence and facts


@pytest.mark.parametrize("rec", RECORDS, ids=ids(RECORDS))
def test_evidence_is_exact_substring_of_seed(rec):
    for ev in rec["evidence"]:
        assert ev["doc_id"] in SEED_TEXT, f"unknown doc {ev['doc_id']}"
        assert (SEEDS / f"{ev['doc_id']}.txt").is_file()
        assert ev["text"] in SEED_TEXT[ev["doc_id"]], f"not verbatim: {ev['text']!r}"


@pytest.mark.parametrize("rec", RECORDS, ids=ids(RECORDS))
def test_evidence_comes_from_article_body(rec):
    for ev in rec["evidence"]:
        assert ev["text"] in BODIES[ev["doc_id"]], f"evidence in page noise: {ev['text']!r}"


@pytest.mark.parametrize("rec", RECORDS, ids=ids(RECORDS))
def test_key_facts_supported_by_evidence(rec):
    joined = " ".join(ev["text"] for ev in rec["evidence"])
    for fact in rec["key_facts"]:
        assert any(contains(joined, form) for form in fact), f"{fact} not in evidence"


@pytest.mark.parametrize("rec", [r for r in RECORDS if r["answerable"]],
                         ids=ids([r for r in RECORDS if r["answerable"]]))
def test_reference_answer_states_key_facts(rec):
    for fact in rec["key_facts"]:
        assert any(contains(rec["answer"], form) for form in fact), f"{fact} not in answer"


@pytest.mark.parametrize("rec", RECORDS, ids=ids(RECORDS))
def test_answerability_is_consistent(rec):
    check_answerability(rec)


@pytest.mark.parametrize("rec", tagged("multi"), ids=ids(tagged("multi")))
def test_multi_questions_cite_several_passages(rec):
    spans = {(ev["doc_id"], ev["text"]) for ev in rec["evidence"]}
    assert len(spans) >= 2


# ------------------------------------------------------------------ harder kinds


def test_content_word_check_catches_reuse():
    evidence = "Meta prévoit de dépenser 65 milliards de dollars en IA en 2025."
    assert shared_content_words("Combien Meta prévoit-elle de dépenser en IA ?", evidence) == {
        "meta", "prevoit", "depenser"}
    assert shared_content_words("Quelles dépenses, en milliard ?", "la dépense en milliards") == {
        "depense", "milliard"}
    assert shared_content_words("Quel budget le propriétaire d'Instagram consacre-t-il à "
                                "l'intelligence artificielle cette année-là ?", evidence) == set()
    assert content_words("Quand, selon lui, est-ce que cela sera fait ?") == {"fait"}


@pytest.mark.parametrize("rec", tagged("paraphrase-hard"), ids=ids(tagged("paraphrase-hard")))
def test_hard_paraphrase_shares_no_content_word_with_its_evidence(rec):
    evidence = " ".join(ev["text"] for ev in rec["evidence"])
    assert len(content_words(evidence)) >= MIN_HARD_EVIDENCE_WORDS, "evidence too short to test"
    shared = shared_content_words(rec["question"], evidence)
    assert not shared, f"question reuses evidence words {sorted(shared)}"


@pytest.mark.parametrize("rec", tagged("near-duplicate"), ids=ids(tagged("near-duplicate")))
def test_near_duplicate_questions_cite_one_article_of_the_cluster(rec):
    docs = {ev["doc_id"] for ev in rec["evidence"]}
    assert len(docs) == 1 and docs <= NEAR_DUPLICATES


@pytest.mark.parametrize("rec", tagged("unanswerable-entity"), ids=ids(tagged("unanswerable-entity")))
def test_unanswerable_entity_questions_name_a_corpus_entity(rec):
    assert named_entities(rec["question"]), "no name of the corpus in the question"
    assert home_articles(rec["question"])


def test_entity_detection():
    assert named_entities("Quel est le salaire de Guy Rosen ?") == ["Guy", "Rosen"]
    assert home_articles("Quel est le salaire de Guy Rosen ?") == ("001_7964a669a5581a1c",)
    assert named_entities("Quel est le salaire du Pape François ?") == []
    assert named_entities("Que dit l'IA ?") == []
    # Meta is in four bodies, Musk in one: the question is about the Musk article
    assert home_articles("Meta a-t-elle parlé à Musk ?") == ("004_36b0a24bd3ea13c0",)


# ------------------------------------------------------------------ counts and anchors


def test_counts_per_tag():
    tags = Counter(t for r in RECORDS for t in r["tags"])
    assert len(RECORDS) >= MIN_TOTAL
    for tag, minimum in MIN_PER_TAG.items():
        assert tags[tag] >= minimum, f"{tag}: {tags[tag]} < {minimum}"
    assert sum(not r["answerable"] for r in RECORDS) >= MIN_PER_TAG["unanswerable"]


def test_every_article_is_covered():
    per_doc = Counter()
    for r in RECORDS:
        docs = {ev["doc_id"] for ev in r["evidence"]}
        if "unanswerable-entity" in r["tags"]:
            docs |= set(home_articles(r["question"]))
        per_doc.update(docs)
    for doc_id in SEED_TEXT:
        assert per_doc[doc_id] >= MIN_PER_ARTICLE, f"{doc_id}: {per_doc[doc_id]}"


def test_canonical_pair():
    by_question = {normalize(r["question"]): r for r in RECORDS}
    meta = by_question[normalize("Combien Meta prévoit-elle de dépenser en IA en 2025 ?")]
    assert meta["answerable"] and ["65 milliards"] in meta["key_facts"]
    assert {ev["doc_id"] for ev in meta["evidence"]} == {"002_dbf84de5b56e379c"}
    tiktok = by_question[normalize("Qui a fondé TikTok ?")]
    assert not tiktok["answerable"]


# ------------------------------------------------------------------ dev/test split


def test_split_follows_the_documented_procedure():
    expected = assign_splits(RECORDS)
    moved = [r["id"] for r in RECORDS if r["split"] != expected[r["id"]]]
    assert not moved, f"split differs from assign_splits for {moved}"


def test_splits_are_balanced_overall_and_per_tag():
    overall = Counter(r["split"] for r in RECORDS)
    assert abs(overall["dev"] - overall["test"]) <= 0.1 * len(RECORDS)
    for tag in sorted(TAGS):
        records = tagged(tag)
        if len(records) < SPLIT_TAG_MIN:
            continue
        counts = Counter(r["split"] for r in records)
        for side in SPLITS:
            assert counts[side] >= MIN_SPLIT_SHARE * len(records), f"{tag}: {dict(counts)}"


def test_each_split_has_answerable_and_unanswerable_questions():
    for side in SPLITS:
        records = [r for r in RECORDS if r["split"] == side]
        assert sum(r["answerable"] for r in records) >= MIN_SPLIT_SHARE * sum(r["answerable"] for r in RECORDS)
        assert sum(not r["answerable"] for r in records) >= MIN_SPLIT_SHARE * sum(
            not r["answerable"] for r in RECORDS)
