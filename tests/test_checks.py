"""The checks stage (rag/checks.py), one check at a time, on passages written by hand."""

import math
from dataclasses import replace

import pytest

from rag import checks
from rag.checks import Draft
from rag.llms import option_probs
from rag.records import Hit, Passage
from rag.settings import PROJECT_ROOT

PROMPTS = PROJECT_ROOT / "prompts"
TWITTER = ("Musk a approché des chercheurs en IA. Heureusement, une mission est venue attirer l'attention "
           "de Musk sur la fortune de son achat de 44 milliards de dollars.")
MEETING = "La réunion a duré une heure. Guy Rosen, responsable de la sécurité, a écrit une note en janvier."


def hits(*texts: str, title: str = "Article") -> tuple[Hit, ...]:
    return tuple(Hit(Passage(f"d{i}#0-{len(t)}", f"d{i}", title, 0, len(t), t), 1.0) for i, t in enumerate(texts))


def draft(text: str, question: str = "Que s'est-il passé ?", *passages: str, p_refuse=None) -> Draft:
    return Draft(text, question, hits(*(passages or (MEETING,))), p_refuse)


@pytest.mark.parametrize("text", [
    "Je ne trouve pas la réponse dans le corpus.", "Les extraits ne mentionnent pas le fondateur [1].",
    "Aucune information sur ce point.", "L'article ne précise pas son salaire.", "Réponse : Je ne sais pas.",
    "I don't know.", "", " [2] ", "Désolé, je ne peux pas répondre.",
])
def test_a_refusal_in_any_wording_is_one(text):
    _, verdict = checks.refusal(draft(text))
    assert not verdict.passed


@pytest.mark.parametrize("text", [
    "Meta ne donne pas accès payant à son IA [1].",
    "Meta ne précise pas le calendrier, mais prévoit 65 milliards de dollars [1].",
    "Réponse : La réunion a duré une heure [1].",
])
def test_an_answer_that_merely_says_ne_pas_is_not_a_refusal(text):
    out, verdict = checks.refusal(draft(text))
    assert verdict.passed and not out.text.startswith("Réponse")


def test_markers_of_passages_not_given_are_dropped():
    out, verdict = checks.markers(draft("La réunion a duré une heure [1][4]."))
    assert out.text == "La réunion a duré une heure [1]." and verdict.detail == [4]


def test_an_uncited_answer_is_tied_to_its_passage_or_refused():
    out, verdict = checks.cited(Draft("Guy Rosen a écrit une note.", "?", hits("Il pleut.", MEETING)))
    assert verdict.passed and out.text.endswith("[2].")
    assert not checks.cited(draft("Zhang Yiming, en 2012."))[1].passed


@pytest.mark.parametrize("question, text, ok", [
    ("Combien Elon Musk a-t-il payé pour acheter Twitter ?", "Elon Musk a payé pour acheter Twitter [1].", False),
    ("Combien Elon Musk a-t-il payé pour acheter Twitter ?", "Il a payé 44 milliards de dollars [1].", True),
    ("Quel est le montant de l'achat ?", "Un achat de quarante-quatre milliards [1].", True),
    ("Quand Guy Rosen a-t-il écrit sa note ?", "Guy Rosen a écrit une note [1].", False),
    ("Quand Guy Rosen a-t-il écrit sa note ?", "En janvier [1].", True),
    ("Qui a écrit la note ?", "Guy Rosen [1].", True),  # nothing asked for that can be counted
    # a price asks for money, a count for a number of things
    ("Combien Meta a-t-elle payé pour racheter Instagram ?", "Meta a payé près d'une décennie [1].", False),
    ("Combien Meta a-t-elle payé pour racheter Instagram ?", "Meta a payé un milliard [1].", True),
    ("Quel est le prix du forfait ?", "Le forfait coûte 11 $ par mois [1].", True),
    ("Combien de pays ont signé ?", "Douze pays ont signé [1].", True),  # « pays » is no payment
    ("Combien d'Européens Pew Research a-t-il interrogés ?", "Pew Research a interrogé 64 % des Européens [1].", False),
    ("Combien d'Européens Pew Research a-t-il interrogés ?", "2 000 Européens, dont 64 % de Français [1].", True),
    ("Quel pourcentage d'Européens utilise Meta AI ?", "64 % des Européens [1].", True),
    ("Quel âge avait-elle ?", "Elle avait soixante ans [1].", True),  # a number spelled out
])
def test_an_answer_lacking_the_asked_quantity_or_date_is_incomplete(question, text, ok):
    _, verdict = checks.complete(Draft(text, question, hits(TWITTER + " " + MEETING)))
    assert verdict.passed is ok


