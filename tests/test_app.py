"""The chat page with fake models, driven through its handlers without a server."""

from __future__ import annotations

import html
import logging

import pytest
from click.testing import CliRunner
from pydantic import SecretStr

from rag import chat_html
from rag.app import build_app, serve
from rag.chat import UNEXPECTED, local_llms
from rag.cli import main
from fakes import FakeLLM, Scripted
from rag.index import build_index
from rag.pipeline import REFUSAL, Pipeline
from serving import PLANTED_QUESTION, SlowLLM, plant

META = "Combien Meta prévoit-elle de dépenser en IA en 2025 ?"
FOLLOW_UP = "Et combien en 2024 ?"


class FailsOnce(FakeLLM):
    """A model that crashes on its first answer (a bug somewhere), then works."""

    failed = False

    def stream(self, messages, max_tokens, temperature):
        if not self.failed:
            self.failed = True
            raise RuntimeError("boom: détail interne")
        yield from super().stream(messages, max_tokens, temperature)


@pytest.fixture
def planted(settings):
    plant(settings.seeds_dir)
    return settings


@pytest.fixture
def index(planted):
    return build_index(planted, log=lambda *_: None)


def make_app(settings, index, llm=None):
    return build_app(settings, Pipeline(settings, index=index, llm=llm))


@pytest.fixture
def app(planted, index):
    return make_app(planted, index)


def handler(app, name: str):
    """The function wired to one of the page's events."""
    return next(f.fn for f in app.fns.values() if f.name == name)


def ask(app, question: str, turns=(), k=3, temperature=0.0, max_tokens=256, llm="fake") -> list[tuple]:
    """The question put in the conversation, then every update of the answer handler:
    (chat, sources, rewrite, turns)."""
    box, chat, turns = handler(app, "add_turn")(question, list(turns))
    assert box == "" and chat[-1]["content"] == f"<em>{chat_html.WAITING}</em>"
    return list(handler(app, "respond")(turns, k, temperature, max_tokens, llm))


def final(updates) -> tuple[str, str, str, list]:
    chat, sources, rewritten, turns = updates[-1]
    return chat[-1]["content"], sources, rewritten, turns


def test_build_app_does_not_launch_and_runs_one_generation_at_a_time(app):
    import gradio as gr

    assert isinstance(app, gr.Blocks) and not app.is_running
    fns = {f.name: f for f in app.fns.values()}
    assert fns["ask"].api_name == "ask" and fns["add_turn"].queue is False
    assert fns["respond"].concurrency_limit == fns["ask"].concurrency_limit == 1
    assert fns["respond"].concurrency_id == fns["ask"].concurrency_id  # page and API share the model
    assert app._queue.default_concurrency_limit == 1


def test_answer_streams_then_shows_cited_cards(app, planted, index):
    expected = Pipeline(planted, index=index).ask(META)
    updates = ask(app, META)
    texts = [u[0][-1]["content"] for u in updates]
    assert chat_html.SEARCHING in texts[0]  # the question is being answered
    assert len({t for t in texts}) > 5  # the answer grew piece by piece
    answer, sources, _, turns = final(updates)
    assert turns[-1].answer.text == expected.text and not expected.refused
    c = expected.citations[0]
    assert f'<a class="rag-cite" href="#rag-src-1-{c.number}"' in answer
    assert f'id="rag-src-1-{c.number}"' in sources and index.article(c.passage.doc_id).path in sources
    assert chat_html.passage_html(c) in sources and "<mark>" in sources


def test_markup_in_the_corpus_and_the_question_is_shown_as_text(app):
    answer, sources, _, _ = final(ask(app, PLANTED_QUESTION))
    assert "zorglub" in answer and "900_zorglub.txt" in sources
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in sources
    assert "&lt;b&gt;gras&lt;/b&gt;" in sources  # the title
    for page_part in (answer, sources):
        assert "<script" not in page_part and "<b>" not in page_part and "<img" not in page_part
    chat = ask(app, "<b>Que</b> mange le zorglub ?")[-1][0]
    assert chat[0]["content"] == "&lt;b&gt;Que&lt;/b&gt; mange le zorglub ?"


def test_a_refusal_is_said_plainly(planted, index):
    app = make_app(planted, index, Scripted("Preuve : aucune\nRéponse : " + REFUSAL))
    answer, sources, _, turns = final(ask(app, "Qui a fondé TikTok ?"))
    assert answer == REFUSAL and turns[-1].answer.refused
    assert chat_html.NO_SOURCE in sources


