"""The question -> answer path with fake models: checks, citations, refusals, errors."""

import pytest
from fakes import Scripted

from rag.errors import RagError
from rag.evidence import extracts
from rag.index import build_index
from rag.pipeline import REFUSAL, Pipeline
from rag.records import Answer


@pytest.fixture
def pipeline(settings):
    return Pipeline(settings, index=build_index(settings, log=lambda *_: None))


def _with(pipeline, text):
    return Pipeline(pipeline.settings, index=pipeline.index, llm=Scripted(text))


def test_fake_llm_answer_is_cited_and_quoted(pipeline):
    answer = pipeline.ask("Combien Meta prévoit-elle de dépenser en IA en 2025 ?")
    assert not answer.refused
    assert answer.citations
    c = answer.citations[0]
    assert "65 milliards" in c.passage.text and answer.passages[c.number - 1].passage == c.passage
    assert pipeline.index.article(c.passage.doc_id).text[c.quote_start:c.quote_end] == c.quote
    assert 1 <= len(answer.passages) <= pipeline.settings.k  # overlapping passages are read once


def test_stream_yields_pieces_then_answer(pipeline):
    events = list(pipeline.stream("Que dit Zuckerberg des fuites ?"))
    assert all(isinstance(e, str) for e in events[:-1]) and len(events) > 2
    assert isinstance(events[-1], Answer)
    assert {"retrieval", "first_token", "total"} <= set(events[-1].timings)


def test_citation_of_a_passage_not_given_is_dropped(pipeline):
    answer = _with(pipeline, "Meta dépensera 65 milliards de dollars [2][9].").ask("Combien Meta dépense en IA ?")
    assert "[9]" not in answer.text and len(answer.citations) == 1
    assert 1 <= answer.citations[0].number <= pipeline.settings.k


def test_a_numbered_list_keeps_its_lines_and_passes_the_checks(pipeline):
    question = "Combien Meta prévoit-elle de dépenser en IA en 2025 ?"
    hits = pipeline.read(question)
    n, sentence = next((n, h.passage.text.split(". ")[0].rstrip("."))
                       for n, h in enumerate(hits, 1) if "65 milliards" in h.passage.text)
    answer = _with(pipeline, f"En bref :\n\n1. {sentence} [{n}].\n2. {sentence} [{n}].").ask(question)
    assert not answer.refused, answer.checks
    assert answer.text.splitlines() == ["En bref :", "", f"1. {sentence} [{n}].", f"2. {sentence} [{n}]."]


def test_refusal_in_other_words_becomes_the_standard_sentence(pipeline):
    answer = _with(pipeline, "Les extraits ne mentionnent pas le fondateur de TikTok.").ask("Qui a fondé TikTok ?")
    assert answer.refused and answer.text == REFUSAL and not answer.citations


def test_uncited_answer_is_tied_to_the_passage_it_copies(pipeline):
    hits = pipeline.read("Combien Meta prévoit-elle de dépenser en IA en 2025 ?")
    sentence = hits[1].passage.text.split(". ")[0]
    answer = _with(pipeline, sentence + ".").ask("Combien Meta prévoit-elle de dépenser en IA en 2025 ?")
    assert not answer.refused
    assert answer.citations and sentence in answer.citations[0].passage.text


def test_uncited_answer_with_nothing_from_the_passages_is_refused(pipeline):
    answer = _with(pipeline, "Zhang Yiming, en 2012.").ask("Qui a fondé TikTok ?")
    assert answer.refused


@pytest.mark.parametrize("question, message", [("", "vide"), ("   \n", "vide"), ("?!", "aucun mot"),
                                               ("mot " * 200, "trop longue")])
def test_bad_questions_are_clear_errors(pipeline, question, message):
    with pytest.raises(RagError, match=message):
        pipeline.ask(question)


def test_prompt_numbers_the_passages_given(pipeline):
    llm = Scripted("Réponse [1].")
    Pipeline(pipeline.settings, index=pipeline.index, llm=llm).ask("Qui est Guy Rosen ?")
    user = llm.prompts[0][-1]["content"]
    n = len(pipeline.read("Qui est Guy Rosen ?"))
    assert "\n[1] « " in user and f"\n[{n}] « " in user and f"[{n + 1}]" not in user
    assert "Article : " not in user  # extracts only: titles cost tokens and did not help (README)
    assert "Question : Qui est Guy Rosen ?" in user


def test_names_and_figures_from_nowhere_are_refused(pipeline):
    answer = _with(pipeline, "ByteDance a fondé TikTok en 2012 à Pékin [1].").ask("Qui a fondé TikTok ?")
    assert answer.refused and answer.checks["refusal"] == "grounded"
    grounded = next(v for v in answer.checks["verdicts"] if v["check"] == "grounded")
    assert {"bytedance", "2012", "pekin"} <= set(grounded["detail"])
    assert answer.checks["withheld"] == "ByteDance a fondé TikTok en 2012 à Pékin [1]."  # kept for the record