def test_a_quantity_is_required_even_when_the_evidence_has_none():
    """Off the corpus, the passages hold no figure either: « il a payé cher » answers nothing."""
    _, verdict = checks.complete(Draft("Il a payé cher [1].", "Combien a-t-il payé ?", hits("Il a payé cher.")))
    assert not verdict.passed


@pytest.mark.parametrize("question, text, ok", [
    ("De combien la valorisation de Nvidia a-t-elle chuté ?", "La valorisation de Nvidia a chuté [1].", False),
    ("Quel journaliste de Business Insider a obtenu l'audio ?", "Business Insider a obtenu l'audio [1].", False),
    ("Quel laboratoire Musk veut-il créer ?", "Elon Musk veut créer un laboratoire [1].", False),  # « Elon » extends Musk
    ("Qui dirige la sécurité de Meta ?", "Guy Rosen dirige la sécurité de Meta [1].", True),
    ("Quel média a obtenu la note ?", "The Verge [1].", True),
    ("Comment s'appelle l'IA que Meta veut rendre plus pertinente ?", "Meta AI [1].", True),
])
def test_an_answer_must_add_something_to_the_question(question, text, ok):
    assert checks.adds(Draft(text, question, hits(MEETING)))[1].passed is ok


def test_a_figure_must_come_from_a_sentence_about_what_the_question_names():
    article = ("Twitter Blue coûte 11 $ par mois. Quelque 180 000 personnes y sont abonnées.\n\n"
               "Meta a présenté Instagram Reels. Le format plaît aux jeunes.")
    answer = Draft("Instagram Reels compte 180 000 utilisateurs [1].", "Combien d'utilisateurs compte Instagram Reels ?",
                   hits(article), articles={"d0": article})
    assert checks.aligned(answer)[1].detail == ["180000"]  # one figure, as written
    right = Draft("Twitter Blue compte 180 000 abonnés [1].", "Combien d'abonnés compte Twitter Blue ?",
                  answer.hits, articles=answer.articles)
    assert checks.aligned(right)[1].passed
    unnamed = Draft("180 000 abonnés [1].", "Combien d'abonnés y a-t-il ?", answer.hits, articles=answer.articles)
    assert checks.aligned(unnamed)[1].passed  # the question names nothing to align with


def test_a_document_about_what_the_question_names_is_about_it_throughout():
    """A spec line or a « elle épouse… » names its subject only in the title: when the title
    is the document's own (no other title of the corpus has those words), aligned trusts it;
    a word every title shares (« Debian » in the FAQ) tells no document from another."""
    titles = {"d0": "Notice du déshumidificateur AéroSec DS-20", "d1": "Notice de la bouilloire Vapeo",
              "d2": "Notice du radiateur Caloris"}
    subjects = checks.own_subjects(titles)
    assert {"aerosec", "ds"} <= subjects["d0"] and "notice" not in subjects["d0"]
    spec = "Caractéristiques\n\nPuissance : 420 W\n\nCapacité du réservoir : 3,5 litres"
    cited = (Hit(Passage("d0#0-1", "d0", titles["d0"], 0, len(spec), spec), 1.0),)
    answer = Draft("Le réservoir de l'AéroSec DS-20 contient 3,5 litres [1].",
                   "Quelle est la contenance du réservoir de l'AéroSec DS-20 ?", cited, articles={"d0": spec})
    assert checks.aligned(answer)[1].detail == ["3.5"]  # no sentence near the figure names it
    assert checks.aligned(replace(answer, subjects=subjects))[1].passed
    shared = checks.own_subjects({"d0": "Chapitre 1. Debian", "d1": "Chapitre 2. Debian GNU/Linux"})
    assert "debian" not in shared["d0"] | shared["d1"]


