from pathlib import Path

import pytest

from rag.errors import RagError
from rag.settings import load_settings


def test_layers_defaults_file_env_flags(tmp_path: Path):
    file = tmp_path / "rag.toml"
    file.write_text('k = 7\nllm = "from-file"\nthreads = 3\n', encoding="utf-8")
    env = {"RAG_LLM": "from-env", "RAG_THREADS": "5", "UNRELATED": "x"}
    s = load_settings(file, env=env, threads=9, k=None)
    assert s.k == 7  # file beats default; flag None does not override
    assert s.llm == "from-env"  # env beats file
    assert s.threads == 9  # flag beats env
    assert s.max_tokens == 256  # default kept


def test_config_file_named_by_env(tmp_path: Path):
    file = tmp_path / "other.toml"
    file.write_text("k = 2\n", encoding="utf-8")
    assert load_settings(env={"RAG_CONFIG": str(file)}).k == 2


def test_bad_values_are_french_errors(tmp_path: Path):
    with pytest.raises(RagError, match="k"):
        load_settings(env={"RAG_K": "zéro"})
    with pytest.raises(RagError, match="positif"):
        load_settings(k=0)
    with pytest.raises(RagError, match="règle inconnue : grounde"):
        load_settings(rules=("complete", "grounde"))
    bad = tmp_path / "bad.toml"
    bad.write_text("k = = 3", encoding="utf-8")
    with pytest.raises(RagError, match="illisible"):
        load_settings(bad)
    with pytest.raises(RagError, match="introuvable"):
        load_settings(tmp_path / "missing.toml")


@pytest.mark.parametrize("flags, message", [
    ({"k": 0}, "« k » : doit être un entier positif"),
    ({"window": -1}, "« window » : doit être un entier positif ou nul"),
    ({"temperature": 2.5}, "« temperature » : doit être entre 0 et 2"),
    ({"min_p_yes": -0.1}, "« min_p_yes » : doit être entre 0 et 1"),
    ({"port": 70000}, "« port » : doit être entre 1 et 65535"),
    ({"openai_timeout": 0}, "« openai_timeout » : doit être un nombre positif"),
    ({"index_lock_wait": -1}, "« index_lock_wait » : doit être un nombre positif ou nul"),
])
def test_out_of_range_values_say_their_range_in_french(flags, message):
    with pytest.raises(RagError) as caught:
        load_settings(**flags)
    assert str(caught.value) == f"Réglage invalide {message}"
    load_settings(index_lock_wait=0, window=0, temperature=2, port=65535)  # the bounds themselves are fine


def test_unknown_key_in_file_is_refused(tmp_path: Path):
    file = tmp_path / "rag.toml"
    file.write_text("kk = 3\n", encoding="utf-8")
    with pytest.raises(RagError, match="kk"):
        load_settings(file)


def test_a_checkout_keeps_its_layout():
    from rag.settings import PROJECT_ROOT

    s = load_settings(env={})
    assert s.data_dir == PROJECT_ROOT
    assert (s.seeds_dir, s.index_dir, s.models_dir) == (PROJECT_ROOT / "seeds", PROJECT_ROOT / "index",
                                                        PROJECT_ROOT / "models")
    assert s.prompts_dir == PROJECT_ROOT / "prompts" and s.models_file == PROJECT_ROOT / "models.txt"


def test_data_dir_holds_corpus_index_and_models_unless_one_is_set(tmp_path: Path):
    s = load_settings(env={"RAG_DATA_DIR": str(tmp_path), "RAG_INDEX_DIR": "/elsewhere/index"})
    assert (s.seeds_dir, s.models_dir) == (tmp_path / "seeds", tmp_path / "models")
    assert s.index_dir == Path("/elsewhere/index")
    assert load_settings(env={}, data_dir=tmp_path).index_dir == tmp_path / "index"
