import pytest

from rag.text import fold, stem, terms, words


def test_fold_strips_accents_and_case():
    assert fold("Équité À Noël") == "equite a noel"


def test_words_remove_elisions_and_keep_numbers():
    assert words("L'IA d'OpenAI coûte 1,7 milliard") == ["ia", "openai", "coute", "1,7", "milliard"]


@pytest.mark.parametrize("a, b", [("dépenses", "dépenser"), ("milliards", "milliard"),
                                  ("réseaux", "réseau"), ("annoncée", "annonce")])
def test_stem_joins_inflections(a, b):
    assert stem(fold(a)) == stem(fold(b))


def test_terms_drop_stopwords():
    assert terms("Combien Meta prévoit-elle de dépenser ?") == ["meta", "prevoit", "depens"]