def test_only_an_answer_a_check_refused_is_kept_as_withheld(pipeline):
    own = _with(pipeline, "Les extraits ne mentionnent pas le fondateur de TikTok.").ask("Qui a fondé TikTok ?")
    assert own.refused and "withheld" not in own.checks  # the model's own refusal holds nothing
    question = "Combien Meta prévoit-elle de dépenser en IA en 2025 ?"
    kept = _with(pipeline, pipeline.read(question)[0].passage.text.split(". ")[0] + " [1].").ask(question)
    assert not kept.refused and "withheld" not in kept.checks


def test_only_the_rules_in_the_settings_refuse_and_a_calibration_run_records_them_all(pipeline):
    invented, question = "ByteDance a fondé TikTok en 2012 à Pékin [1].", "Qui a fondé TikTok ?"
    without = pipeline.settings.model_copy(update={"rules": ("complete", "adds", "aligned")})
    answer = Pipeline(without, index=pipeline.index, llm=Scripted(invented)).ask(question)
    assert not answer.refused and "grounded" not in [v["check"] for v in answer.checks["verdicts"]]
    calibration = pipeline.settings.model_copy(update={"rules": (), "enforce_checks": False})
    answer = Pipeline(calibration, index=pipeline.index, llm=Scripted(invented)).ask(question)
    assert not answer.refused and answer.checks["refusal"] is None
    verdicts = {v["check"]: v["passed"] for v in answer.checks["verdicts"]}
    assert verdicts["grounded"] is False and {"complete", "adds", "aligned", "verified"} <= set(verdicts)


def test_answer_the_model_does_not_confirm_is_refused(pipeline):
    question = "Combien Meta prévoit-elle de dépenser en IA en 2025 ?"
    sentence = pipeline.read(question)[0].passage.text.split(". ")[0]
    llm = Scripted(sentence + " [1].", verdict="non")
    answer = Pipeline(pipeline.settings, index=pipeline.index, llm=llm).ask(question)
    assert answer.refused and answer.checks["refusal"] == "verified"
    assert sentence[:40] in llm.prompts[-1][-1]["content"]  # verified on its supporting sentence
    for unclear in ("No.", "Faux", "Je ne sais pas", ""):  # only a clear « oui » confirms
        assert _ask(pipeline, Scripted(sentence + " [1].", verdict=unclear), question).refused, unclear
    assert not _ask(pipeline, Scripted(sentence + " [1].", verdict="« Oui »"), question).refused
    no_check = pipeline.settings.model_copy(update={"verify": False})
    assert not Pipeline(no_check, index=pipeline.index, llm=Scripted(sentence + " [1].", "non")).ask(question).refused


def _ask(pipeline, llm, question):
    return Pipeline(pipeline.settings, index=pipeline.index, llm=llm).ask(question)


def test_probabilities_decide_when_the_backend_gives_them(pipeline):
    """The fake model gives P(refusing) 0.02 and P(oui) 0.9/(0.9+0.02): thresholds above
    those refuse, and every verdict is recorded."""
    question = "Combien Meta prévoit-elle de dépenser en IA en 2025 ?"
    answer = pipeline.with_settings(pipeline.settings.model_copy(update={"max_p_refuse": 0.5})).ask(question)
    assert not answer.refused and answer.checks["p_refuse"] == pytest.approx(0.02)
    assert [v["check"] for v in answer.checks["verdicts"]] == [
        "refusal", "markers", "cited", "repointed", *pipeline.settings.rules, "verified", "confident"]
    strict = pipeline.with_settings(pipeline.settings.model_copy(update={"min_p_yes": 0.99}))
    assert strict.ask(question).checks["refusal"] == "verified"
    wary = pipeline.with_settings(pipeline.settings.model_copy(update={"max_p_refuse": 0.01}))
    assert wary.ask(question).checks["refusal"] == "confident"


def test_marker_moves_to_the_passage_that_holds_the_answer(pipeline):
    question = "Que dit-on de la stratégie de Meta dans l'IA ?"  # asks for no figure: any sentence may answer
    hits = pipeline.read(question)
    assert len(hits) >= 2
    sentence = hits[-1].passage.text.split(". ")[0]
    answer = _with(pipeline, sentence + " [1].").ask(question)
    assert [c.number for c in answer.citations] == [len(hits)], answer.text


