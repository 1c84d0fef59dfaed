"""Follow-up questions rewritten into standalone ones: prompt, sanitising, fallbacks."""

import pytest

from rag.conversation import MAX_TOKENS, MAX_TURNS, sanitize, standalone_question
from fakes import FakeLLM, Scripted
from rag.settings import Settings

META = "Combien Meta prévoit-elle de dépenser en IA en 2025 ?"
META_ANSWER = "Meta prévoit de dépenser 65 milliards de dollars en IA en 2025 [1]."
FOLLOW_UP = "Et combien en 2024 ?"


def test_without_history_the_question_is_unchanged_and_the_model_not_called():
    llm = Scripted("Autre chose ?")
    assert standalone_question([], FOLLOW_UP, llm, Settings()) == FOLLOW_UP
    assert llm.calls == []


def test_the_model_rewrites_from_the_conversation_at_temperature_0():
    llm = Scripted("Question réécrite : « Combien Meta prévoit-elle de dépenser en IA en 2024 ? »\nExplication : …")
    out = standalone_question([(META, META_ANSWER)], FOLLOW_UP, llm, Settings())
    assert out == "Combien Meta prévoit-elle de dépenser en IA en 2024 ?"
    (messages, max_tokens, temperature), = llm.calls
    prompt = messages[-1]["content"]
    assert META in prompt and FOLLOW_UP in prompt and "65 milliards" in prompt
    assert "[1]" not in prompt  # markers of past answers mean nothing to the rewrite
    assert temperature == 0 and max_tokens == MAX_TOKENS <= 100


def test_only_the_last_turns_go_into_the_prompt():
    history = [(f"Question numéro {i} ?", f"Réponse {i}.") for i in range(MAX_TURNS + 2)]
    llm = Scripted("Combien en 2024 ?")
    standalone_question(history, FOLLOW_UP, llm, Settings())
    prompt = llm.calls[0][0][-1]["content"]
    assert "Question numéro 0 ?" not in prompt and f"Question numéro {MAX_TURNS + 1} ?" in prompt


@pytest.mark.parametrize("output", [
    "",  # nothing
    "   \n  ",
    "Meta a dépensé 40 milliards de dollars.",  # an answer, not a question
    "Combien " + "vraiment " * 200 + "?",  # longer than any question may be
    "?",  # no word to search
])
def test_unusable_output_falls_back_to_the_question(output):
    assert standalone_question([(META, META_ANSWER)], FOLLOW_UP, Scripted(output), Settings()) == FOLLOW_UP


def test_sanitize_keeps_one_clean_line():
    assert sanitize("**Combien   Meta a-t-elle dépensé en 2024 ?**\nSuite", FOLLOW_UP, 500) \
        == "Combien Meta a-t-elle dépensé en 2024 ?"
    # a question cut over two lines: its first line is no question, so the fallback is used
    assert sanitize("Combien Meta a-t-elle dépensé\nen 2024 ?", FOLLOW_UP, 500) == FOLLOW_UP
    assert sanitize("« Qui dirige   Meta ? »", "Et qui la dirige ?", 500) == "Qui dirige Meta ?"
    assert sanitize("Reformulation : Qui dirige Meta ?", "Et qui la dirige ?", 500) == "Qui dirige Meta ?"


def test_fake_model_prefixes_the_previous_question_content_words():
    out = standalone_question([(META, META_ANSWER)], FOLLOW_UP, FakeLLM(), Settings(llm="fake", llm_backend="fakes:FakeLLM"))
    assert out.endswith(FOLLOW_UP)
    assert out.startswith("Meta") and "dépenser" in out and "IA" in out
    assert "Combien" not in out.replace(FOLLOW_UP, "")  # already in the follow-up / a stopword
