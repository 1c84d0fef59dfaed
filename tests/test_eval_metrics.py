"""The eval metrics on values worked out by hand (rag/evaluation.py, rag/report.py)."""

from __future__ import annotations

import json
from fractions import Fraction

import pytest

from rag.errors import RagError
from rag.evaluation import (BASELINES, Reference, answer_text, baseline_rows, best_sentence, by_tag,
                            citation_scores, evidence_found, exact_match, has_key_facts,
                            has_key_facts_strict, in_split, language, load_reference, normalize_answer,
                            percentile, retrieval_summary, score_answer, score_record, speed, summary,
                            token_f1)
from rag.pipeline import REFUSAL
from rag.records import Passage
from rag.report import changed, compare, compare_runs, settings_variants

EV_META = ("d1", "Meta prévoit de dépenser 65 milliards de dollars en IA en 2025")
EV_TIKTOK = ("d2", "TikTok compte un milliard d'utilisateurs")
HOLDS_META = Passage("d1#0-120", "d1", "T", 0, 120, "Le groupe l'a confirmé. Meta prévoit de dépenser "
                     "65 milliards de dollars en IA en 2025 pour rattraper son retard.")
OTHER = Passage("d1#120-160", "d1", "T", 120, 160, "Zuckerberg parle de TikTok et de Trump.")
HOLDS_TIKTOK = Passage("d2#0-60", "d2", "T", 0, 60, "TikTok compte un milliard d'utilisateurs dans le monde.")
META_ELSEWHERE = Passage("d9#0-120", "d9", "T", 0, 120, HOLDS_META.text)  # same words, other article


def ref(answerable=True, evidence=(EV_META,), answer="Meta prévoit de dépenser 65 milliards de dollars en IA en 2025.",
        facts=(("65 milliards",),)) -> Reference:
    if not answerable:
        return Reference("q2", "Qui a fondé TikTok ?", "", False, (), (), ("unanswerable",))
    return Reference("q1", "Combien Meta dépense-t-elle en IA ?", answer, True, facts, evidence, ("simple",))


# ------------------------------------------------------------------ normalisation, EM, F1


@pytest.mark.parametrize("text, expected", [
    ("L'IA d'Meta, les États-Unis !", "ia meta etats unis"),
    ("Aujourd’hui, l’équipe de Meta", "aujourd hui equipe meta"),
    ("Le PDG de la société", "pdg societe"),
    ("Des fuites du Conseil.", "fuites conseil"),
    ("Une enquête, un rapport", "enquete rapport"),
    ("65,5 milliards « au moins »", "65 5 milliards au moins"),
])
def test_normalize_answer_french(text, expected):
    assert normalize_answer(text) == expected


@pytest.mark.parametrize("prediction, gold, expected", [
    ("Les États-Unis !", "les etats unis", True),
    ("L'IA", "IA", True),
    ("Une démocratisation de l'IA.", "la democratisation d'IA", True),
    ("65 milliards", "65 millions", False),
    ("Meta", "Meta investit", False),
])
def test_exact_match(prediction, gold, expected):
    assert exact_match(prediction, gold) is expected


@pytest.mark.parametrize("prediction, gold, expected", [
    # meta depensera 65 milliards dollars / 65 milliards dollars en 2025: 3 common of 5 and 5
    ("Meta dépensera 65 milliards de dollars", "65 milliards de dollars en 2025", Fraction(3, 5)),
    # democratisation ia (2) in 7 gold words: P = 1, R = 2/7, F1 = 2·(2/7)/(9/7) = 4/9
    ("la démocratisation de l'IA", "Meta veut devenir un leader dans la démocratisation de l'IA.", Fraction(4, 9)),
    # chat chat et chat vs chat: 1 common (counted once), P = 1/4, R = 1, F1 = 2/5
    ("le chat, le chat et le chat", "un chat", Fraction(2, 5)),
    ("Zhang Yiming", "ByteDance", 0),
    ("", "Meta", 0),
    ("Les.", "le", 1),  # both empty once articles are out
])
def test_token_f1(prediction, gold, expected):
    assert token_f1(prediction, gold) == pytest.approx(float(expected))


# ------------------------------------------------------------------ key facts, strict and lenient

FACTS = (("65 milliards",), ("2025",))
FILLER = "Le groupe multiplie les annonces depuis le début de l'année. "  # 61 characters, no fact


