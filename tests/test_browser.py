"""The chat page in a real browser: Playwright (Python) driving Debian's chromium.

Chromium must be at /usr/bin/chromium (`.ci/run` installs it; a test tool's own browser
download cannot work on these machines). Without it these tests fail, they do not skip.
The screenshot of a cited answer is saved to out/screenshots/chat.png.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from rag import chat_html
from fakes import FakeLLM
from rag.citations import strip_markers
from rag.index import build_index, load_index
from rag.pipeline import REFUSAL, Pipeline
from rag.settings import PROJECT_ROOT, Settings
from serving import SEEDS, PLANTED_QUESTION, SlowLLM, launch, plant, serve_fake

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOT = PROJECT_ROOT / "out" / "screenshots" / "chat.png"
META = "Combien Meta prévoit-elle de dépenser en IA en 2025 ?"
META_EVIDENCE = "Meta prévoit de dépenser 65 milliards de dollars en IA en 2025"
BOT = "#rag-chat [data-testid='bot']"


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.is_file():
        pytest.fail(f"Chromium est introuvable ({CHROMIUM}) : installez-le avec "
                    "`apt-get install -y chromium` (.ci/run le fait).", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser):
    """Pages in fresh browser contexts (one chat session each); dialogs are recorded."""
    contexts = []

    def make():
        context = browser.new_context(locale="fr-FR", viewport={"width": 1400, "height": 1000})
        contexts.append(context)
        page = context.new_page()
        page.dialogs = []
        page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
        return page

    yield make
    for context in contexts:
        context.close()


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    """The chat with fake models (slowed down, to see it stream) and a planted article."""
    app, url, pipeline, slow = serve_fake(tmp_path_factory.mktemp("browser"), delay=0.05, planted=True)
    yield url, pipeline, slow
    app.close()


def open_chat(page, url: str):
    page.goto(url)
    page.wait_for_selector("#rag-question textarea", timeout=30_000)
    return page


def ask(page, question: str) -> None:
    box = page.locator("#rag-question textarea")
    box.fill(question)
    box.press("Enter")


def wait_first_token(page, turn: int, timeout: float) -> None:
    """Until the turn's answer shows text of its own (not a « waiting » or « searching » line)."""
    page.wait_for_function(
        """([selector, turn, notes]) => {
             const bots = document.querySelectorAll(selector);
             const text = bots.length >= turn ? bots[turn - 1].textContent.trim() : "";
             return text && !notes.some(note => text.includes(note));
           }""", arg=[BOT, turn, [chat_html.WAITING, chat_html.SEARCHING]], timeout=timeout * 1000)


def wait_answer(page, turn: int, timeout: float = 30):
    """Until the turn's first card is there (the answer is complete); the answer's text."""
    page.wait_for_selector(f'[id^="rag-src-{turn}-"]', timeout=timeout * 1000)
    return flat(page.locator(BOT).nth(turn - 1).inner_text())


def flat(text: str) -> str:
    return " ".join(text.split())


def test_a_seed_question_streams_a_cited_answer(fake, new_page):
    url, pipeline, _ = fake
    want = Pipeline(pipeline.settings, index=pipeline.index, llm=FakeLLM()).ask(META)
    page = open_chat(new_page(), url)
    assert "Questions sur le corpus" in page.title() and "articles" in page.locator("#rag-status").inner_text()
    assert page.evaluate("document.documentElement.lang") == "fr"
    ask(page, META)
    wait_first_token(page, 1, timeout=30)
    partial = flat(page.locator(BOT).first.inner_text())
    answer = wait_answer(page, 1)
    assert len(partial) < len(answer)  # it was streamed, not shown all at once
    assert answer == flat(want.text)
    card_id = f"rag-src-1-{want.citations[0].number}"  # the card of the extract it cites
    card = page.locator(f"#{card_id}")
    assert "002_dbf84de5b56e379c.txt" in card.inner_text()
    assert META_EVIDENCE in flat(card.text_content())  # the supporting passage is in the card
    assert flat(want.citations[0].quote) in flat(card.locator("mark").first.inner_text())
    assert card.get_attribute("open") is None
    page.locator(f"{BOT} a.rag-cite").first.click()  # a marker opens its card
    page.wait_for_function(f"document.getElementById('{card_id}').open")
    assert META_EVIDENCE in flat(card.locator(".rag-passage").inner_text())
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert SCREENSHOT.stat().st_size > 10_000