def test_an_extract_number_used_as_a_value_is_no_answer():
    assert not checks.markers(draft("Meta a dépensé [3] millions de dollars [2]."))[1].passed
    assert checks.markers(draft("Meta a dépensé 3 millions de dollars [2]."))[1].passed


def test_names_and_numbers_found_nowhere_are_inventions():
    _, verdict = checks.grounded(draft("Klarna a un PDG nommé Markus Klarner [1].", "Comment s'appelle le PDG de Klarna ?"))
    assert not verdict.passed and verdict.detail == ["markus", "klarner"]
    _, verdict = checks.grounded(draft("Mark Zuckerberg a fondé Facebook en 2004 [1].", "Qui a fondé Facebook ?"))
    assert not verdict.passed and {"mark", "zuckerberg", "2004"} <= set(verdict.detail)


@pytest.mark.parametrize("text", [
    "La réunion a duré 1 heure [1].",  # « une heure » in the passage
    "Guy Rosen est le responsable de la sécurité [1].",
    "Selon Guy Rosen, la note date de janvier [1].",  # a common word opening the sentence
    "Le responsable de la sécurité de Article est Guy Rosen [1].",  # the title counts
])
def test_what_the_passage_or_question_holds_is_grounded(text):
    _, verdict = checks.grounded(draft(text, "Qui est Guy Rosen ?"))
    assert verdict.passed, verdict.detail


def test_a_command_found_nowhere_is_an_invention():
    guide = "Pour retenir un paquet, lancez apt-mark hold suivi du nom du paquet."
    _, verdict = checks.grounded(draft("Pour cela, lancez `ssh-keygen -t rsa` [1].", "Comment créer une clé ?", guide))
    assert not verdict.passed and verdict.detail == ["ssh", "keygen", "rsa"]
    _, verdict = checks.grounded(draft("Pour cela, lancez `apt-mark hold nom_paquet` [1].", "Comment retenir un paquet ?", guide))
    assert verdict.passed, verdict.detail  # the command's words are the passage's, a placeholder too
    assert checks.grounded(draft("Pour cela, lancez apt-get [1].", "Comment retenir un paquet ?", guide))[1].passed  # not code


@pytest.mark.parametrize("text, invented", [
    ("Utilisez la commande apt-mark [1].", []),  # a verb opening the sentence is no name
    ("Mélangez la farine et le lait [1].", []),
    ("Markus Klarner dirige la sécurité [1].", ["markus", "klarner"]),  # a full name opening it is
    ("ByteDance [1].", ["bytedance"]),  # and so is a one-word answer
    ("Selon Zhang Yiming, la note date de janvier [1].", ["zhang", "yiming"]),
])
def test_a_word_capitalised_only_for_opening_its_sentence_is_no_name(text, invented):
    _, verdict = checks.grounded(draft(text, "Que faire ?", MEETING + " Il faut la farine et le lait."))
    assert (verdict.detail or []) == invented


def test_the_answer_keeps_its_lines():
    raw = "Voici les étapes :\n\n\n1.   Compilez   le noyau [1].\n2. Installez le paquet [1].  \n"
    text, verdict = checks.refusal(draft(raw))
    assert verdict.passed and text.text == "Voici les étapes :\n\n1. Compilez le noyau [1].\n2. Installez le paquet [1]."


def test_the_numbers_of_a_numbered_list_are_no_facts():
    guide = "Compilez le noyau avec make deb-pkg. Installez ensuite le paquet produit avec dpkg -i."
    steps = "Voici les étapes :\n1. Compilez avec `make deb-pkg` [1].\n2) Installez le paquet avec `dpkg -i` [1]."
    _, verdict = checks.grounded(draft(steps, "Comment construire un paquet du noyau ?", guide))
    assert verdict.passed, verdict.detail
    _, verdict = checks.grounded(draft(steps + "\n3. Redémarrez après 5 minutes [1].",
                                       "Comment construire un paquet du noyau ?", guide))
    assert verdict.detail == ["5"]  # a number inside a step still needs its evidence
    assert checks.grounded(draft("Il reste 2. Lancez make [1].", "Combien ?", guide))[1].detail == ["2"]  # not a step


