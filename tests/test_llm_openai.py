"""The OpenAI-compatible backend against a fake server (tests/fake_openai.py): streaming,
first-token probabilities, every failure as one French line, and the pipeline, `rag ask`,
`rag batch` (several workers) and the chat running through it."""

from __future__ import annotations

import json
import os

import pytest
from pydantic import SecretStr

from fake_openai import FakeOpenAIServer
from fakes import FakeLLM
from rag.batch import Question, read_records, run_batch
from rag.chat import Chat, Options
from rag.errors import RagError
from rag.index import build_index
from rag.llms import get_llm
from rag.llms.openai import OpenAILLM
from rag.pipeline import Pipeline
from rag.settings import load_settings
from serving import free_port

META = "Combien Meta prévoit-elle de dépenser en IA en 2025 ?"
ROSEN = "Qui est Guy Rosen ?"
LEAKS = "Que dit Zuckerberg des fuites ?"
TRUMP = "Combien Meta a-t-elle donné au fonds d'investiture de Donald Trump ?"
VERIFY = [{"role": "user", "content": "Réponds par oui ou par non : le ciel est-il bleu ?"}]
KEY = "sk-secret-0123456789"


@pytest.fixture
def server():
    with FakeOpenAIServer() as running:
        yield running


def client(server, **kw) -> OpenAILLM:
    return OpenAILLM(server.url, kw.pop("model", "fake"), **kw)


def served(settings, server, **changes):
    """The test settings with the model on `server`."""
    return settings.model_copy(update={"llm_backend": "openai", "openai_base_url": server.url, **changes})


@pytest.fixture
def index(settings):
    return build_index(settings, log=lambda *_: None)


# ------------------------------------------------------------------ the backend


def test_stream_yields_the_pieces_of_the_server_sent_events(server):
    llm = client(server, api_key=KEY)
    pieces = list(llm.stream([{"role": "user", "content": "Extraits :\n[1] « Meta dépense. Et plus. »\n"
                                                        "Question : Que dépense Meta ?"}], 64, 0.0))
    assert pieces == ["Meta ", "dépense. ", "[1]"]
    body, headers = server.requests[-1]["body"], server.requests[-1]["headers"]
    assert body["model"] == "fake" and body["stream"] is True
    assert (body["max_tokens"], body["temperature"]) == (64, 0.0)
    assert headers["Authorization"] == f"Bearer {KEY}"


def test_first_token_probs_come_from_the_servers_top_logprobs(server):
    probs = client(server).first_token_probs(VERIFY, ["oui", "non"])
    assert probs == pytest.approx({"oui": 0.9, "non": 0.02})
    assert probs == pytest.approx(FakeLLM().first_token_probs(VERIFY, ["oui", "non"]))
    body = server.requests[-1]["body"]
    assert (body["max_tokens"], body["logprobs"], body["top_logprobs"]) == (1, True, 20)


@pytest.mark.parametrize("logprobs", ["none", "refuse"])
def test_a_server_without_logprobs_gives_none_and_is_not_asked_again(server, logprobs):
    server.behave(logprobs=logprobs)
    llm = client(server)
    assert llm.first_token_probs(VERIFY, ["oui", "non"]) is None
    assert llm.first_token_probs(VERIFY, ["oui", "non"]) is None
    assert len(server.requests) == 1


def test_the_backend_is_chosen_by_settings_and_names_the_model(settings, server, monkeypatch):
    monkeypatch.setenv("RAG_OPENAI_API_KEY", KEY)
    loaded = load_settings(env=os.environ, llm_backend="openai", openai_base_url=server.url + "/")
    llm = get_llm(loaded)
    assert isinstance(llm, OpenAILLM) and llm.name == loaded.llm and llm.url == server.url
    assert KEY not in repr(loaded) and KEY not in str(loaded.model_dump())
    named = get_llm(loaded.model_copy(update={"openai_model": "qwen2.5:1.5b"}))
    assert named.name == "qwen2.5:1.5b" and named is not llm


def test_several_workers_need_a_model_server():
    with pytest.raises(RagError, match="workers.*une question à la fois.*llm_backend = \"openai\""):
        load_settings(workers=2)
    assert load_settings(workers=4, llm_backend="openai").workers == 4
    with pytest.raises(RagError, match="openai_timeout"):
        load_settings(openai_timeout=0)


# ------------------------------------------------------------------ failures, one French line each


