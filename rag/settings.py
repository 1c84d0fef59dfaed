"""The one settings object, filled from defaults < settings file < environment < flags.

Nothing else in the package reads the environment: the CLI and the chat call
`load_settings(env=os.environ, ...)` once and pass the result down.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic import ValidationInfo

from rag.errors import RagError

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent
# Run from a checkout (an editable install too), everything sits beside the package: prompts/
# and models.txt where they are edited, seeds/, index/ and models/. Installed from a wheel,
# prompts and models.txt are package data (rag/data/) and the rest goes to a user folder.
CHECKOUT = (PROJECT_ROOT / "pyproject.toml").is_file() and (PROJECT_ROOT / "prompts").is_dir()
SHIPPED = PROJECT_ROOT if CHECKOUT else PACKAGE_DIR / "data"
DEFAULT_DATA_DIR = PROJECT_ROOT if CHECKOUT else Path.home() / ".local" / "share" / "rag"
DATA_SUBDIRS = {"seeds_dir": "seeds", "index_dir": "index", "models_dir": "models"}
ENV_PREFIX = "RAG_"

# Ranges pydantic checks; `invalid` says them in French from the field's own bounds.
Count = Annotated[int, Field(ge=1)]
Probability = Annotated[float, Field(ge=0, le=1)]
Positive = Annotated[float, Field(gt=0)]


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # where things are: seeds/, index/ and models/ under data_dir, each unless set itself
    data_dir: Path = DEFAULT_DATA_DIR  # RAG_DATA_DIR; the checkout, or ~/.local/share/rag when installed
    seeds_dir: Path = None  # the corpus; default data_dir/seeds
    index_dir: Path = None  # default data_dir/index
    models_dir: Path = None  # assembled / downloaded model files; default data_dir/models
    prompts_dir: Path = SHIPPED / "prompts"
    models_file: Path = SHIPPED / "models.txt"

    @model_validator(mode="before")
    @classmethod
    def _under_data_dir(cls, values: object) -> object:
        if isinstance(values, dict):
            data_dir = Path(values.get("data_dir") or DEFAULT_DATA_DIR)
            values = {**values, **{name: data_dir / sub for name, sub in DATA_SUBDIRS.items()
                                   if values.get(name) is None}}
        return values

    # which models (names from models.txt)
    llm: str = "qwen2.5-coder-1.5b-instruct"
    # where it runs: "llamacpp" (this process), "openai" (a server), or "package.module:factory"
    llm_backend: str = "llamacpp"
    # a model server (llm_backend = "openai"): any OpenAI-compatible API (rag/llms/openai.py)
    openai_base_url: str = "http://127.0.0.1:8000/v1"
    openai_model: str | None = None  # the model's name on the server; default: llm
    openai_api_key: SecretStr | None = None  # RAG_OPENAI_API_KEY; never logged, shown or recorded
    openai_timeout: Positive = 300.0  # seconds the server may stay silent (it may be busy with others)
    embedder: str = "embeddinggemma-300m"  # use-multilingual-v3: ~40x faster to build, for very large corpora
    # where it runs: "local" (a model of models.txt, in this process) or "package.module:factory"
    embedder_backend: str = "local"

    # passages
    passage_chars: Count = 200  # evidence coverage against prompt size on the dev split: bench/context_quality.py
    passage_overlap: int = 1  # sentences repeated at the start of the next passage

    # the corpus (`rag add`, the chat's upload box, `rag index`)
    max_file_mb: Positive = 20.0  # larger files are refused by `rag add` and the upload, skipped by `rag index`
    # seconds a builder waits for another one to finish before giving up
    index_lock_wait: Annotated[float, Field(ge=0)] = 60.0

    # retrieval
    retrieval: Literal["hybrid", "dense", "bm25"] = "dense"  # EmbeddingGemma alone beat every fusion weight (dev)
    k: Count = 4  # passages retrieved for the model
    # with dense retrieval, a passage whose similarity to the question is more than this below
    # the best one's is not read (rag/evidence.py); 1 reads all k
    max_gap: Probability = 0.18
    window: Annotated[int, Field(ge=0)] = 0  # sentences added on each side of a retrieved passage (rag/evidence.py)
    candidates: Count = 30  # passages each retriever proposes before fusion
    bm25_weight: Probability = 0.6  # share of BM25 in the fused score, dense gets the rest
    diversify: bool = False  # a passage repeating a better one of another article goes last (rag/retrieval.py)
    store: Literal["faiss", "milvus"] = "faiss"  # where passage vectors live (rag/stores/)
    milvus_uri: str | None = None  # a .db file (Milvus Lite; default index_dir/milvus.db) or http://host:19530
    milvus_token: SecretStr | None = None  # RAG_MILVUS_TOKEN, for a server that asks for one; never logged

    # generation
    threads: Count = max(1, os.cpu_count() or 1)
    n_ctx: Count = 4096
    temperature: Annotated[float, Field(ge=0, le=2)] = 0.0
    max_tokens: Count = 256  # at most half of n_ctx: the other half holds the instructions and passages
    max_question_chars: int = 500
    reuse_prefix: bool = True  # keep each system prompt's KV cache across questions (rag/llms/llamacpp.py)
    workers: Count = 1  # questions answered at once (batch, chat); more than 1 needs a model server
    verify: bool = True  # ask the model to confirm each answer on the cited passage's best two sentences
    # thresholds of the checks (rag/checks.py), calibrated on the dev split (bench/calibrate.py)
    min_p_yes: Probability = 0.55  # the verifier's P(oui) / (P(oui) + P(non)) needed to keep an answer
    max_p_refuse: Probability = 1.0  # the model's first-token P(refusing) above which the answer is refused (1: off)
    # the hand-written checks that may refuse an answer (rag/checks.py `RULES`), chosen with the thresholds
    rules: tuple[str, ...] = ("complete", "grounded", "aligned")
    enforce_checks: bool = True  # False: every check runs and is recorded, none refuses (calibration runs)

    # the chat (`rag serve`)
    host: str = "127.0.0.1"  # only this machine; another address exposes the app on a network
    port: Annotated[int, Field(ge=1, le=65535)] = 7860
    auth: SecretStr | None = None  # "user:password" (RAG_AUTH): a login page guards the app

    @field_validator("max_tokens")
    @classmethod
    def _answer_length(cls, value: int, info: ValidationInfo) -> int:
        n_ctx = info.data.get("n_ctx")
        if n_ctx and value > n_ctx // 2:
            raise ValueError(f"au plus {n_ctx // 2} jetons : la moitié du contexte du modèle (n_ctx = {n_ctx}), "
                             "l'autre moitié est pour la consigne et les passages")
        return value

    @model_validator(mode="after")
    def _k_within_candidates(self) -> "Settings":
        if self.k > self.candidates:
            raise ValueError(f"k = {self.k} passages, mais chaque recherche n'en propose que "
                             f"candidates = {self.candidates} : k doit être entre 1 et {self.candidates}")
        return self

    @field_validator("llm_backend")
    @classmethod
    def _backend(cls, value: str) -> str:
        if value not in ("llamacpp", "openai") and ":" not in value:
            raise ValueError("attendu llamacpp, openai ou paquet.module:fabrique")
        return value

    @field_validator("embedder_backend")
    @classmethod
    def _embedder_backend(cls, value: str) -> str:
        if value != "local" and ":" not in value:
            raise ValueError("attendu local ou paquet.module:fabrique")
        return value

    @field_validator("workers")
    @classmethod
    def _workers(cls, value: int, info: ValidationInfo) -> int:
        if value > 1 and info.data.get("llm_backend") == "llamacpp":
            raise ValueError("un modèle chargé dans ce processus répond à une question à la fois ; "
                             "plusieurs workers demandent un serveur de modèles (llm_backend = \"openai\")")
        return value

    @field_validator("rules")
    @classmethod
    def _rules(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from rag.checks import RULES  # the checks module imports nothing heavy
        if unknown := [r for r in value if r not in RULES]:
            raise ValueError(f"règle inconnue : {', '.join(unknown)} (connues : {', '.join(RULES)})")
        return value

    @field_validator("auth")
    @classmethod
    def _login(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            user, _, password = value.get_secret_value().partition(":")
            if not (user and password):
                raise ValueError("attendu sous la forme utilisateur:motdepasse")
        return value

    def login(self) -> tuple[str, str] | None:
        """(user, password) from `auth`, or None when the app needs no login."""
        if self.auth is None:
            return None
        user, _, password = self.auth.get_secret_value().partition(":")
        return user, password


def load_settings(
    file: Path | None = None, env: Mapping[str, str] | None = None, **flags: object
) -> Settings:
    """Merge the layers: defaults, then `file` (TOML), then RAG_* variables, then flags.

    Flags whose value is None are ignored, so CLI options left unset do not override.
    """
    values: dict[str, object] = {}
    env = env or {}
    file = file or _file_from_env(env)
    if file is not None:
        values.update(_read_file(Path(file)))
    values.update(_from_env(env))
    values.update({k: v for k, v in flags.items() if v is not None})
    try:
        return Settings(**values)
    except ValidationError as exc:
        raise invalid(exc) from None


def with_changes(settings: Settings, **changes: object) -> Settings:
    """`settings` with `changes`, checked by the same rules as at loading (a per-question
    option sent to the chat's API, say); RagError in French when one breaks a rule.
    (`model_copy(update=...)` checks nothing.)"""
    try:
        return Settings.model_validate(settings.model_dump() | changes)
    except ValidationError as exc:
        raise invalid(exc) from None


_TYPES = {"int": "doit être un nombre entier", "float": "doit être un nombre", "bool": "doit être vrai ou faux",
          "string": "doit être un texte"}


def invalid(exc: ValidationError) -> RagError:
    """The first error of a validation as one French line."""
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    message = err["msg"].removeprefix("Value error, ")
    kind = err["type"].partition("_")[0]
    if err["type"] != "value_error" and kind in _TYPES:  # pydantic's own English messages
        message = _TYPES[kind]
    elif kind in ("greater", "less") and err["loc"]:
        message = _range(str(err["loc"][0]))
    return RagError(f"Réglage invalide « {where} » : {message}" if where else f"Réglage invalide : {message}")


def _range(field: str) -> str:
    """A field's bounds (its Field(ge=..., le=...)) as the French rule it breaks."""
    info = Settings.model_fields[field]
    bounds = {name: getattr(m, name) for m in info.metadata for name in ("ge", "gt", "le") if hasattr(m, name)}
    if "le" in bounds:
        return f"doit être entre {bounds.get('ge', bounds.get('gt')):g} et {bounds['le']:g}"
    what = "un entier" if info.annotation is int else "un nombre"
    return f"doit être {what} positif" + (" ou nul" if bounds.get("ge") == 0 else "")


def _file_from_env(env: Mapping[str, str]) -> Path | None:
    if env.get(ENV_PREFIX + "CONFIG"):
        return Path(env[ENV_PREFIX + "CONFIG"])
    local = Path("rag.toml")
    return local if local.is_file() else None


def _read_file(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RagError(f"Fichier de réglages introuvable : {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise RagError(f"Fichier de réglages illisible ({path}) : {exc}") from None


def _from_env(env: Mapping[str, str]) -> dict:
    fields = Settings.model_fields
    out = {}
    for key, value in env.items():
        name = key[len(ENV_PREFIX):].lower() if key.startswith(ENV_PREFIX) else None
        if name in fields:
            out[name] = value
    return out
