"""Extracts: retrieved passages widened to their neighbouring sentences and merged."""

from rag.evidence import close_to_best, extracts, widen
from rag.records import Article, Hit, Passage

TEXT = ("Musk a racheté Twitter. Le prix a surpris. Il a payé 44 milliards de dollars.\n\n"
        "Les annonceurs sont partis. Steve Davis dirige la Boring Company. Il travaille 16 heures par jour.")
ARTICLE = Article("d", "d.txt", "Musk et Twitter", None, TEXT, "0")


def hit(fragment: str, score: float) -> Hit:
    start = TEXT.index(fragment)
    end = start + len(fragment)
    return Hit(Passage(f"d#{start}-{end}", "d", ARTICLE.title, start, end, fragment), score)


def test_widen_adds_whole_sentences_each_side():
    start = TEXT.index("Il a payé")
    s, e = widen(TEXT, start, start + 10, 1)
    assert TEXT[s:e] == "Le prix a surpris. Il a payé 44 milliards de dollars.\n\nLes annonceurs sont partis."
    assert widen(TEXT, start, start + 10, 0) == (start, start + 10)


def test_overlapping_or_touching_extracts_of_an_article_merge_in_text_order():
    hits = [hit("Il a payé 44 milliards de dollars.", 2.0), hit("Musk a racheté Twitter.", 1.0)]
    (one,) = extracts(hits, lambda _: ARTICLE, window=1)
    assert one.passage.text == "Musk a racheté Twitter. Le prix a surpris. Il a payé 44 milliards de dollars.\n\n" \
                               "Les annonceurs sont partis."
    assert one.score == 2.0 and TEXT[one.passage.start:one.passage.end] == one.passage.text
    assert one.passage.title == "Musk et Twitter"


def test_separate_extracts_of_one_article_are_read_in_text_order():
    hits = [hit("Il travaille 16 heures par jour.", 3.0), hit("Musk a racheté Twitter.", 1.0)]
    first, second = extracts(hits, lambda _: ARTICLE, window=0)
    assert first.passage.text == "Musk a racheté Twitter." and second.passage.text.startswith("Il travaille")


def test_extracts_are_grouped_by_article_best_article_first_in_text_order():
    other = Article("e", "e.txt", "Autre", None, "Meta a dépensé 65 milliards. Rien de plus.", "0")
    far = Hit(Passage("e#0-28", "e", "Autre", 0, 28, "Meta a dépensé 65 milliards."), 2.0)
    hits = [hit("Il travaille 16 heures par jour.", 3.0), far, hit("Musk a racheté Twitter.", 1.0)]
    got = extracts(hits, lambda doc: ARTICLE if doc == "d" else other, window=0)
    assert [(h.passage.doc_id, h.passage.text[:8]) for h in got] == [
        ("d", "Musk a r"), ("d", "Il trava"), ("e", "Meta a d")]


def test_passages_far_below_the_best_one_are_not_read():
    def scored(fragment, dense):
        return Hit(hit(fragment, dense).passage, dense, dense=dense)

    best, near, far = (scored("Musk a racheté Twitter.", 0.62), scored("Le prix a surpris.", 0.50),
                       scored("Les annonceurs sont partis.", 0.40))
    assert close_to_best([best, near, far], 0.15) == [best, near]
    assert close_to_best([best, near, far], 1.0) == [best, near, far]
    assert close_to_best([best, near, far], 0.0) == [best]
    # the order of the hits stays (diversify may put the most similar one second)
    assert close_to_best([near, best, far], 0.15) == [near, best]


def test_hits_without_a_similarity_are_all_read():
    bm25_only = [hit("Musk a racheté Twitter.", 9.0), hit("Les annonceurs sont partis.", 1.0)]
    assert close_to_best(bm25_only, 0.0) == bm25_only
    fused = [Hit(bm25_only[0].passage, 1.2, dense=0.7), Hit(bm25_only[1].passage, 0.9, dense=None)]
    assert close_to_best(fused, 0.0) == fused  # BM25 found the second one: no gap to measure
    assert close_to_best([], 0.1) == []
