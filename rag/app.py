"""The chat page (Gradio): French, streamed answers, citation cards, follow-up questions.

`build_app()` returns the Blocks without launching them, so tests can drive the
handlers or launch on a free port; `serve()` is what `rag serve` runs. Gradio's queue,
shared by the page and the `ask` API, runs `settings.workers` generations at once: one
with the model in this process (it answers one question at a time), more with a model
server; other tabs and clients wait their turn. The logic of a turn is rag/chat.py and
its HTML rag/chat_html.py; this module only lays out the page and wires the events. The
API's options and history are checked by the settings' rules (rag/chat.py), no error it
shows names a server file, and `serve()` refuses a network address without a login
unless told `insecure`.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from contextlib import closing
from pathlib import Path
from types import SimpleNamespace

from rag import chat_html
from rag.chat import Chat, Options, Turn, history, local_llms, turn_record, update
from rag.errors import RagError, without_paths
from rag.pipeline import Pipeline
from rag.settings import Settings

_log = logging.getLogger(__name__)
TITLE = "Questions sur le corpus"
EXAMPLES = [
    "Combien Meta prévoit-elle de dépenser en IA en 2025 ?",
    "Qui est le responsable de la sécurité des informations de Meta ?",
    "Quelles données Meta veut-elle utiliser pour entraîner ses modèles d'IA en Europe ?",
    "Combien Elon Musk a-t-il payé pour acheter Twitter ?",
    "Qui a fondé TikTok ?",
]
INTRO = (f"# {TITLE}\n"
         "Posez une question en français sur les articles du corpus. La réponse cite ses sources "
         "[1], [2] : cliquez sur un numéro ou une carte pour lire le passage, la phrase qui appuie "
         "la réponse est surlignée. Si les articles ne contiennent pas la réponse, l'application le dit.")
GENERATION = "generation"  # concurrency group: `settings.workers` answers at a time


def build_app(settings: Settings, pipeline: Pipeline | None = None):
    """The chat as a gr.Blocks, queued, not launched."""
    import gradio as gr

    chat = Chat(pipeline or Pipeline(settings))
    models = local_llms(chat.base.settings)
    with gr.Blocks(title=TITLE, analytics_enabled=False) as app:
        gr.Markdown(INTRO)
        ui = SimpleNamespace(turns=gr.State([]), status=gr.Markdown(
            chat_html.index_status(chat.index, models[0]), elem_id="rag-status"))
        with gr.Row():
            with gr.Column(scale=3):
                _conversation(ui)
            with gr.Column(scale=2):
                _side_panel(ui, chat.base.settings, models)
                _upload_panel(ui, chat.base.settings)
        _wire(ui, chat)
        _wire_upload(ui, chat)
    app.queue(default_concurrency_limit=chat.base.settings.workers)
    return app


def _conversation(ui: SimpleNamespace) -> None:
    import gradio as gr

    ui.chatbot = gr.Chatbot(label="Conversation", elem_id="rag-chat", height=520, render_markdown=False,
                            buttons=["copy", "copy_all"], feedback_options=None,
                            placeholder="Les réponses, avec leurs citations, s'afficheront ici.")
    ui.question = gr.Textbox(label="Votre question", elem_id="rag-question", lines=1,
                             placeholder=f"Par exemple : {EXAMPLES[0]}")
    with gr.Row():
        ui.send = gr.Button("Envoyer", variant="primary", elem_id="rag-send")
        ui.stop = gr.Button("Arrêter", variant="stop", elem_id="rag-stop")
        ui.clear = gr.Button("Effacer la conversation", elem_id="rag-clear")
    gr.Examples([[q] for q in EXAMPLES], inputs=[ui.question], label="Exemples de questions")


def _side_panel(ui: SimpleNamespace, s: Settings, models: list[str]) -> None:
    import gradio as gr

    gr.Markdown("### Sources")
    ui.sources = gr.HTML(chat_html.EMPTY_SOURCES, elem_id="rag-sources", head=chat_html.HEAD)
    with gr.Accordion("Question reformulée pour la recherche", open=False):
        ui.rewritten = gr.Textbox(show_label=False, interactive=False, elem_id="rag-rewritten",
                                  placeholder="La question telle qu'elle est cherchée dans le corpus.")
    with gr.Accordion("Réglages", open=False):
        ui.k = gr.Slider(1, 8, value=s.k, step=1, label="Passages donnés au modèle")
        ui.temperature = gr.Slider(0.0, 1.5, value=s.temperature, step=0.1, label="Température")
        ui.max_tokens = gr.Slider(32, 1024, value=s.max_tokens, step=32,
                                  label="Longueur maximale de la réponse (jetons)")
        ui.llm = gr.Dropdown(models, value=models[0], label="Modèle de langue (disponibles sur cette machine)")


def _wire(ui: SimpleNamespace, chat: Chat) -> None:
    import gradio as gr

    private = {"api_visibility": "private"}
    # Two steps: the question shows at once (and can be stopped while it waits its
    # turn), then the answer streams from the queue, `workers` generations at a time.
    gr.on([ui.question.submit, ui.send.click], add_turn, inputs=[ui.question, ui.turns],
          outputs=[ui.question, ui.chatbot, ui.turns], queue=False, **private,
          ).then(_responder(chat), inputs=[ui.turns, ui.k, ui.temperature, ui.max_tokens, ui.llm],
                 outputs=[ui.chatbot, ui.sources, ui.rewritten, ui.turns], show_progress="minimal",
                 concurrency_limit=chat.base.settings.workers, concurrency_id=GENERATION, **private)
    ui.stop.click(stop_turn, inputs=[ui.turns], outputs=[ui.chatbot, ui.turns], queue=False, **private)
    for cleared in (ui.clear.click, ui.chatbot.clear):  # the button, and the chat's own bin icon
        cleared(clear_chat, inputs=[ui.turns], outputs=[ui.chatbot, ui.sources, ui.rewritten, ui.turns],
                queue=False, **private)
    ui.llm.change(lambda name: chat_html.index_status(chat.index, name), inputs=[ui.llm],
                  outputs=[ui.status], queue=False, **private)
    gr.api(_api(chat), api_name="ask", concurrency_limit=chat.base.settings.workers, concurrency_id=GENERATION)


def _upload_panel(ui: SimpleNamespace, s: Settings) -> None:
    import gradio as gr

    from rag.formats import SUFFIXES

    with gr.Accordion("Ajouter des documents", open=False):
        ui.upload = gr.File(label=f"Articles ({', '.join(SUFFIXES)} ; {s.max_file_mb:g} Mo au plus chacun)",
                            file_count="multiple", file_types=list(SUFFIXES), type="filepath",
                            elem_id="rag-upload")
        ui.upload_report = gr.Textbox(label="Rapport d'ajout", interactive=False, lines=6,
                                      elem_id="rag-upload-report",
                                      placeholder="Déposez des fichiers : ils rejoignent le corpus et l'index, "
                                                  "et la question suivante les lit.")


def _wire_upload(ui: SimpleNamespace, chat: Chat) -> None:
    # In the generation group: no upload while the model in this process answers, and no
    # answer starts on an index being rebuilt.
    ui.upload.upload(_uploader(chat), inputs=[ui.upload, ui.llm], outputs=[ui.upload_report, ui.status, ui.upload],
                     concurrency_limit=chat.base.settings.workers, concurrency_id=GENERATION,
                     api_visibility="private")


def _uploader(chat: Chat):
    """The upload handler: rag add on the files (never replacing a corpus file), then the
    chat reads the new index."""
    from rag.add import add_documents, format_report

    def upload(files: list[str] | None, llm: str):
        if not files:
            return "Aucun fichier reçu.", chat_html.index_status(chat.index, llm), None
        try:
            report = add_documents(chat.base.settings, [Path(f) for f in files], replace=False)
        except RagError as exc:
            return f"Erreur : {without_paths(str(exc))}", chat_html.index_status(chat.index, llm), None
        if report.index is not None:
            _reload(chat, report.index)
        return without_paths(format_report(report)), chat_html.index_status(chat.index, llm), None

    return upload


def _reload(chat: Chat, index) -> None:
    """The next question reads `index`: a fresh pipeline on it, keeping the loaded model
    (a question already being answered finishes on the old one, still open)."""
    old = chat.base
    chat.__init__(Pipeline(old.settings, index=index, llm=old._llm))  # _llm: None until loaded


def add_turn(message: str, turns: list[Turn]):
    """Put the question in the conversation, waiting for its answer."""
    turns.append(Turn(message, status="queued"))  # in place: a running answer sees it too
    return "", chat_html.messages(turns), turns


def _responder(chat: Chat):
    """The streaming handler of the last question: yields (chat, sources, rewrite, turns).

    Stop and clear only mark the turn (see stop_turn): the handler sees the mark at its
    next piece, closes the generation (which frees the model) and sends the final state
    itself, so that no late piece can overwrite what the buttons showed."""
    import gradio as gr

    claiming = threading.Lock()

    def respond(turns: list[Turn], k, temperature, max_tokens, llm):
        with claiming:  # with several workers, two answers of one tab must not take the same turn
            turn = next((t for t in turns if t.status == "queued"), None)  # oldest first
            if turn is not None:
                turn.status = "pending"
        if turn is None:  # stopped or cleared while it waited
            yield chat_html.messages(turns), gr.skip(), gr.skip(), turns
            return
        options = Options(int(k), float(temperature), int(max_tokens), llm)
        yield chat_html.messages(turns), gr.skip(), "", turns
        earlier = history(turns[:turns.index(turn)])
        with closing(chat.respond(earlier, turn.question, options)) as events:
            for kind, value in events:
                if turn.status != "pending":
                    break
                update(turn, kind, value)
                done = kind in ("answer", "error")
                yield (chat_html.messages(turns), chat_html.sources_html(turns, chat.index) if done else gr.skip(),
                       turn.standalone, turns)
        if turn.status == "cleared":
            yield clear_chat([])[:3] + (gr.skip(),)
        elif turn.status == "stopped":
            yield chat_html.messages(turns), gr.skip(), gr.skip(), turns

    return respond


def stop_turn(turns: list[Turn]):
    """Mark the question being answered, or waiting, as interrupted."""
    for turn in turns:
        if turn.status in ("queued", "pending"):
            turn.status = "stopped"
    return chat_html.messages(turns), turns


def clear_chat(turns: list[Turn]):
    """An empty conversation; an answer being written is stopped."""
    for turn in turns:
        if turn.status in ("queued", "pending"):
            turn.status = "cleared"
    return [], chat_html.EMPTY_SOURCES, "", []


def _api(chat: Chat):
    import gradio as gr

    def ask(question: str, history: list[list[str]] | None = None, k: int = chat.base.settings.k,
            temperature: float = chat.base.settings.temperature,
            max_tokens: int = chat.base.settings.max_tokens) -> dict:
        """Answer a question about the corpus. `history`: earlier [question, answer] pairs, for
        follow-ups (the last 3 are read). Returns the answer, whether it was refused, the standalone
        question that was searched, and the citations (number, title, file, passage, supporting
        sentence). Options out of the settings' ranges are refused with a French error."""
        options = Options(k, temperature, max_tokens, chat.base.settings.llm)  # checked by chat.pipeline
        turn = chat.ask(history or [], question, options)
        if turn.status == "error":
            raise gr.Error(turn.text, title="Erreur", print_exception=False)  # already logged by Chat
        return turn_record(turn, chat.index)

    return ask