@pytest.mark.parametrize("answer, strict, lenient", [
    ("Meta dépensera 65 milliards de dollars en 2025 [1].", True, True),
    ("Meta dépensera 65 milliards [1]. Ce sera en 2025 [2].", True, True),  # two sentences
    (FILLER + FILLER + "Meta dépensera 65 milliards en 2025.", False, True),  # third sentence
    ("Meta dépensera 65 milliards en 2025. " + FILLER * 5, False, True),  # 37 + 305 characters
    ("Meta dépensera 65 milliards [1].", False, False),  # one fact of two
    ("", False, False),
])
def test_key_facts_count_only_in_the_first_two_sentences_of_a_short_answer(answer, strict, lenient):
    assert has_key_facts_strict(answer, FACTS) is strict
    assert has_key_facts(answer, FACTS) is lenient


def test_the_300_characters_are_counted_without_the_markers():
    answer = "Meta dépensera 65 milliards en 2025, " + "x" * 262 + "."  # 300 characters
    assert len(answer) == 300 and has_key_facts_strict(answer, FACTS)
    assert has_key_facts_strict(answer[:-1] + " [1][2] [3].", FACTS)  # 311 with its markers
    assert not has_key_facts_strict(answer[:-1] + "y.", FACTS)  # 301
    assert answer_text("Meta  dépense [1] 65 milliards [2].") == "Meta dépense 65 milliards."


def test_a_pasted_passage_finds_the_facts_only_leniently():
    pasted = ("Le groupe l'a confirmé lors de sa conférence annuelle devant les analystes. Les "
              "investisseurs attendaient ce chiffre depuis des semaines. Meta prévoit de dépenser 65 "
              "milliards de dollars en IA en 2025 pour rattraper son retard [1].")
    row = score_answer(ref(), pasted, False, [HOLDS_META])
    assert row["key_facts_lenient"] and not row["key_facts"] and not row["correct"]


# ------------------------------------------------------------------ citations, one answer


def test_citation_precision_and_recall():
    two = ref(evidence=(EV_META, EV_TIKTOK))
    # distinct cited passages: HOLDS_META (holds), OTHER (does not) -> 1/2; spans found: 1 of 2
    assert citation_scores(two, [HOLDS_META, OTHER, HOLDS_META]) == (0.5, 0.5)
    assert citation_scores(two, [HOLDS_META, HOLDS_TIKTOK]) == (1.0, 1.0)
    assert citation_scores(two, [META_ELSEWHERE]) == (0.0, 0.0)  # right words, wrong article
    assert citation_scores(two, []) == (None, 0.0)


def test_score_answer_takes_markers_out_and_judges_refusals():
    row = score_answer(ref(), "Meta prévoit de dépenser 65 milliards de dollars en IA en 2025 [1].",
                       False, [HOLDS_META])
    assert row["exact_match"] and row["f1"] == 1.0 and row["key_facts"] and row["correct"]
    assert row["cites_evidence"] and (row["citation_precision"], row["citation_recall"]) == (1.0, 1.0)
    assert row["language"] == "fr"
    refused = score_answer(ref(), "Je ne trouve pas la réponse dans le corpus.", True, [])
    assert not refused["key_facts"] and not refused["key_facts_lenient"] and refused["f1"] == 0
    # a refusal cites nothing: recall 0 (it counts in the mean), precision undefined (it does not)
    assert (refused["citation_recall"], refused["citation_precision"], refused["cites_evidence"]) == (0.0, None, False)
    assert score_answer(ref(answerable=False), "Je ne trouve pas…", True, [])["correct"] is True
    failed = score_answer(ref(answerable=False), "", False, [], error="RuntimeError : boum")
    assert failed["correct"] is False and failed["language"] is None


def test_score_record_reads_a_batch_record():
    record = {"id": "q1", "question": "?", "answer": "Meta dépensera 65 milliards [1].", "refused": False,
              "error": None, "passages": [HOLDS_META.id], "models": {}, "tokens": 12,
              "citations": [{"number": 1, "passage_id": HOLDS_META.id, "doc_id": "d1", "title": "T",
                             "span": [23, 100], "quote": "…", "passage_span": [0, 120],
                             "passage_text": HOLDS_META.text}],
              "timings": {"retrieval": 0.1, "first_token": 0.5, "verify": 0.25, "total": 2.0}}
    row = score_record(ref(), record)
    assert row["key_facts"] and row["cites_evidence"]
    assert (row["first_token"], row["total"], row["tokens"]) == (0.5, 2.0, 12)
    assert row["generation"] == pytest.approx(1.25)  # 2.0 - 0.5 - 0.25