def test_other_options_share_the_index_retriever_and_model(pipeline):
    retriever = pipeline.retriever
    other = pipeline.with_settings(pipeline.settings.model_copy(update={"k": 5, "temperature": 0.3}))
    assert other.retriever is retriever and other.index is pipeline.index and other.llm is pipeline.llm
    assert len(other.retrieve("Combien Meta dépense en IA ?")) == 5
    smaller = pipeline.with_settings(pipeline.settings.model_copy(update={"llm": "smollm2-135m-instruct"}))
    assert smaller._llm is None  # another model: loaded on first use, not the same object


class _Probing(Scripted):
    """Scripted, with a first-token probability of refusing, counting how often it is asked."""

    def __init__(self, text):
        super().__init__(text)
        self.probed = 0

    def first_token_probs(self, messages, options):
        if "oui ou par non" in messages[-1]["content"]:  # the verifier: a clear yes
            return {"oui": 0.75, "non": 0.25}
        self.probed += 1
        return {option: 0.25 for option in options}


@pytest.mark.parametrize("update, probed", [({"max_p_refuse": 1.0}, 0), ({"max_p_refuse": 0.2}, 1),
                                            ({"max_p_refuse": 1.0, "enforce_checks": False}, 1)])
def test_the_refusal_probability_is_read_only_when_something_uses_it(pipeline, update, probed):
    question = "Combien Meta prévoit-elle de dépenser en IA en 2025 ?"
    llm = _Probing(pipeline.read(question)[0].passage.text.split(". ")[0] + " [1].")
    answer = Pipeline(pipeline.settings.model_copy(update=update), index=pipeline.index, llm=llm).ask(question)
    assert llm.probed == probed and answer.checks["p_refuse"] == (0.25 if probed else None)
    assert answer.refused is (update["max_p_refuse"] < 0.25)


def test_the_model_reads_only_passages_close_to_the_best_one(pipeline):
    question = "Combien Meta prévoit-elle de dépenser en IA en 2025 ?"
    dense = pipeline.with_settings(pipeline.settings.model_copy(update={"retrieval": "dense"}))
    hits = dense.retrieve(question)
    similar = sorted((h.dense for h in hits if h.dense is not None), reverse=True)
    assert len(similar) > 1 and similar[0] > similar[-1]  # the fake vectors give distinct similarities

    def read(gap, retrieval="dense"):
        return pipeline.with_settings(pipeline.settings.model_copy(
            update={"max_gap": gap, "retrieval": retrieval})).read(question)

    # fused retrieval is read whole: BM25 brings what dense similarity ranks low
    fused = pipeline.retrieve(question)
    assert [h.passage for h in read(0.0, "hybrid")] == [h.passage for h in extracts(fused, pipeline.index.article, 0)]

    everything = read(1.0)
    assert [h.passage for h in everything] == [h.passage for h in extracts(hits, pipeline.index.article, 0)]
    best = [h for h in hits if h.dense == similar[0] or h.dense is None]
    only_best = read(0.0)
    assert sum(len(h.passage.text) for h in only_best) < sum(len(h.passage.text) for h in everything)
    assert all(any(e.passage.doc_id == h.passage.doc_id and e.passage.start <= h.passage.start
                   and h.passage.end <= e.passage.end for h in best) for e in only_best)


def test_a_figure_from_a_document_about_the_question_s_subject_is_not_refused(settings, tmp_path):
    """A manual's spec line names its product only in the title: the pipeline tells aligned
    what each document alone is about (its title's words no other title has)."""
    corpus = tmp_path / "manuals"
    corpus.mkdir()
    (corpus / "aerosec.txt").write_text("Notice du déshumidificateur AéroSec DS-20\n\nCaractéristiques techniques.\n\n"
                                        "Capacité du réservoir : 3,5 litres.\n\nPuissance nominale : 420 W.\n", "utf-8")
    (corpus / "vapeo.txt").write_text("Notice de la bouilloire Vapeo\n\nCapacité : 1,7 litre.\n\nPuissance : 2 200 W.\n",
                                      "utf-8")
    manuals = settings.model_copy(update={"seeds_dir": corpus, "index_dir": tmp_path / "manuals-index"})
    index = build_index(manuals, log=lambda *_: None)
    question = "Quelle est la contenance du réservoir de l'AéroSec DS-20 ?"
    reader = Pipeline(manuals, index=index, llm=Scripted("x"))
    n = next(n for n, h in enumerate(reader.read(question), 1) if "3,5 litres" in h.passage.text)
    answer = Pipeline(manuals, index=index, llm=Scripted(f"Le réservoir de l'AéroSec DS-20 contient 3,5 litres [{n}].")).ask(question)
    assert not answer.refused, answer.checks
    assert next(v for v in answer.checks["verdicts"] if v["check"] == "aligned")["passed"]
