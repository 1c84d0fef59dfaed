"""End to end through a real model server: llama-cpp-python's `python -m llama_cpp.server`
serving the app's default GGUF on 127.0.0.1, started for this module and stopped after it
(also on failure). The embedder stays local. Slow (a minute or two on 2 cores); marked e2e.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from model_server import free_port, llama_cpp_server, running
from rag import models
from rag.llms.llamacpp import LlamaCppLLM
from rag.llms.openai import OpenAILLM
from rag.settings import PROJECT_ROOT, Settings

pytestmark = pytest.mark.e2e

META_2025 = "Combien Meta prévoit-elle de dépenser en IA en 2025 ?"
EVIDENCE_DOC = "002_dbf84de5b56e379c"
CHECK = [  # a verification whose extract settles it: « oui »
    {"role": "system", "content": "Tu vérifies des réponses à partir d'un extrait. "
                                  "Tu réponds seulement par « oui » ou « non »."},
    {"role": "user", "content": "Extrait : La société Cyclo a vendu 12 000 vélos en 2023.\n"
                                "Question : Cyclo a-t-elle vendu 12 000 vélos en 2023 ?\n"
                                "Réponds par oui ou par non."},
]


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> str:
    """The base URL of the running server."""
    settings = Settings()
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    command = llama_cpp_server(models.local_path(settings, settings.llm), settings.llm, port)
    with running(command, url, tmp_path_factory.mktemp("server") / "server.log"):
        yield url


def test_rag_ask_through_the_server_streams_a_grounded_cited_answer(server: str, real_index_dir: Path):
    env = {**os.environ, "RAG_INDEX_DIR": str(real_index_dir), "RAG_LLM_BACKEND": "openai",
           "RAG_OPENAI_BASE_URL": server}
    run = subprocess.run([sys.executable, "-m", "rag", "ask", "--json", META_2025], capture_output=True,
                         text=True, env=env, cwd=PROJECT_ROOT, timeout=900)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert not out["refused"] and out["tokens"] > 3, out  # the reply came in several pieces
    cited = [c["passage_text"] for c in out["citations"]]
    assert EVIDENCE_DOC in {c["doc_id"] for c in out["citations"]}, out
    # grounded: every number of the answer is in a passage it cites, the asked-for figure among them
    numbers = re.findall(r"\d+(?:[.,]\d+)?", re.sub(r"\[\d+\]", "", out["answer"]))
    assert "65" in numbers and all(any(n in text for text in cited) for n in numbers), out


def test_first_token_probabilities_come_through_the_server(server: str):
    """llama-cpp-python's server gives log-probabilities (its models keep every token's
    logits by default), so the checks read P(oui) rather than the text; they agree with the
    same model run in this process."""
    settings = Settings()
    remote = OpenAILLM(server, settings.llm).first_token_probs(CHECK, ["oui", "non"])
    assert remote is not None and remote["oui"] > 0.5 > remote["non"], remote
    here = LlamaCppLLM.from_settings(settings).first_token_probs(CHECK, ["oui", "non"])
    assert remote == pytest.approx(here, abs=0.05)
    pieces = list(OpenAILLM(server, settings.llm).stream(CHECK, 8, 0.0))
    assert pieces and "".join(pieces).strip().lower().startswith("oui")
