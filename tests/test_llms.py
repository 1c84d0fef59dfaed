"""The language-model components: choosing a backend by settings, first-token probabilities."""

import math

import pytest

from rag.errors import RagError
from rag.llms import get_llm, option_probs, plugin
from rag.settings import Settings, load_settings


def test_option_probs_sums_the_tokens_that_begin_each_option():
    top = [("Oui", math.log(0.6)), (" oui", math.log(0.1)), ("O", math.log(0.05)), ("Non", math.log(0.2)),
           ("«", math.log(0.03))]
    probs = option_probs(top, ["oui", "non"])
    assert probs["oui"] == pytest.approx(0.7)  # « O » alone is too short to say
    assert probs["non"] == pytest.approx(0.2)
    assert option_probs(top, ["peut-être"]) == {"peut-être": 0.0}
    refusing = option_probs([("Je", math.log(0.3)), (" je", math.log(0.1)), ("Jeff", math.log(0.2))],
                            ["Je ne trouve pas"])
    assert refusing["Je ne trouve pas"] == pytest.approx(0.4)  # « Jeff Bezos… » is an answer


def test_a_plugin_backend_is_built_from_the_settings(settings):
    llm = get_llm(settings)
    assert type(llm).__name__ == "FakeLLM" and get_llm(settings) is llm  # loaded once
    other_k = settings.model_copy(update={"k": 7, "temperature": 0.5})
    assert get_llm(other_k) is llm  # asking differently does not load another model


def test_unknown_backends_are_clear_errors():
    with pytest.raises(RagError, match="llm_backend"):
        load_settings(llm_backend="ollama-direct")
    with pytest.raises(RagError, match="Composant introuvable"):
        plugin("nowhere.at_all:Thing", Settings())
