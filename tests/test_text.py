import pytest

from rag.text import figures, fold, number, number_forms, stem, terms, words


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


@pytest.mark.parametrize("written, canonical", [
    ("12 000", "12000"), ("12\u202f000", "12000"), ("1.200.000", "1200000"), ("3,50", "3.5"),
    ("10.0", "10"), ("44", "44"), ("2.6.32", "2.6.32"),
])
def test_a_number_has_one_canonical_form(written, canonical):
    assert number(written) == canonical


def test_number_forms_hold_what_a_faithful_answer_may_write():
    forms = number_forms("Vingt-cinq salariés, une amende de 1,2 million d'euros, 44 milliards de dollars, 12.000 vélos.")
    assert {"25", "1.2", "1200000", "44", "44000000000", "12000", "12"} <= forms
    assert "2" not in forms and "000" not in forms  # no stray parts of a figure


def test_figures_carry_their_value_and_unit():
    assert figures("200 g de farine, quarante-cinq minutes, 44 milliards de dollars, 4 pommes, 10 pour cent") == [
        ("200", "g"), ("45", "minute"), ("44000000000", "dollar"), ("4", None), ("10", "pourcent")]
    assert figures("Pour cent euros") == [("100", "euro")]  # « pour cent » is a percentage only after a number
