"""The `rag` command: parse, call one library function, print. Nothing else lives here.

Every library error (RagError) becomes one French line on stderr and exit code 1. The
library reports progress through the `log` callbacks it is given (here `_log`, to stderr)
and warnings through `logging`: the command shows those of the `rag` loggers on stderr.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import click

from rag.errors import RagError
from rag.records import Answer, answer_json
from rag.settings import Settings, load_settings


class _Group(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except RagError as exc:
            click.echo(f"Erreur : {exc}", err=True)
            sys.exit(1)


@click.group(cls=_Group)
@click.option("--config", type=click.Path(path_type=Path), help="Fichier de réglages TOML.")
@click.option("--llm", help="Modèle de langue (voir `rag models`).")
@click.option("--embedder", help="Modèle d'embeddings (voir `rag models`).")
@click.option("--seeds-dir", type=click.Path(path_type=Path), help="Dossier des articles.")
@click.option("--index-dir", type=click.Path(path_type=Path), help="Dossier de l'index.")
@click.option("--k", type=int, help="Nombre de passages donnés au modèle.")
@click.option("--retrieval", type=click.Choice(["hybrid", "dense", "bm25"]), help="Mode de recherche.")
@click.option("--store", type=click.Choice(["faiss", "milvus"]), help="Où vivent les vecteurs (défaut faiss).")
@click.option("--threads", type=int, help="Threads CPU.")
@click.option("--llm-backend", help="Où tourne le modèle : llamacpp (ce processus) ou openai (un serveur, "
                                    "voir openai_base_url).")
@click.option("--workers", type=int, help="Questions traitées à la fois (plus d'une : serveur de modèles).")
@click.pass_context
def main(ctx: click.Context, config, **flags) -> None:
    """Questions en français sur un corpus d'articles, réponses avec citations."""
    ctx.obj = {"config": config, "flags": flags}
    _show_warnings()