def test_a_planted_article_is_shown_as_text_and_runs_nothing(fake, new_page):
    page = open_chat(new_page(), fake[0])
    ask(page, PLANTED_QUESTION)
    answer = wait_answer(page, 1)
    card = page.locator('[id^="rag-src-1-"]').first
    assert "900_zorglub.txt" in card.inner_text()
    assert "<b>gras</b>" in card.inner_text()  # the title, as typed in the file
    assert "<script>alert(1)</script>" in card.text_content() and "<img src=x onerror=alert(2)>" in card.text_content()
    assert "zorglub" in answer
    for where in ("#rag-sources", "#rag-chat"):
        assert page.locator(f"{where} script, {where} b, {where} img").count() == 0
    page.wait_for_timeout(500)
    assert page.dialogs == []


def test_stop_then_a_follow_up_in_context(fake, new_page):
    url, pipeline, slow = fake
    want = Pipeline(pipeline.settings, index=pipeline.index, llm=FakeLLM()).ask(META)
    page = open_chat(new_page(), url)
    ask(page, META)
    wait_first_token(page, 1, timeout=30)
    page.locator("#rag-stop").click()
    page.wait_for_function("([s]) => document.querySelector(s).textContent.trim().endsWith('(réponse interrompue)')",
                           arg=[BOT], timeout=5_000)
    stopped = flat(page.locator(BOT).first.inner_text())
    page.wait_for_timeout(1000)
    assert flat(page.locator(BOT).first.inner_text()) == stopped  # nothing more was written
    assert len(stopped) < len(flat(want.text))
    assert page.locator('[id^="rag-src-1-"]').count() == 0  # no answer, no card
    ask(page, "Et combien en 2024 ?")  # the model was freed: the next question is answered
    wait_answer(page, 2)
    page.get_by_text("Question reformulée pour la recherche").click()
    rewritten = page.locator("#rag-rewritten textarea").input_value()
    assert rewritten.startswith("Meta") and rewritten.endswith("Et combien en 2024 ?")
    assert not slow.lock.locked()


def test_two_tabs_queue_and_each_gets_its_own_answer(fake, new_page):
    url, pipeline, slow = fake
    questions = [META, PLANTED_QUESTION]
    pages = [open_chat(new_page(), url) for _ in questions]
    for page, question in zip(pages, questions):
        ask(page, question)
    for page, question in zip(pages, questions):
        want = Pipeline(pipeline.settings, index=pipeline.index, llm=FakeLLM()).ask(question)
        assert wait_answer(page, 1, timeout=60) == flat(want.text)
        assert page.locator("#rag-chat [data-testid='user']").all_inner_texts() == [question]
    assert slow.most_at_once == 1


@pytest.mark.e2e
def test_real_models_answer_in_the_browser(new_page, real_index_dir):
    """The default models behind the page: it shows, streamed, the answer the same pipeline
    gives in this process (greedy decoding: the same text), and its cited article in a card.
    What the answer says is the rate tests' business (tests/test_e2e.py); timings printed."""
    settings = Settings(index_dir=real_index_dir, threads=os.cpu_count() or 2)
    pipeline = Pipeline(settings, index=load_index(settings))
    want = pipeline.ask(META)
    app, url = launch(settings, pipeline)
    try:
        page = open_chat(new_page(), url)
        ask(page, META)
        started = time.perf_counter()
        wait_first_token(page, 1, timeout=300)
        first = time.perf_counter() - started
        if want.refused:
            page.wait_for_function(f"document.body.innerText.includes({json.dumps(REFUSAL)})", timeout=300_000)
            answer = flat(page.locator(BOT).nth(0).inner_text())
        else:
            answer = wait_answer(page, 1, timeout=300)
        total = time.perf_counter() - started
        print(f"\nNavigateur, modèles réels : premier mot {first:.1f} s, réponse complète {total:.1f} s")
        print(f"Réponse : {answer}")
        assert strip_markers(answer).startswith(strip_markers(want.text)), (answer, want.text)
        cards = page.locator("#rag-sources .rag-card")
        for citation in want.citations:
            assert any(f"{citation.passage.doc_id}" in text for text in cards.all_inner_texts())
            assert any(flat(citation.quote)[:60] in flat(text) for text in cards.all_text_contents())
        page.screenshot(path=str(SCREENSHOT.with_name("chat-real.png")), full_page=True)
    finally:
        app.close()