def _failure(llm, call: str = "stream") -> str:
    with pytest.raises(RagError) as caught:
        if call == "stream":
            list(llm.stream([{"role": "user", "content": "Bonjour"}], 16, 0.0))
        else:
            llm.first_token_probs(VERIFY, ["oui", "non"])
    message = str(caught.value)
    assert "\n" not in message and KEY not in message
    return message


@pytest.mark.parametrize("call", ["stream", "probs"])
def test_an_unreachable_server_names_its_address_and_says_to_start_it(call):
    url = f"http://127.0.0.1:{free_port()}/v1"
    message = _failure(OpenAILLM(url, "fake", KEY), call)
    assert message.startswith(f"Serveur de modèles injoignable à {url} : lancez-le")


def test_a_silent_server_is_a_timeout(server):
    server.behave(delay=1.0)
    assert "n'a pas répondu en 0.2 s (réglage openai_timeout)" in _failure(client(server, timeout=0.2))


@pytest.mark.parametrize("sent", [None, "sk-wrong-key"])
def test_a_refused_key_is_about_the_api_key(sent):
    with FakeOpenAIServer(api_key=KEY) as server:
        message = _failure(client(server, api_key=sent))
    assert "refuse l'accès (HTTP 401) : vérifiez la clé d'API (RAG_OPENAI_API_KEY)" in message
    assert "sk-wrong-key" not in message


def test_an_unknown_model_lists_the_models_the_server_offers():
    with FakeOpenAIServer(models=("qwen2.5:1.5b", "llama3.2:3b")) as server:
        for call in ("stream", "probs"):
            message = _failure(client(server, model="qwen2.5-coder"), call)
            assert message == (f"Modèle « qwen2.5-coder » inconnu du serveur {server.url} (il propose : "
                               "qwen2.5:1.5b, llama3.2:3b) : réglez openai_model.")


def test_a_base_url_without_the_api_path_says_so(server):
    llm = OpenAILLM(server.url.removesuffix("/v1"), "fake")
    assert "openai_base_url doit mener à l'API compatible OpenAI, souvent en /v1" in _failure(llm)


def test_a_server_error_is_shortened_with_its_status(server):
    server.behave(status=500, message=f"CUDA out of memory {KEY} " + "détail " * 100)
    message = _failure(client(server, api_key=KEY))
    assert message.startswith(f"Le serveur de modèles {server.url} a répondu HTTP 500 : CUDA out of memory ***")
    assert len(message) < 300 and message.endswith("…")


@pytest.mark.parametrize("cut", [{"drop_after": 1}, {"interrupt_after": 1}])
def test_a_stream_cut_in_the_middle_is_an_error_not_a_short_answer(server, cut):
    server.behave(**cut)
    pieces = []
    with pytest.raises(RagError, match="s'est arrêtée au milieu.*--interrupt_requests false"):
        for piece in client(server).stream([{"role": "user", "content": "[1] « Une phrase assez longue ici. »\n"
                                                                        "Question : Quelle phrase ?"}],
                                           64, 0.0):
            pieces.append(piece)
    assert pieces == ["Une "]


# ------------------------------------------------------------------ the app through the server


def test_the_pipeline_through_a_server_answers_as_in_process(settings, index, server):
    here = Pipeline(settings, index=index).ask(META)
    there = Pipeline(served(settings, server).model_copy(update={"max_p_refuse": 0.5}), index=index).ask(META)
    assert there.text == here.text and not there.refused and there.citations == here.citations
    verified = next(v for v in there.checks["verdicts"] if v["check"] == "verified")
    assert verified["detail"] == round(0.9 / 0.92, 4)  # P(oui) from the server's logprobs
    assert there.checks["p_refuse"] == pytest.approx(0.02)


def test_without_logprobs_the_checks_read_the_text(settings, index, server):
    server.behave(logprobs="none")
    answer = Pipeline(served(settings, server), index=index).ask(META)
    verified = next(v for v in answer.checks["verdicts"] if v["check"] == "verified")
    assert not answer.refused and verified == {"check": "verified", "passed": True, "detail": "oui"}
    assert answer.checks["p_refuse"] is None


def test_cli_ask_json_through_the_server(run, server, monkeypatch):
    monkeypatch.setenv("RAG_LLM_BACKEND", "openai")
    monkeypatch.setenv("RAG_OPENAI_BASE_URL", server.url)
    server.behave(piece_delay=0.02)
    result = run("ask", "--json", META)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert not out["refused"] and out["citations"] and out["tokens"] > 3
    server.behave(status=503, message="loading model")
    result = run("ask", META)
    assert result.exit_code == 1
    assert result.stderr.strip() == f"Erreur : Le serveur de modèles {server.url} a répondu HTTP 503 : loading model"


