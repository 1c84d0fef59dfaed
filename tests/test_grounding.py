"""The grounding checks: unsupported terms and the model's confirmation."""

from rag.grounding import strip_label, unsupported, verify
from rag.settings import PROJECT_ROOT

PROMPTS = PROJECT_ROOT / "prompts"


class Says:
    """A stand-in model that replies a fixed text and keeps the prompts it saw."""

    def __init__(self, reply):
        self.reply, self.seen = reply, []

    def stream(self, messages, max_tokens, temperature):
        self.seen.append(messages)
        yield self.reply


def test_strip_label():
    assert strip_label("Réponse : Meta paie\n 65 milliards [1].") == "Meta paie 65 milliards [1]."
    assert strip_label("**Reponse** : oui") == "oui"
    assert strip_label("Meta paie.") == "Meta paie."


def test_unsupported_terms_are_what_the_answer_adds_without_a_source():
    passages = ["Mark Zuckerberg a abordé la situation de TikTok aux États-Unis."]
    new, missing = unsupported("Facebook a fondé TikTok en décembre 2012 [1].", "Qui a fondé TikTok ?", passages)
    assert set(missing) >= {"facebook", "decembr", "2012"} and "tiktok" not in new
    new, missing = unsupported("Mark Zuckerberg a parlé de TikTok [1].", "Qui a parlé de TikTok ?", passages)
    assert new and not missing


def test_verify_reads_oui_and_non_and_shows_the_evidence():
    model = Says("Non.")
    assert not verify(model, PROMPTS, "Qui dirige Klarna ?", "Steve Davis [1].", "Davis travaille avec Musk.")
    user = model.seen[0][-1]["content"]
    assert "Davis travaille avec Musk." in user and "Qui dirige Klarna ?" in user
    assert "[1]" not in user  # markers mean nothing to the verifier
    assert verify(Says("oui"), PROMPTS, "q ?", "a", "e")
    assert verify(Says("« Oui »"), PROMPTS, "q ?", "a", "e")