def test_an_error_is_one_french_sentence_and_the_app_keeps_serving(planted, index, caplog):
    app = make_app(planted, index, FailsOnce())
    with caplog.at_level(logging.ERROR, logger="rag.chat"):
        answer, sources, _, turns = final(ask(app, META))
    assert answer == f'<span class="rag-error">⚠ {html.escape(UNEXPECTED)}</span>'
    assert "boom" not in answer and "Traceback" not in answer and turns[-1].status == "error"
    assert "boom" in caplog.text  # the detail is in the server log
    answer, sources, _, turns = final(ask(app, META, turns))
    assert turns[-1].status == "done" and not turns[-1].answer.refused and 'id="rag-src-2-' in sources


@pytest.mark.parametrize("question, message", [
    ("", "La question est vide."),
    ("?? !!", "aucun mot"),
    ("mot " * 200, "trop longue"),
])
def test_a_bad_question_gets_a_french_message(app, question, message):
    answer = final(ask(app, question))[0]
    assert answer.startswith('<span class="rag-error">') and message in answer


def test_stop_interrupts_the_answer_and_frees_the_model(planted, index):
    slow = SlowLLM(delay=0)
    app = make_app(planted, index, slow)
    _, _, turns = handler(app, "add_turn")(META, [])
    updates = handler(app, "respond")(turns, 3, 0.0, 256, "fake")
    for chat, _, _, turns in updates:
        if turns[-1].text:  # the first pieces are on screen
            break
    assert slow.lock.locked()
    chat, turns = handler(app, "stop_turn")(turns)
    assert chat[-1]["content"].endswith(f"<em>({chat_html.STOPPED})</em>")
    last, *more = list(updates)  # the handler sends the stopped state itself, then ends
    assert last[0] == chat and not more
    assert not slow.lock.locked() and turns[-1].answer is None and turns[-1].status == "stopped"


def test_a_question_stopped_while_waiting_is_never_answered(app):
    _, _, turns = handler(app, "add_turn")(META, [])
    handler(app, "stop_turn")(turns)
    (chat, _, _, turns), = handler(app, "respond")(turns, 3, 0.0, 256, "fake")
    assert turns[-1].status == "stopped" and turns[-1].answer is None
    assert chat[-1]["content"] == f"<em>({chat_html.STOPPED})</em>"


def test_clear_during_an_answer_empties_everything_and_frees_the_model(planted, index):
    slow = SlowLLM(delay=0)
    app = make_app(planted, index, slow)
    old = final(ask(app, META))[3]
    _, _, turns = handler(app, "add_turn")(FOLLOW_UP, old)
    updates = handler(app, "respond")(turns, 3, 0.0, 256, "fake")
    while not next(updates)[3][-1].text:
        pass
    assert handler(app, "clear_chat")(turns) == ([], chat_html.EMPTY_SOURCES, "", [])
    last, *more = list(updates)
    assert last[:3] == ([], chat_html.EMPTY_SOURCES, "") and not more
    assert not slow.lock.locked()


def test_two_quick_questions_are_answered_in_order(app):
    add, respond = handler(app, "add_turn"), handler(app, "respond")
    _, _, turns = add(META, [])
    _, _, turns = add(FOLLOW_UP, turns)  # sent before the first answer started
    *_, (chat, _, _, turns) = respond(turns, 3, 0.0, 256, "fake")
    assert [t.status for t in turns] == ["done", "queued"]
    *_, (chat, _, _, turns) = respond(turns, 3, 0.0, 256, "fake")
    assert [t.status for t in turns] == ["done", "done"]
    assert turns[1].standalone.endswith(FOLLOW_UP) and turns[1].standalone != FOLLOW_UP  # in context


def test_closing_the_handler_frees_the_model(planted, index):
    slow = SlowLLM(delay=0)
    app = make_app(planted, index, slow)
    _, _, turns = handler(app, "add_turn")(META, [])
    updates = handler(app, "respond")(turns, 3, 0.0, 256, "fake")
    while not next(updates)[3][-1].text:
        pass
    updates.close()  # what Gradio does when the page goes away mid-answer
    assert not slow.lock.locked()


def test_a_follow_up_is_rewritten_and_the_rewrite_shown(app):
    turns = final(ask(app, META))[3]
    answer, sources, rewritten, turns = final(ask(app, FOLLOW_UP, turns))
    assert rewritten.endswith(FOLLOW_UP) and rewritten.startswith("Meta") and turns[-1].standalone == rewritten
    assert f"Recherche : « {rewritten} »" in sources
    # both turns keep their cards, the newest first
    assert sources.index('id="rag-src-2-') < sources.index('id="rag-src-1-')