# ------------------------------------------------------------------ language


@pytest.mark.parametrize("text, expected", [
    ("Meta prévoit de dépenser 65 milliards de dollars [1].", "fr"),
    ("L'entreprise a été « trop sceptique » au départ.", "fr"),
    ("Meta plans to spend 65 billion dollars on AI [1].", "en"),
    ("The company was too sceptical, Zuckerberg said.", "en"),
    ("Meta 计划在人工智能上花费650亿美元 [1]", "other"),
    ("Guy Rosen [1].", "?"),
    ("", "?"),
])
def test_language(text, expected):
    assert language(text) == expected


# ------------------------------------------------------------------ retrieval


def test_recall_at_k_and_mrr():
    two = ref(evidence=(EV_META, EV_TIKTOK))
    found = evidence_found(two, [OTHER, HOLDS_META, OTHER, HOLDS_TIKTOK])
    assert found == {"recall@1": 0.0, "recall@3": 0.5, "recall@5": 1.0, "recall@10": 1.0, "rank": 2}
    missed = evidence_found(ref(), [OTHER, META_ELSEWHERE])
    assert missed["rank"] is None and missed["recall@10"] == 0.0
    assert retrieval_summary([found, missed]) == {
        "recall@1": 0.0, "recall@3": 0.25, "recall@5": 0.5, "recall@10": 0.5, "mrr": 0.25, "questions": 2}


# ------------------------------------------------------------------ all questions


def row(answerable=True, refused=False, error=None, language="fr", em=False, f1=0.0, facts=False,
        lenient=None, precision=None, recall=0.0, first_token=None, total=None, tokens=0, generation=None,
        tags=("simple",)):
    """A scored row as `score_answer` makes it (a refused or failed one has recall 0)."""
    return {"tags": list(tags), "answerable": answerable, "refused": refused, "error": error,
            "language": language, "exact_match": em, "f1": f1, "key_facts": facts,
            "key_facts_lenient": facts if lenient is None else lenient, "cites_evidence": bool(recall),
            "citation_precision": precision, "citation_recall": recall, "first_token": first_token,
            "total": total, "tokens": tokens, "generation": generation}


ROWS = [
    row(em=True, f1=1.0, facts=True, precision=1.0, recall=1.0, first_token=0.5, total=2.0, tokens=10,
        generation=1.0, tags=("simple", "multi")),
    row(language="en", f1=0.5, lenient=True, precision=0.0, recall=0.0, first_token=1.0, total=3.0, tokens=30,
        generation=2.0, tags=("paraphrase",)),
    row(refused=True, language=None, total=5.0),
    row(error="RuntimeError : boum", language=None, first_token=9.0, total=9.0, tokens=100, generation=1.0),
    row(answerable=False, refused=True, language=None, first_token=2.0, total=6.0, tokens=20, generation=2.0,
        tags=("unanswerable",)),
    row(answerable=False, language="?", first_token=1.5, total=4.0, tags=("unanswerable",)),
    row(answerable=False, refused=True, language=None, tags=("unanswerable",)),
]


def test_summary_by_hand():
    s = summary(ROWS)
    assert (s["questions"], s["errors"]) == (7, 1)
    # 4 answerable rows: EM 1/4, F1 (1 + 0.5)/4, key facts 1/4 strict, 2/4 lenient
    assert s["answers"] == {"exact_match": 0.25, "f1": 0.375, "key_facts": 0.25, "key_facts_lenient": 0.5,
                            "questions": 4}
    # recall and « cites evidence » over the 4 answerable (refused and failed count 0): 1/4;
    # precision over the 2 that cite something: (1 + 0) / 2
    assert s["citations"] == {"precision": 0.5, "recall": 0.25, "cites_evidence": 0.25, "questions": 4,
                              "citing": 2}
    # refused: one answerable, two not -> precision 2/3; 2 of 3 unanswerable refused; 1 of 4 wrongly
    assert s["refusals"] == pytest.approx({"precision": 2 / 3, "recall": 2 / 3, "wrong_refusals": 0.25,
                                           "unanswerable": 3})
    assert s["language"] == {"french": 0.5, "judged": 2}  # "fr" and "en"; "?" and None not judged