@pytest.mark.parametrize("text, passed", [
    ("apt install est recommandé depuis Debian 10.0 [1].", True),  # « 10.0 » is the passage's « 10 »
    ("apt install est recommandé depuis Debian 10,0 [1].", True),
    ("apt install est recommandé depuis Debian 10.5 [1].", False),
])
def test_a_whole_number_written_with_decimals_is_that_number(text, passed):
    guide = "Depuis Debian 10, la commande apt install est recommandée."
    assert checks.grounded(draft(text, "Depuis quand ?", guide))[1].passed is passed


@pytest.mark.parametrize("evidence, text, passed", [
    ("Cyclo a vendu 12 000 vélos.", "Cyclo a vendu 12000 vélos [1].", True),  # grouping is a writing habit
    ("Cyclo a vendu 12 000 vélos.", "Cyclo a vendu 12.000 vélos [1].", True),
    ("Cyclo a vendu 12 000 vélos.", "Cyclo a vendu 12 vélos [1].", False),  # a part of a figure is not it
    ("Cyclo a vendu 12 000 vélos.", "Cyclo a vendu 13 000 vélos [1].", False),
    ("Le taux est de 35 points.", "Le taux est de 3.5 points [1].", False),  # a decimal is not its digits
    ("Vingt-cinq salariés ont été licenciés.", "25 salariés ont été licenciés [1].", True),  # spelled out
    ("Vingt-cinq salariés ont été licenciés.", "26 salariés ont été licenciés [1].", False),
    ("L'amende atteint 1,2 million d'euros.", "L'amende atteint 1 200 000 euros [1].", True),  # its scale
    ("L'amende atteint 1 200 000 euros.", "L'amende atteint 1,2 million d'euros [1].", True),
    ("Musk a payé 44 milliards de dollars.", "Musk a payé 44 000 000 000 dollars [1].", True),
    ("Musk a payé 44 milliards de dollars.", "Musk a payé 45 milliards de dollars [1].", False),
    ("L'amende atteint 1,2 milliard d'euros.", "L'amende atteint 1,2 million d'euros [1].", False),  # not its scale
    ("Cyclo a vendu 12 000 vélos.", "Cyclo a vendu 12 mille vélos [1].", True),
    ("Le ticket coûte 3,50 euros.", "Le ticket coûte 3,5 euros [1].", True),
    ("Le noyau 2.6.32 est livré.", "Le noyau 2.6.30 est livré [1].", False),  # a version is no decimal
    ("Le noyau 2.6.32 est livré.", "Le noyau 2.6.32 est livré [1].", True),
])
def test_a_number_is_known_in_any_faithful_writing_and_only_in_those(evidence, text, passed):
    """grounded compares values, not strings: a reformatted figure is the evidence's, an
    altered one is not (a corpus that spells its numbers out must not lose right answers)."""
    verdict = checks.grounded(draft(text, "Combien ?", evidence))[1]
    assert verdict.passed is passed, verdict.detail


@pytest.mark.parametrize("evidence, text, passed", [
    ("Il faut 200 g de farine.", "La tarte contient 200 calories [1].", False),  # another fact's figure
    ("Il faut 200 g de farine.", "Il faut 200 grammes de farine [1].", True),  # the same unit, spelled out
    ("Meta dépensera 65 milliards de dollars.", "Meta dépensera 65 milliards d'euros [1].", False),
    ("Meta dépensera 65 milliards de dollars.", "Meta dépensera 65 milliards $ [1].", True),
    ("Meta dépensera 65 milliards de dollars.", "Meta dépensera 65 milliards [1].", True),  # no unit said
    ("La cuisson dure quarante-cinq minutes.", "La cuisson dure 45 minutes [1].", True),
    ("La cuisson dure quarante-cinq minutes.", "La cuisson dure 45 heures [1].", False),
    ("Le taux atteint 10 pour cent.", "Le taux atteint 10 % [1].", True),
    ("Cyclo a vendu 12 000 vélos.", "Cyclo a vendu 12 000 vélos électriques [1].", True),  # no unit, no rule
])
def test_a_figure_keeps_its_unit(evidence, text, passed):
    verdict = checks.grounded(draft(text, "Combien ?", evidence))[1]
    assert verdict.passed is passed, verdict.detail