def check_exposure(host: str, auth: tuple[str, str] | None, insecure: bool = False) -> None:
    """A RagError when the chat would be open to a network without a login, unless `insecure`."""
    if auth is None and not insecure and not _loopback(host):
        raise RagError(f"Refusé : l'adresse {host} ouvrirait l'application au réseau sans identifiant. "
                       "Définissez-en un (RAG_AUTH=utilisateur:motdepasse, ou auth = \"utilisateur:motdepasse\" "
                       "dans le fichier de réglages), ou passez --insecure pour l'ouvrir à tous.")


def _loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may be reached from the network
        return False


def serve(settings: Settings, host: str | None = None, port: int | None = None,
          auth: tuple[str, str] | None = None, pipeline: Pipeline | None = None,
          block: bool = True, log=_log.info, insecure: bool = False):
    """Build the app, load the models, and serve it (blocking unless `block` is False).
    A network address needs a login (`auth`, or the settings') or `insecure`."""
    host, port, auth = host or settings.host, port or settings.port, auth or settings.login()
    check_exposure(host, auth, insecure)
    pipeline = pipeline or Pipeline(settings, log=log)
    log(f"Chargement du modèle de langue {settings.llm} et de l'embedder {settings.embedder}…")
    pipeline.retrieve("Meta")  # loads the embedder now rather than on the first question
    pipeline.llm  # noqa: B018 - loads the model now: a missing model fails here, not in the chat
    if not _loopback(host) and auth is None:  # insecure, asked for
        log(f"Attention : l'application est ouverte sur {host} sans identifiant (--insecure).")
    app = build_app(settings, pipeline)
    log(f"Application prête : http://{host}:{port}")
    app.launch(server_name=host, server_port=port, auth=auth, auth_message="Identifiez-vous pour poser des questions.",
               ssr_mode=False, show_error=False, quiet=True, prevent_thread_lock=not block)
    return app