def test_figures_by_tag_by_hand():
    tags = by_tag(ROWS)
    assert list(tags) == ["multi", "paraphrase", "simple", "unanswerable"]
    # simple: rows 1, 3, 4 (row 1 also counts under multi): facts 1/3, lenient 1/3, refused 1/3
    assert tags["simple"] == pytest.approx({"questions": 3, "answerable": 3, "key_facts": 1 / 3,
                                            "key_facts_lenient": 1 / 3, "refused": 1 / 3})
    assert tags["multi"] == {"questions": 1, "answerable": 1, "key_facts": 1.0, "key_facts_lenient": 1.0,
                             "refused": 0.0}
    assert tags["paraphrase"]["key_facts"] == 0.0 and tags["paraphrase"]["key_facts_lenient"] == 1.0
    assert tags["unanswerable"] == pytest.approx({"questions": 3, "answerable": 0, "key_facts": None,
                                                  "key_facts_lenient": None, "refused": 2 / 3})
    assert summary(ROWS)["by_tag"] == tags


def test_speed_by_hand():
    s = speed(ROWS)  # the failed row is left out
    # first tokens 0.5 1.0 1.5 2.0: p50 = 1.25, p95 at rank 2.85 = 1.5 + 0.85·0.5
    assert s["first_token_p50"] == pytest.approx(1.25) and s["first_token_p95"] == pytest.approx(1.925)
    # totals 2 3 4 5 6: p50 = 4, p95 at rank 3.8 = 5 + 0.8
    assert s["total_p50"] == pytest.approx(4.0) and s["total_p95"] == pytest.approx(5.8)
    assert s["tokens_per_second"] == pytest.approx(60 / 5)  # (10 + 30 + 20) / (1 + 2 + 2)


@pytest.mark.parametrize("values, q, expected", [
    ([4, 1, 3, 2], 50, 2.5), ([1, 2, 3, 4], 95, 3.85), ([1, 2, 3, 4], 100, 4), ([1, 2, 3, 4], 0, 1),
    ([7], 95, 7), ([], 50, None),
])
def test_percentile(values, q, expected):
    assert percentile(values, q) == (pytest.approx(expected) if expected is not None else None)


def test_percentile_matches_numpy():
    import random

    import numpy as np

    values = [random.Random(3).random() for _ in range(37)]
    for q in (5, 50, 95, 99):
        assert percentile(values, q) == pytest.approx(np.percentile(values, q))


# ------------------------------------------------------------------ baselines


SENTENCES = Passage("d1#0-150", "d1", "T", 0, 150, "Le groupe l'a confirmé. Meta prévoit de dépenser "
                    "65 milliards de dollars en IA. Zuckerberg parle de TikTok.")


def test_best_sentence_shares_most_question_terms_and_ties_go_to_the_better_passage():
    # « Combien Meta dépense-t-elle en IA ? »: terms meta, depens, ia
    assert best_sentence(ref().question, [OTHER, SENTENCES]) == (
        "Meta prévoit de dépenser 65 milliards de dollars en IA.", SENTENCES)
    tie = Passage("d2#0-30", "d2", "T", 0, 30, "Zuckerberg aussi.")
    assert best_sentence("Que dit Zuckerberg ?", [OTHER, tie]) == ("Zuckerberg parle de TikTok et de Trump.", OTHER)
    assert best_sentence("Meta ?", []) is None


def test_baselines_are_scored_by_the_functions_that_score_the_app():
    refs = [ref(), ref(answerable=False)]
    rows = baseline_rows(refs, lambda question: [SENTENCES, HOLDS_META])
    assert list(rows) == list(BASELINES) == ["bm25-passage", "bm25-sentence", "refuse-all"]
    passage, sentence, refused = (rows[name][0] for name in BASELINES)
    assert passage == {"id": "q1", "answer": SENTENCES.text + " [1]"} | score_answer(
        refs[0], SENTENCES.text + " [1]", False, [SENTENCES])
    assert sentence["answer"] == "Meta prévoit de dépenser 65 milliards de dollars en IA. [1]"
    assert sentence["key_facts"] and sentence["cites_evidence"]
    assert refused["refused"] and refused["answer"] == REFUSAL and not refused["key_facts"]
    assert [r["correct"] for r in rows["refuse-all"]] == [False, True]
    assert rows["bm25-passage"][1]["refused"] is False  # it answers the unanswerable one too
    nothing = baseline_rows(refs, lambda question: [])
    assert all(r["refused"] for name in ("bm25-passage", "bm25-sentence") for r in nothing[name])


