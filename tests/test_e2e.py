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


def test_declines_a_question_the_corpus_does_not_answer(real: Pipeline):
    answer = real.ask("Qui a fondé TikTok ?")
    assert answer.refused and answer.text == REFUSAL and not answer.citations


def test_cli_ask_end_to_end(real: Pipeline, tmp_path: Path):
    env = {**os.environ, "RAG_INDEX_DIR": str(real.settings.index_dir)}
    run = subprocess.run([sys.executable, "-m", "rag", "ask", "--json", META_2025],
                         capture_output=True, text=True, env=env, cwd=PROJECT_ROOT, timeout=600)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert "65 milliards" in out["answer"] and not out["refused"]
    assert out["citations"][0]["doc_id"] == EVIDENCE_2025[0]