def test_cli_batch_workers_need_a_server(run, server, monkeypatch, tmp_path):
    questions = tmp_path / "q.txt"
    questions.write_text(f"{META}\n{ROSEN}\n{LEAKS}\n", "utf-8")
    monkeypatch.setenv("RAG_LLM_BACKEND", "llamacpp")
    refused = run("batch", str(questions), "-o", str(tmp_path / "a.jsonl"), "--workers", "2")
    assert refused.exit_code == 1 and "Réglage invalide « workers »" in refused.stderr
    monkeypatch.setenv("RAG_OPENAI_BASE_URL", server.url)
    server.behave(piece_delay=0.02)
    result = run("--llm-backend", "openai", "--workers", "3", "batch", str(questions), "-o", str(tmp_path / "a.jsonl"))
    assert result.exit_code == 0, result.output
    assert "3 réponses, 0 en échec" in result.stdout and server.most_at_once >= 2


def _batch(settings, index, questions, output):
    pipeline = Pipeline(settings, index=index)
    items = [Question(str(i), q, i) for i, q in enumerate(questions, 1)]
    return run_batch(items, output, settings, lambda: pipeline)


def test_batch_workers_answer_at_once_and_write_whole_records(settings, index, server, tmp_path):
    server.behave(piece_delay=0.02)  # long enough for the answers to overlap
    questions = [META, ROSEN, LEAKS, TRUMP] * 2
    output = tmp_path / "answers.jsonl"
    result = _batch(served(settings, server, workers=3, openai_api_key=SecretStr(KEY)), index, questions, output)
    assert (result.answered, result.failed) == (8, 0)
    assert server.most_at_once == 3
    lines = output.read_text("utf-8").splitlines()
    records = [json.loads(line) for line in lines]  # every line one whole record
    assert sorted(int(r["id"]) for r in records) == list(range(1, 9))
    assert all(r["question"] == questions[int(r["id"]) - 1] and r["error"] is None for r in records)
    assert records[0]["settings"]["openai_model"] == "fake" and KEY not in output.read_text("utf-8")
    server.behave(piece_delay=0.0)
    one = tmp_path / "one.jsonl"
    _batch(served(settings, server), index, questions, one)
    assert {r["id"]: r["answer"] for r in read_records(one)} == {r["id"]: r["answer"] for r in records}


def test_batch_records_server_failures_per_question_and_resumes(settings, index, server, tmp_path):
    s = served(settings, server, workers=2)
    output = tmp_path / "answers.jsonl"
    server.behave(status=500, message="boom", fail_on="Guy Rosen")
    result = _batch(s, index, [META, ROSEN, LEAKS], output)
    assert (result.answered, result.failed) == (2, 1)
    failed = next(r for r in read_records(output) if r["id"] == "2")
    assert failed["error"] == f"Le serveur de modèles {server.url} a répondu HTTP 500 : boom"
    server.behave(status=None)
    result = _batch(s, index, [META, ROSEN, LEAKS], output)
    assert (result.answered, result.failed, result.skipped) == (1, 0, 2)
    assert sorted(r["id"] for r in read_records(output)) == ["1", "2", "3"]


def test_the_chat_shows_a_server_down_then_answers_when_it_is_up(settings, index):
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    chat = Chat(Pipeline(settings.model_copy(update={"llm_backend": "openai", "openai_base_url": url}),
                         index=index))
    options = Options.of(chat.base.settings)
    down = list(chat.respond([], META, options))
    assert down[-1][0] == "error" and down[-1][1].startswith(f"Serveur de modèles injoignable à {url}")
    with FakeOpenAIServer(port=port):
        events = list(chat.respond([], META, options))
    assert events[-1][0] == "answer" and not events[-1][1].refused
    assert sum(kind == "piece" for kind, _ in events) > 3


def test_the_chat_queue_takes_as_many_answers_as_workers(settings, index, server):
    from rag.app import build_app

    app = build_app(settings, Pipeline(served(settings, server, workers=3), index=index))
    fns = {f.name: f for f in app.fns.values()}
    assert fns["respond"].concurrency_limit == fns["ask"].concurrency_limit == 3
    assert app._queue.default_concurrency_limit == 3