# ------------------------------------------------------------------ splits


def test_reference_records_may_name_a_split(tmp_path):
    path = tmp_path / "ref.jsonl"
    lines = [{"id": i, "question": f"{i} ?", "answer": "", "answerable": False, "key_facts": [],
              "evidence": [], "tags": ["unanswerable"]} | split for i, split in
             (("a", {"split": "dev"}), ("b", {"split": "test"}), ("c", {}), ("d", {"split": "dev"}))]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n", "utf-8")
    refs = load_reference(path)
    assert [r.split for r in refs] == ["dev", "test", None, "dev"]
    assert [r.id for r in in_split(refs, "dev")] == ["a", "d"]
    assert [r.id for r in in_split(refs, "test")] == ["b"]
    assert [r.id for r in in_split(refs, "all")] == ["a", "b", "c", "d"]  # c is only in « all »
    with pytest.raises(RagError, match="Partie inconnue « train »"):
        in_split(refs, "train")
    path.write_text(json.dumps(lines[0] | {"split": "train"}) + "\n", "utf-8")
    with pytest.raises(RagError, match="ligne 1 : entrée invalide .*split"):
        load_reference(path)


# ------------------------------------------------------------------ settings of the records


def test_settings_variants_group_the_records_by_the_settings_they_were_made_with():
    k3, k5 = {"llm": "fake", "k": 3}, {"llm": "fake", "k": 5}
    records = [{"id": "a", "settings": k3}, {"id": "b", "settings": k5}, {"id": "c", "settings": k3},
               {"id": "d"}]  # an older version recorded none
    assert settings_variants(records) == [{"settings": k3, "ids": ["a", "c"]}, {"settings": k5, "ids": ["b"]},
                                          {"settings": None, "ids": ["d"]}]
    assert settings_variants(records[:1]) == [{"settings": k3, "ids": ["a"]}]


def test_summary_of_nothing_is_undefined_not_zero():
    s = summary([])
    assert s["answers"]["f1"] is None and s["refusals"]["precision"] is None
    assert s["speed"]["tokens_per_second"] is None


# ------------------------------------------------------------------ comparing two runs


def test_compare_two_runs():
    a = {"figures": {"questions": 3, "answers": {"f1": 0.5, "key_facts": None}, "speed": {"total_p50": 2.0}},
         "rows": [{"id": "q1", "correct": True}, {"id": "q2", "correct": False}, {"id": "q3", "correct": True}]}
    b = {"figures": {"questions": 3, "answers": {"f1": 0.75, "key_facts": 0.5}, "speed": {"total_p50": 1.5}},
         "rows": [{"id": "q1", "correct": False}, {"id": "q2", "correct": True}, {"id": "q3", "correct": True}]}
    assert compare(a, b) == [("questions", 3, 3, 0), ("answers.f1", 0.5, 0.75, 0.25),
                             ("answers.key_facts", None, 0.5, None), ("speed.total_p50", 2.0, 1.5, -0.5)]
    assert changed(a, b) == (["q2"], ["q1"])


def test_compare_warns_when_two_runs_do_not_measure_the_same_thing(tmp_path):
    rows = [{"id": "q1", "correct": True}]
    old = {"figures": {"answers": {"key_facts": 0.67}}, "rows": rows, "models": {"llm": "m"}}  # no split
    new = {"figures": {"answers": {"key_facts": 0.4, "key_facts_lenient": 0.66}}, "rows": rows,
           "models": {"llm": "m"}, "split": "test"}
    for name, doc in (("old", old), ("new", new)):
        (tmp_path / f"{name}.json").write_text(json.dumps(doc), "utf-8")
    text = compare_runs(tmp_path / "old.json", tmp_path / "new.json")
    assert "Attention : questions de parties différentes (A : all, B : test)." in text
    assert "Attention : A compte les faits clés à l'ancienne" in text
    assert "Attention" not in compare_runs(tmp_path / "new.json", tmp_path / "new.json")
