"""Shared fixtures: every test runs in its own tmp folder with fake models by default."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rag.settings import PROJECT_ROOT, Settings

SEEDS = PROJECT_ROOT / "seeds"
FAKE_LLM = "fakes:FakeLLM"  # tests/fakes.py, selected like a real backend
FAKE_EMBEDDER = "fakes:fake_embedder"


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """No test reads the developer's RAG_* variables or writes outside tmp_path."""
    import os

    for key in list(os.environ):
        if key.startswith("RAG_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "seeds"
    shutil.copytree(SEEDS, folder)
    return folder


@pytest.fixture
def run(settings: Settings, monkeypatch: pytest.MonkeyPatch):
    """Invoke the `rag` command on the fixture corpus with fake models."""
    from click.testing import CliRunner

    from rag.cli import main

    for name in ("seeds_dir", "index_dir", "models_dir"):
        monkeypatch.setenv(f"RAG_{name.upper()}", str(getattr(settings, name)))
    monkeypatch.setenv("RAG_LLM", "fake")
    monkeypatch.setenv("RAG_LLM_BACKEND", FAKE_LLM)
    monkeypatch.setenv("RAG_EMBEDDER", "fake")
    monkeypatch.setenv("RAG_RETRIEVAL", "hybrid")  # as the settings fixture: fake vectors mean nothing
    monkeypatch.setenv("RAG_EMBEDDER_BACKEND", FAKE_EMBEDDER)
    return lambda *args: CliRunner().invoke(main, list(args))


@pytest.fixture
def settings(tmp_path: Path, corpus: Path) -> Settings:
    return Settings(
        seeds_dir=corpus, index_dir=tmp_path / "index", models_dir=tmp_path / "models",
        llm="fake", llm_backend=FAKE_LLM, embedder="fake", embedder_backend=FAKE_EMBEDDER, threads=1,
        # the fake embedder's vectors carry no meaning: BM25 in the fusion finds the passages
        retrieval="hybrid",
    )


@pytest.fixture(scope="session")
def real_index_dir(tmp_path_factory) -> Path:
    """One index of seeds/ with the default (real) models, built once for every e2e test
    that needs one (EmbeddingGemma takes a minute or two on 2 cores). Read-only: a test that
    changes an index builds its own."""
    import os

    from rag.index import build_index

    with pytest.MonkeyPatch.context() as patch:  # session scope: built before _isolated runs
        for key in [k for k in os.environ if k.startswith("RAG_")]:
            patch.delenv(key)
        settings = Settings(index_dir=tmp_path_factory.mktemp("real-index"))
        build_index(settings, log=lambda *_: None)
    return settings.index_dir