def test_only_the_cited_passage_counts_as_evidence():
    answer = Draft("Guy Rosen dirige la sécurité [1].", "Qui dirige la sécurité ?", hits("Il pleut.", MEETING))
    assert not checks.grounded(answer)[1].passed
    assert checks.grounded(Draft("Guy Rosen dirige la sécurité [2].", answer.question, answer.hits))[1].passed


class Verifier:
    """Replies to the verification with fixed first-token probabilities, or text only."""

    def __init__(self, p_yes=None, reply="oui"):
        self.p_yes, self.reply, self.seen = p_yes, reply, []

    def first_token_probs(self, messages, options):
        self.seen.append(messages)
        if self.p_yes is None:
            return None
        return option_probs([("oui", math.log(self.p_yes)), ("non", math.log(1 - self.p_yes))], options)

    def stream(self, messages, max_tokens, temperature):
        yield self.reply


def test_the_verifier_reads_the_cited_sentences_and_its_probability_decides():
    model = Verifier(p_yes=0.7)
    _, verdict = checks.verified(draft("Guy Rosen a écrit une note [1].", "Qui a écrit une note ?"), model, PROMPTS, 0.5)
    assert verdict.passed and verdict.detail == pytest.approx(0.7)
    user = model.seen[0][-1]["content"]
    assert "Guy Rosen, responsable de la sécurité" in user and "[1]" not in user
    assert not checks.verified(draft("Guy Rosen [1]."), Verifier(p_yes=0.7), PROMPTS, 0.8)[1].passed


@pytest.mark.parametrize("reply, ok", [("oui", True), ("Oui.", True), ("« Oui »", True), ("Non", False),
                                       ("No.", False), ("Faux", False), ("Je ne sais pas", False), ("", False)])
def test_without_probabilities_only_a_clear_oui_confirms(reply, ok):
    _, verdict = checks.verified(draft("Guy Rosen [1]."), Verifier(reply=reply), PROMPTS, 0.5)
    assert verdict.passed is ok


def test_confident_compares_the_refusal_probability_when_known():
    assert checks.confident(draft("x", p_refuse=0.3), 0.5)[1].passed
    assert not checks.confident(draft("x", p_refuse=0.6), 0.5)[1].passed
    assert checks.confident(draft("x"), 0.0)[1].passed  # unknown: nothing to compare


def test_the_stage_stops_at_the_first_failure_and_records_every_verdict():
    outcome = checks.run(draft("ByteDance [1]."), [checks.refusal, checks.markers, checks.grounded, checks.cited])
    assert outcome.refused and outcome.text == checks.REFUSAL
    record = outcome.record()
    assert record["refusal"] == "grounded" and [v["check"] for v in record["verdicts"]] == [
        "refusal", "markers", "grounded"]



def test_a_calibration_run_records_every_verdict_and_refuses_only_a_refusal():
    stage = [checks.refusal, checks.markers, checks.grounded, checks.cited]
    outcome = checks.run(draft("ByteDance [1]."), stage, enforce=False)
    assert not outcome.refused and outcome.text == "ByteDance [1]."
    record = outcome.record()
    assert record["refusal"] is None
    assert [(v["check"], v["passed"]) for v in record["verdicts"]] == [
        ("refusal", True), ("markers", True), ("grounded", False), ("cited", True)]
    refused = checks.run(draft("Je ne trouve pas la réponse."), stage, enforce=False)
    assert refused.refused and refused.record()["refusal"] == "refusal"

def test_names_may_come_from_the_cited_article_but_numbers_only_from_the_cited_passage():
    article = "Mark Zuckerberg dirige Meta. " + MEETING + " Meta a payé 25 millions."
    base = Draft("Mark Zuckerberg a lu la note de Guy Rosen [1].", "Qui a lu la note ?", hits(MEETING))
    assert not checks.grounded(base)[1].passed
    with_article = Draft(base.text, base.question, base.hits, articles={"d0": article})
    assert checks.grounded(with_article)[1].passed
    figure = Draft("La réunion a coûté 25 millions [1].", "Combien a coûté la réunion ?", base.hits,
                   articles={"d0": article})
    assert checks.grounded(figure)[1].detail == ["25000000"]  # the figure with its scale
