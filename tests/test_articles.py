"""Cleaning scraped pages: the body is kept whole, the page furniture goes."""

from pathlib import Path

import pytest

from rag.articles import clean, load_article, load_corpus, normalise
from rag.errors import RagError
from rag.settings import PROJECT_ROOT

SEEDS = PROJECT_ROOT / "seeds"


@pytest.fixture(scope="module")
def articles():
    return {a.doc_id[:3]: a for a in load_corpus(SEEDS)}


def test_unicode_is_normalised():
    assert normalise("l\u2019IA\u202f?\u00a0oui") == "l'IA ? oui"
    assert normalise("  \u2022 \U0001F50D Mark\u200b Zuckerberg") == "• Mark Zuckerberg"
    assert normalise("divulguée.Selon l'audio") == "divulguée. Selon l'audio"
    assert normalise("Il a déclaré :Ainsi") == "Il a déclaré : Ainsi"
    assert normalise("4.4/5 et bloomberg.com/opinion") == "4.4/5 et bloomberg.com/opinion"


def test_seed_noise_is_removed(articles):
    text = {k: a.text for k, a in articles.items()}
    assert "Partagez" not in text["000"] and "4.4/5" not in text["000"]
    assert "commentaires" not in text["000"] and "pierreinfinité8" not in text["000"]
    assert "Lynda, journaliste" not in text["000"]  # author bio
    assert "Klarna" not in text["000"] and "bio-ordinateur" not in text["000"]  # teasers
    assert "fermer" not in text["002"] and "Tags" not in text["002"]
    assert "BlogNT" not in text["002"] and "Yohann Poiron" not in text["002"]
    assert "author avatar" not in text["003"] and "lire également" not in text["003"]
    assert "Lire aussi" not in text["004"] and "Sophie Turner" not in text["004"]
    assert "Leave a Reply" not in text["004"] and "Akismet" not in text["004"]
    assert "Parmy Olson est une chroniqueuse" not in text["004"]
    assert "Cette colonne ne reflète pas" not in text["004"]
    for t in text.values():
        assert "\u00a0" not in t and "\u202f" not in t and "\u2019" not in t


def test_article_body_is_kept_whole(articles):
    raw = {p.stem[:3]: p.read_text("utf-8") for p in SEEDS.glob("*.txt")}
    # every sentence of the body survives, in order (checked on folded, space-flattened text)
    flat = lambda s: " ".join(normalise(s).split())  # noqa: E731
    for key, sentence in [
        ("000", "Cette stratégie audacieuse vise à positionner Meta comme un leader dans la démocratisation de l'IA."),
        ("000", "Quelle sera la voie que prendra Meta pour relever ces défis"),
        ("002", "Meta prévoit de dépenser 65 milliards de dollars en IA en 2025"),
        ("002", "Reste à voir si cette stratégie suffira à maintenir Facebook et Instagram compétitifs"),
        ("004", "Musk a approché des chercheurs en intelligence artificielle ces dernières semaines"),
        ("004", "Avec un peu de chance, Musk parviendra à éviter une faillite de Twitter."),
        ("003", "Notifications aux utilisateurs par e-mail et in-app"),
    ]:
        assert flat(sentence) in flat(raw[key])
        assert flat(sentence) in flat(articles[key].text), (key, sentence)


def test_title_and_date(articles):
    assert articles["001"].date == "2025-01"
    assert articles["001"].title == "Mark Zuckerberg en a assez des fuites récurrentes d'informations internes"
    assert articles["002"].title.startswith("« Trop sceptique » sur TikTok")
    assert articles["002"].text.count("« Trop sceptique » sur TikTok") == 1  # repeated title dropped
    assert articles["003"].title == "Meta Entraîne Son IA avec des Données EU"
    assert articles["000"].title.startswith("Mark Zuckerberg, le patron de Meta")


def test_html_and_markdown_are_read(tmp_path: Path):
    page = tmp_path / "a.html"
    page.write_text(
        "<html><head><title>Un titre</title><script>alert('x')</script></head><body>"
        "<p>Premier paragraphe &amp; suite.</p><nav>Menu du site</nav><p>Second.</p></body></html>",
        "utf-8",
    )
    article = load_article(page)
    assert article.title == "Un titre"
    assert article.text == "Premier paragraphe & suite.\n\nSecond."
    md = tmp_path / "b.md"
    md.write_text("# Titre MD\n\nDu **gras** et un [lien](http://x).\n", "utf-8")
    article = load_article(md)
    assert article.title == "Titre MD" and "Du gras et un lien." in article.text


def test_bad_corpus_folders(tmp_path: Path):
    with pytest.raises(RagError, match="introuvable"):
        load_corpus(tmp_path / "absent")
    (tmp_path / "vide").mkdir()
    with pytest.raises(RagError, match="Aucun article"):
        load_corpus(tmp_path / "vide")
    with pytest.raises(RagError, match="vide"):
        clean("fermer\n\nPartagez\n")


def test_sha256_tracks_file_bytes(tmp_path: Path):
    path = tmp_path / "x.txt"
    path.write_text("Un article.", "utf-8")
    first = load_article(path).sha256
    path.write_text("Un article modifié.", "utf-8")
    assert load_article(path).sha256 != first