def test_settings_apply_to_the_next_question(app):
    assert len(final(ask(app, META, k=1))[3][-1].answer.passages) == 1
    assert 1 < len(final(ask(app, META, k=5))[3][-1].answer.passages) <= 5  # overlapping ones merge
    assert "Modèle inconnu" in final(ask(app, META, llm="inexistant"))[0]


def test_model_choice_lists_the_configured_model_first(planted):
    assert local_llms(planted)[0] == "fake"
    assert local_llms(planted.model_copy(update={"llm": "qwen2.5-coder-1.5b-instruct"}))[0] == "qwen2.5-coder-1.5b-instruct"


def test_index_status_names_counts_and_models(index):
    status = chat_html.index_status(index, "fake")
    assert f"{len(index.articles)} articles" in status and f"{len(index.passages)} passages" in status
    assert "`fake` (64 dimensions)" in status and "construit le" in status


def test_serve_binds_this_machine_and_asks_a_login_when_configured(planted, index, monkeypatch):
    import gradio as gr

    launched = {}
    monkeypatch.setattr(gr.Blocks, "launch", lambda self, **kw: launched.update(kw))
    pipeline = Pipeline(planted, index=index, llm=FakeLLM())
    serve(planted, pipeline=pipeline, log=lambda *_: None)
    assert launched["server_name"] == "127.0.0.1" and launched["server_port"] == 7860 and launched["auth"] is None
    secured = planted.model_copy(update={"auth": SecretStr("ana:s3cret"), "host": "0.0.0.0", "port": 8080})
    serve(secured, pipeline=pipeline, log=lambda *_: None)
    assert launched["server_name"] == "0.0.0.0" and launched["server_port"] == 8080
    assert launched["auth"] == ("ana", "s3cret")


@pytest.fixture
def cli(settings, monkeypatch):
    for key, value in {"SEEDS_DIR": settings.seeds_dir, "INDEX_DIR": settings.index_dir,
                       "MODELS_DIR": settings.models_dir, "LLM": "fake", "LLM_BACKEND": "fakes:FakeLLM",
                       "EMBEDDER": "fake", "EMBEDDER_BACKEND": "fakes:fake_embedder"}.items():
        monkeypatch.setenv(f"RAG_{key}", str(value))
    served = {}
    monkeypatch.setattr("rag.app.serve", lambda settings, pipeline, log, insecure: served.update(
        settings=settings, insecure=insecure))
    return lambda *args: (CliRunner().invoke(main, list(args)), served)


def test_cli_serve_builds_the_missing_index_then_serves(cli, monkeypatch):
    monkeypatch.setenv("RAG_AUTH", "ana:s3cret")
    result, served = cli("serve", "--port", "7999")
    assert result.exit_code == 0, result.output
    assert "Index construit" in result.stderr and "Index prêt : 5 articles" in result.stderr
    settings = served["settings"]
    assert (settings.host, settings.port, settings.login()) == ("127.0.0.1", 7999, ("ana", "s3cret"))


def test_cli_serve_refuses_a_network_address_without_a_login(cli, settings):
    result, served = cli("serve", "--host", "0.0.0.0")
    assert result.exit_code == 1 and not served, result.output
    assert "sans identifiant" in result.stderr and "RAG_AUTH=utilisateur:motdepasse" in result.stderr
    assert "--insecure" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not settings.index_dir.exists()  # refused before any work
    result, served = cli("serve", "--host", "0.0.0.0", "--insecure")
    assert result.exit_code == 0 and served["settings"].host == "0.0.0.0" and served["insecure"] is True


def test_serve_refuses_a_network_address_without_a_login_before_launching(planted, index, monkeypatch):
    import gradio as gr

    from rag.errors import RagError

    launched, messages = [], []
    monkeypatch.setattr(gr.Blocks, "launch", lambda self, **kw: launched.append(kw))
    pipeline = Pipeline(planted, index=index, llm=FakeLLM())
    exposed = planted.model_copy(update={"host": "0.0.0.0"})
    with pytest.raises(RagError, match="--insecure"):
        serve(exposed, pipeline=pipeline, log=messages.append)
    assert not launched
    serve(exposed, pipeline=pipeline, log=messages.append, insecure=True)
    assert launched[-1]["server_name"] == "0.0.0.0" and launched[-1]["auth"] is None
    assert any("sans identifiant (--insecure)" in m for m in messages)


def test_cli_serve_bad_port_is_one_french_line(cli):
    result, served = cli("serve", "--port", "0")
    assert result.exit_code == 1 and "port" in result.stderr and not served