class _Echo(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        click.echo(self.format(record), err=True)  # the stderr of the moment (tests swap it)


def _show_warnings() -> None:
    """The library's warnings (a file skipped, a model list unreadable…) as plain lines on stderr."""
    logger = logging.getLogger("rag")
    if not any(isinstance(h, _Echo) for h in logger.handlers):
        logger.addHandler(_Echo(logging.WARNING))


def _settings(ctx: click.Context) -> Settings:
    return load_settings(ctx.obj["config"], env=os.environ, **ctx.obj["flags"])


def _check_models(settings: Settings) -> None:
    """Unknown model names fail here, in one line, before the index or a model loads."""
    from rag.models import get_spec

    if settings.llm_backend == "llamacpp":
        get_spec(settings, settings.llm, role="llm")
    elif ":" in settings.llm_backend:  # a plugin knows its own models: it says when it is made
        from rag.llms import get_llm

        get_llm(settings)
    if settings.embedder_backend == "local":
        get_spec(settings, settings.embedder, role="embedding")


def _log(message: str) -> None:
    click.echo(message, err=True)


@main.command()
@click.option("--rebuild", is_flag=True, help="Reconstruire même si l'index est à jour.")
@click.option("--store", type=click.Choice(["faiss", "milvus"]), help="Où ranger les vecteurs (défaut faiss).")
@click.pass_context
def index(ctx: click.Context, rebuild: bool, store: str | None) -> None:
    """Construire ou mettre à jour l'index à partir des articles."""
    from rag.index import build_index, ensure_index, store_summary

    flags = {**ctx.obj["flags"], "store": store or ctx.obj["flags"]["store"]}  # `rag index --store` or `rag --store`
    settings = load_settings(ctx.obj["config"], env=os.environ, **flags)
    built = build_index(settings, log=_log) if rebuild else ensure_index(settings, rebuild=True, log=_log)
    m = built.manifest
    click.echo(f"Index prêt : {m['articles']} articles, {m['passages']} passages, "
               f"embedder {m['embedder']} ({m['dim']} dimensions), {store_summary(m)}, construit le {m['built_at']}.")


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.pass_context
def add(ctx: click.Context, paths: tuple[Path, ...]) -> None:
    """Ajouter des documents (.txt, .md, .html, .pdf ; fichiers ou dossiers) au corpus et à l'index."""
    from rag.add import add_documents, format_report

    settings = _settings(ctx)
    _check_models(settings)
    report = add_documents(settings, list(paths), log=_log)
    click.echo(format_report(report))
    if report.errors:
        raise RagError(f"{len(report.errors)} fichier(s) refusé(s) : voir le rapport ci-dessus.")


@main.command()
@click.argument("question")
@click.option("--rebuild", is_flag=True, help="Mettre l'index à jour s'il est périmé.")
@click.option("--json", "as_json", is_flag=True, help="Sortie JSON.")
@click.pass_context
def ask(ctx: click.Context, question: str, rebuild: bool, as_json: bool) -> None:
    """Poser une question et afficher la réponse et ses sources."""
    from rag.index import ensure_index
    from rag.pipeline import Pipeline, validate_question

    settings = _settings(ctx)
    question = validate_question(question, settings.max_question_chars)  # before any heavy work
    _check_models(settings)
    pipeline = Pipeline(settings, index=ensure_index(settings, rebuild=rebuild, log=_log), log=_log)
    live = sys.stdout.isatty() and not as_json
    answer, streamed = None, []
    for event in pipeline.stream(question):
        if isinstance(event, Answer):
            answer = event
        elif live:
            streamed.append(event)
            click.echo(event, nl=False)
    if as_json:
        click.echo(json.dumps(answer_json(answer), ensure_ascii=False, indent=1))
        return
    if live:  # the streamed text is on screen; repeat it only if the checks changed it
        click.echo("")
        same = "".join(streamed).strip() == answer.text
        click.echo(format_answer(answer, pipeline.index, with_text=not same))
    else:
        click.echo(format_answer(answer, pipeline.index))


def format_answer(answer: Answer, index, with_text: bool = True) -> str:
    """The answer then one block per cited passage: title, file, supporting sentence."""
    lines = [answer.text] if with_text else []
    if answer.citations:
        lines += ["", "Sources :"]
    for c in answer.citations:
        article = index.article(c.passage.doc_id)
        lines.append(f"[{c.number}] {article.title} — {article.path} "
                     f"(caractères {c.quote_start}-{c.quote_end})")
        lines.append(f"    « {c.quote.strip()} »")
    return "\n".join(lines)


@main.group(invoke_without_command=True)
@click.pass_context
def models(ctx: click.Context) -> None:
    """Lister les modèles disponibles (ou `rag models pull NOM`)."""
    if ctx.invoked_subcommand is None:
        from rag.models import list_models

        settings = _settings(ctx)
        for spec, status in list_models(settings):
            mark = "*" if spec.name in (settings.llm, settings.embedder) else " "
            click.echo(f"{mark} {spec.name:40} {spec.role:10} {status:30} {spec.licence}")


@models.command()
@click.argument("name")
@click.pass_context
def pull(ctx: click.Context, name: str) -> None:
    """Télécharger (ou assembler) le modèle NOM et vérifier sa somme de contrôle."""
    from rag.models import pull as pull_model

    path = pull_model(_settings(ctx), name)
    click.echo(f"Modèle {name} prêt : {path}")


@main.command()
@click.option("--host", help="Adresse d'écoute (défaut 127.0.0.1 : cette machine seulement).")
@click.option("--port", type=int, help="Port (défaut 7860).")
@click.option("--rebuild", is_flag=True, help="Mettre l'index à jour s'il est périmé.")
@click.option("--insecure", is_flag=True, help="Ouvrir sur une adresse du réseau sans identifiant (RAG_AUTH).")
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None, rebuild: bool, insecure: bool) -> None:
    """Lancer le chat dans le navigateur (construit l'index s'il manque)."""
    from rag.app import check_exposure
    from rag.app import serve as serve_app
    from rag.index import ensure_index
    from rag.pipeline import Pipeline

    settings = load_settings(ctx.obj["config"], env=os.environ, **ctx.obj["flags"], host=host, port=port)
    check_exposure(settings.host, settings.login(), insecure)  # before any heavy work
    _check_models(settings)
    index = ensure_index(settings, rebuild=rebuild, log=_log)
    m = index.manifest
    _log(f"Index prêt : {m['articles']} articles, {m['passages']} passages.")
    serve_app(settings, pipeline=Pipeline(settings, index=index, log=_log), log=_log, insecure=insecure)


