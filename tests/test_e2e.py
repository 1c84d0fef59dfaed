"""End to end with the real packaged models: USE multilingual embedder, Qwen2.5 1.5B GGUF.

Slow (a minute or two on 2 cores); marked e2e. Run alone with `pytest -m e2e`.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag.evaluation import holds
from rag.index import build_index
from rag.pipeline import REFUSAL, Pipeline
from rag.settings import PROJECT_ROOT, Settings

pytestmark = pytest.mark.e2e

META_2025 = "Combien Meta prévoit-elle de dépenser en IA en 2025 ?"
EVIDENCE_2025 = ("002_dbf84de5b56e379c", "Meta prévoit de dépenser 65 milliards de dollars en IA en 2025")


@pytest.fixture(scope="module")
def real(tmp_path_factory) -> Pipeline:
    settings = Settings(index_dir=tmp_path_factory.mktemp("index"), threads=os.cpu_count() or 2)
    return Pipeline(settings, index=build_index(settings, log=lambda *_: None))


def test_answers_with_the_figure_and_cites_the_article(real: Pipeline):
    answer = real.ask(META_2025)
    assert not answer.refused, answer.text
    assert "65 milliards" in answer.text
    cited_docs = {c.passage.doc_id for c in answer.citations}
    assert EVIDENCE_2025[0] in cited_docs, answer
    # every citation points at a passage that holds text supporting the answer
    assert any(holds(c.passage, *EVIDENCE_2025) for c in answer.citations)
    for c in answer.citations:
        article = real.index.article(c.passage.doc_id)
        assert article.text[c.quote_start:c.quote_end] == c.quote


@pytest.mark.parametrize("question", [
    "Qui a fondé TikTok ?",  # the model's inventions: « Zuckerberg a fondé TikTok »…
    "Comment s'appelle le PDG de Klarna ?",  # … « Steve Davis » (Twitter's favourite for CEO)
])
def test_declines_a_question_the_corpus_does_not_answer(real: Pipeline, question: str):
    answer = real.ask(question)
    assert answer.refused and answer.text == REFUSAL and not answer.citations


def test_cli_ask_end_to_end(real: Pipeline, tmp_path: Path):
    env = {**os.environ, "RAG_INDEX_DIR": str(real.settings.index_dir)}
    run = subprocess.run([sys.executable, "-m", "rag", "ask", "--json", META_2025],
                         capture_output=True, text=True, env=env, cwd=PROJECT_ROOT, timeout=600)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert "65 milliards" in out["answer"] and not out["refused"]
    assert out["citations"][0]["doc_id"] == EVIDENCE_2025[0]


def _evaluated(llm) -> list[int]:
    """Record how many tokens each llama_cpp evaluation call is given, from now on."""
    sizes: list[int] = []
    model, original = llm.model, llm.model.eval

    def counting(tokens):
        sizes.append(len(tokens))
        return original(tokens)

    model.eval = counting  # instance attribute: Llama.generate calls self.eval
    return sizes


def test_system_prompt_is_evaluated_once_and_put_back(real: Pipeline):
    llm = real.llm
    messages = real.messages(META_2025, real.retrieve(META_2025))
    other = [{"role": "system", "content": "Réponds par un seul mot."}, {"role": "user", "content": "Bonjour"}]
    first = "".join(llm.stream(messages, 24, 0.0))
    prefix = llm.prefixes[messages[0]["content"]]
    n_prompt = len(llm._prompt_tokens(messages))
    assert 100 < len(prefix.tokens) < n_prompt  # the few-shot system prompt, not the question
    # the prompt create_chat_completion really ran starts with the saved prefix
    assert llm.model.input_ids[:len(prefix.tokens)].tolist() == list(prefix.tokens)

    "".join(llm.stream(other, 4, 0.0))  # another system prompt overwrites the context
    restored = llm.prefix_stats["restored"]
    sizes = _evaluated(llm)
    try:
        second = "".join(llm.stream(messages, 24, 0.0))
    finally:
        del llm.model.eval
    assert llm.prefix_stats["restored"] == restored + 1
    # only what follows the system prompt was evaluated, then one token per decode step
    assert sizes[0] == n_prompt - len(prefix.tokens) and set(sizes[1:]) <= {1}
    assert second == first  # an answer does not depend on what was asked before it


def test_prefix_cache_keeps_the_latest_system_prompts(real: Pipeline):
    llm = real.llm
    for i in range(llm.MAX_PREFIXES + 2):
        "".join(llm.stream([{"role": "system", "content": f"Consigne numéro {i}."},
                            {"role": "user", "content": "Bonjour"}], 2, 0.0))
    kept = list(llm.prefixes)
    assert len(kept) == llm.MAX_PREFIXES
    assert kept[-1] == f"Consigne numéro {llm.MAX_PREFIXES + 1}." and "Consigne numéro 0." not in kept


def test_first_token_probabilities_tell_oui_from_non(real: Pipeline):
    """The probabilities the checks rely on, on an extract that settles each question: they
    agree with what greedy decoding writes, and separate yes from no by a wide margin over the
    set (a rate, not one knife-edge value). Without an extract this model says « oui » to
    most closed questions, so its P(oui) is calibrated before use (rag/checks.py)."""
    system = {"role": "system", "content": "Tu vérifies des réponses à partir d'un extrait. "
                                           "Tu réponds seulement par « oui » ou « non »."}
    facts = [("Le chat de Marie est noir et il dort beaucoup.", "Le chat de Marie est-il", "noir", "blanc"),
             ("La société Cyclo a vendu 12 000 vélos en 2023.", "Cyclo a-t-elle vendu", "12 000 vélos en 2023",
              "40 000 vélos en 2023"),
             ("Le maire de Lyon s'appelle Paul Dubois.", "Le maire de Lyon s'appelle-t-il", "Paul Dubois",
              "Jean Martin"),
             ("Le musée ouvre à 9 heures et ferme à 18 heures.", "Le musée ferme-t-il à", "18 heures", "22 heures")]
    p_yes = {"oui": [], "non": []}
    for extract, ask, true, false in facts:
        for claim, want in ((true, "oui"), (false, "non")):
            messages = [system, {"role": "user", "content": f"Extrait : « {extract} »\nQuestion : {ask} {claim} ?\n"
                                                             "Réponds par oui ou par non."}]
            probs = real.llm.first_token_probs(messages, ["oui", "non"])
            written = "".join(real.llm.stream(messages, 3, 0.0)).strip().lower()
            assert written.startswith(max(probs, key=probs.get)), (claim, probs, written)
            p_yes[want].append(probs["oui"])
    right = sum(p > 0.5 for p in p_yes["oui"]) + sum(p < 0.5 for p in p_yes["non"])
    assert right >= 7
    assert sum(p_yes["oui"]) / 4 - sum(p_yes["non"]) / 4 > 0.5
