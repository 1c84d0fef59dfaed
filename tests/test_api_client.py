"""The running chat called with the official `gradio_client`, as an integration partner would."""

from __future__ import annotations

import os
from pathlib import Path
from concurrent.futures import ThreadPoolExecutor

import pytest

from fakes import FakeLLM
from rag.index import build_index
from rag.pipeline import Pipeline
from serving import free_port, launch, serve_fake

META = "Combien Meta prévoit-elle de dépenser en IA en 2025 ?"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    app, url, pipeline, slow = serve_fake(tmp_path_factory.mktemp("api"), delay=0.01)
    yield url, pipeline, slow
    app.close()


def client(url, **kwargs):
    from gradio_client import Client

    return Client(url, verbose=False, **kwargs)


def expected(pipeline: Pipeline, question: str):
    return Pipeline(pipeline.settings, index=pipeline.index, llm=FakeLLM()).ask(question)


def test_ask_endpoint_answers_with_its_citations(served):
    url, pipeline, _ = served
    api = client(url).view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert [p["parameter_name"] for p in api["/ask"]["parameters"]][:2] == ["question", "history"]
    out = client(url).predict(META, api_name="/ask")
    want = expected(pipeline, META)
    assert out["answer"] == want.text and out["refused"] is False and out["error"] is None
    (cited,) = out["citations"]
    c = want.citations[0]
    assert cited["file"] == pipeline.index.article(c.passage.doc_id).path == "002_dbf84de5b56e379c.txt"
    assert cited["passage"] == c.passage.text and cited["quote"] == c.quote and cited["quote"] in cited["passage"]
    assert "65 milliards de dollars" in cited["passage"]


def test_a_follow_up_uses_the_history(served):
    url, _, _ = served
    first = client(url).predict(META, api_name="/ask")
    out = client(url).predict("Et combien en 2024 ?", [[META, first["answer"]]], api_name="/ask")
    assert out["standalone_question"].startswith("Meta") and out["standalone_question"].endswith("en 2024 ?")
    assert out["question"] == "Et combien en 2024 ?"


def test_a_bad_question_is_a_french_error(served):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="La question est vide"):
        client(url=served[0]).predict("   ", api_name="/ask")


@pytest.mark.parametrize("options, message", [
    ({"k": -1}, "Réglage invalide « k » : doit être un entier positif"),
    ({"max_tokens": 0}, "Réglage invalide « max_tokens » : doit être un entier positif"),
    ({"max_tokens": 100_000}, "Réglage invalide « max_tokens » : au plus"),
    ({"temperature": 7.5}, "Réglage invalide « temperature » : doit être entre 0 et 2"),
    ({"history": [["Qui ? " * 200, "Personne."]]}, "Une question de l'historique est trop longue"),
    ({"history": [["une question seule"]]}, "une liste de paires [question, réponse]"),
])
def test_options_and_history_out_of_bounds_are_french_errors(served, options, message):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as error:
        client(served[0]).predict(question=META, api_name="/ask", **options)
    assert message in str(error.value)


def test_a_long_history_keeps_its_last_turns(served):
    url, _, _ = served
    history = [[f"Question ancienne numéro {i} ?", "Une réponse."] for i in range(500)] + [[META, "65 milliards."]]
    out = client(url).predict("Et combien en 2024 ?", history, api_name="/ask")
    assert out["standalone_question"].startswith("Meta") and out["error"] is None


def test_simultaneous_clients_wait_their_turn_and_get_their_own_answer(served):
    url, pipeline, slow = served
    questions = [META, "Qui est le responsable de la sécurité des informations de Meta ?",
                 "Combien Elon Musk a-t-il payé pour acheter Twitter ?"]
    with ThreadPoolExecutor(len(questions)) as pool:
        outs = list(pool.map(lambda q: client(url).predict(q, api_name="/ask"), questions))
    for question, out in zip(questions, outs):
        assert out["question"] == question and out["answer"] == expected(pipeline, question).text
    assert slow.most_at_once == 1


def test_a_login_is_asked_when_configured(settings):
    pipeline = Pipeline(settings, index=build_index(settings, log=lambda *_: None))
    app, url = launch(settings, pipeline, auth=("ana", "s3cret"))
    try:
        with pytest.raises(ValueError, match="credentials were not provided"):
            client(url).predict(META, api_name="/ask")
        with pytest.raises(ValueError, match="Could not login"):
            client(url, auth=("ana", "faux")).predict(META, api_name="/ask")
        out = client(url, auth=("ana", "s3cret")).predict(META, api_name="/ask")
        assert out["citations"] and not out["refused"]
    finally:
        app.close()


def test_rag_serve_command_serves_the_chat(settings):
    """`rag serve` as a user runs it: builds the missing index, then serves until stopped."""
    import subprocess
    import sys
    import time
    import urllib.request

    port = free_port()
    tests = str(Path(__file__).parent)  # where the fake model the server loads lives
    env = {**os.environ, "RAG_LLM": "fake", "RAG_LLM_BACKEND": "fakes:FakeLLM", "RAG_EMBEDDER": "fake",
           "RAG_EMBEDDER_BACKEND": "fakes:fake_embedder", "RAG_RETRIEVAL": "hybrid",
           "RAG_SEEDS_DIR": str(settings.seeds_dir), "RAG_INDEX_DIR": str(settings.index_dir),
           "RAG_MODELS_DIR": str(settings.models_dir), "PYTHONPATH": tests}
    server = subprocess.Popen([sys.executable, "-m", "rag", "serve", "--port", str(port)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read().decode()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, server.stdout.read()
                time.sleep(0.5)
        assert "gradio" in page.lower()
        out = client(f"http://127.0.0.1:{port}/").predict(META, api_name="/ask")
        assert out["citations"][0]["file"] == "002_dbf84de5b56e379c.txt"
    finally:
        server.terminate()
        log, _ = server.communicate(timeout=30)
    assert "Index construit" in log and f"http://127.0.0.1:{port}" in log