@main.command()
@click.argument("questions", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help="Fichier des réponses (.jsonl ou .csv) ; relancer la commande reprend où elle s'est arrêtée.")
@click.option("--quiet", is_flag=True, help="Sans barre de progression.")
@click.option("--rebuild", is_flag=True, help="Mettre l'index à jour s'il est périmé.")
@click.option("--workers", type=int, help="Questions traitées à la fois (plus d'une : serveur de modèles).")
@click.pass_context
def batch(ctx: click.Context, questions: Path, output: Path, quiet: bool, rebuild: bool,
          workers: int | None) -> None:
    """Répondre aux questions d'un fichier (.txt, .jsonl ou .csv), une réponse par question."""
    from rag.batch import answer_file

    flags = {**ctx.obj["flags"], "workers": ctx.obj["flags"]["workers"] if workers is None else workers}
    settings = load_settings(ctx.obj["config"], env=os.environ, **flags)  # `rag batch --workers` or `rag --workers`
    _check_models(settings)
    done = answer_file(settings, questions, output, progress=not quiet and sys.stderr.isatty(),
                       rebuild=rebuild, log=_log)
    click.echo(f"{done.answered} réponses, {done.failed} en échec, {done.skipped} déjà faites → {output}")
    if done.failed:
        raise RagError(f"{done.failed} question(s) en échec : voir le champ « error » dans {output}.")


@main.command("eval")
@click.option("--reference", type=click.Path(path_type=Path), help="Questions de référence (défaut eval/reference.jsonl).")
@click.option("--split", type=click.Choice(["all", "dev", "test"]), default="all", show_default=True,
              help="Questions notées : dev (pour régler), test (pour rendre compte) ou toutes.")
@click.option("--answers", type=click.Path(path_type=Path),
              help="Noter ce fichier de `rag batch` sans lancer le modèle de langue.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path),
              help="Dossier de cette évaluation, qui ne doit pas en contenir une autre "
                   "(défaut : un nouveau dossier out/eval/<date-heure>[-partie]).")
@click.option("--resume", is_flag=False, flag_value="", default=None, metavar="[DOSSIER]",
              help="Reprendre les réponses de l'évaluation de DOSSIER (seul : celle de --out).")
@click.option("--compare", nargs=2, type=click.Path(path_type=Path), metavar="A.json B.json",
              help="Comparer deux eval.json au lieu d'évaluer.")
@click.option("--quiet", is_flag=True, help="Sans barre de progression.")
@click.option("--rebuild", is_flag=True, help="Mettre l'index à jour s'il est périmé.")
@click.pass_context
def eval_command(ctx: click.Context, reference: Path | None, split: str, answers: Path | None,
                 out_dir: Path | None, resume: str | None, compare: tuple[Path, Path] | None, quiet: bool,
                 rebuild: bool) -> None:
    """Évaluer recherche, réponses, citations, refus, langue et vitesse sur les questions de référence."""
    from rag.report import compare_runs, evaluate, headline
    from rag.settings import PROJECT_ROOT

    if compare:
        click.echo(compare_runs(*compare))
        return
    settings = _settings(ctx)
    _check_models(settings)
    doc, folder = evaluate(settings, reference or PROJECT_ROOT / "eval" / "reference.jsonl", out_dir, resume,
                           answers, split, progress=not quiet and sys.stderr.isatty(), rebuild=rebuild, log=_log)
    click.echo(headline(doc))
    click.echo(f"→ {folder}/ : eval.json, report.md, chart.png")
