from rag.chat_html import answer_html
from rag.citations import (clean_markers, cited_numbers, marker_numbers, repoint, resolve, strip_markers,
                           supporting_sentence)
from rag.records import Hit, Passage


def test_marker_forms():
    assert marker_numbers("1, 3") == [1, 3]
    assert marker_numbers("2-4") == [2, 3, 4]
    assert cited_numbers("A [2]. B [1][2]. C [Extrait 3] et [1, 4].") == [2, 1, 3, 4]


def test_strip_markers_takes_out_normalised_markers_and_their_space():
    assert strip_markers("Meta  dépense [1] 65 milliards [2][3].\nFin [12].") == "Meta dépense 65 milliards. Fin."
    assert strip_markers("[1] [2]") == ""


def test_answer_html_links_only_single_number_markers():
    html = answer_html("A [2]. B [1, 3].", turn=0)
    assert html.count('class="rag-cite"') == 1 and 'title="Voir la source 2">[2]</a>' in html
    assert "B [1, 3]." in html


def test_clean_markers_drops_passages_not_given():
    text = "Meta dépensera 65 milliards [1, 7]. Et plus [9]."
    assert clean_markers(text, valid=3) == "Meta dépensera 65 milliards [1]. Et plus."


def test_supporting_sentence_prefers_shared_numbers():
    passage = "Meta a des concurrents. Meta prévoit de dépenser 65 milliards de dollars en IA. Fin."
    start, end = supporting_sentence(passage, "Meta dépensera 65 milliards [1].")
    assert passage[start:end] == "Meta prévoit de dépenser 65 milliards de dollars en IA."


def test_resolve_gives_offsets_into_the_article():
    article = "Titre.\n\nIntro. Meta prévoit de dépenser 65 milliards de dollars en IA en 2025."
    start = article.index("Intro")
    passage = Passage(f"d#{start}", "d", "Titre", start, len(article), article[start:])
    (c,) = resolve("Elle dépensera 65 milliards [1].", [Hit(passage, 1.0)])
    assert c.number == 1
    assert article[c.quote_start:c.quote_end] == c.quote
    assert c.quote.startswith("Meta prévoit")


def test_marker_after_the_full_stop_moves_before_it_and_finds_its_sentence():
    from rag.citations import clean_markers, supporting_sentence, _citing_text

    text = clean_markers("Meta dépensera 65 milliards de dollars en 2025. [1] Elle rattrape TikTok. [2]", 2)
    assert text == "Meta dépensera 65 milliards de dollars en 2025 [1]. Elle rattrape TikTok [2]."
    passage = "Zuckerberg a parlé de TikTok. Meta prévoit de dépenser 65 milliards de dollars en 2025."
    start, end = supporting_sentence(passage, _citing_text(text, 1))
    assert passage[start:end].startswith("Meta prévoit")


def test_evidence_is_the_two_best_sentences_in_text_order():
    from rag.citations import evidence, resolve
    from rag.records import Hit, Passage

    text = "Il pleut à Paris. Meta est une entreprise. Elle prévoit 65 milliards de dépenses. Fin."
    hits = [Hit(Passage("d#0-1", "d", "T", 0, len(text), text), 1.0)]
    answer = "Meta prévoit 65 milliards [1]."
    (citation,) = resolve(answer, hits)
    assert evidence(answer, citation) == "Meta est une entreprise. Elle prévoit 65 milliards de dépenses."


def test_a_marker_after_an_abbreviation_and_a_full_stop_ends_the_sentence_once():
    assert clean_markers("Tesla Inc. [1].", 1) == "Tesla Inc [1]."


def test_repoint_moves_a_marker_and_keeps_the_lines():
    hits = [Hit(Passage(f"d{i}#0-{len(t)}", f"d{i}", "T", 0, len(t), t), 1.0)
            for i, t in enumerate(["Il pleut sur Lyon.", "Meta dépensera 65 milliards de dollars en IA."])]
    text = "Étapes :\n1. Meta dépensera 65 milliards [1].\n2. Il pleut sur Lyon [1]."
    assert repoint(text, hits) == "Étapes :\n1. Meta dépensera 65 milliards [2].\n2. Il pleut sur Lyon [1]."


def test_a_line_of_markers_alone_joins_the_line_before_it():
    # a small model closes a list with its sources on a line of their own
    listed = "Étapes :\n1. Installez le paquet.\n2. Lancez-le.\n\n[1], [2], [3]"
    assert clean_markers(listed, 3) == "Étapes :\n1. Installez le paquet.\n2. Lancez-le [1][2][3]."
    assert clean_markers("Fin.\n[1, 9].\nSuite [2].", 3) == "Fin [1].\nSuite [2]."
    # a line that says something after its marker is not one of them
    assert clean_markers("Liste :\n[1] premier point.", 3) == "Liste :\n[1] premier point."
