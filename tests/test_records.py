import json
from types import SimpleNamespace

import numpy as np

from rag.batch import Question, record_of
from rag.chat import Turn, turn_record
from rag.records import Answer, Citation, Hit, Passage, answer_json

PASSAGE = Passage("002#10-60", "002", "Meta et l'IA", 10, 60, "Meta prévoit de dépenser 65 milliards en IA.")
ANSWER = Answer("Combien Meta dépense-t-elle ?", "65 milliards [1].", False,
                (Citation(1, PASSAGE, "Meta prévoit de dépenser 65 milliards en IA.", 10, 55),),
                (Hit(PASSAGE, np.float32(0.5)),), timings={"total": 1.234567}, tokens=7,
                models={"llm": "fake"}, checks={"verdicts": []})


def test_answer_json_is_plain_json():
    data = json.loads(json.dumps(answer_json(ANSWER)))  # a numpy score is no obstacle
    assert data["passages"] == [{"id": "002#10-60", "doc_id": "002", "title": "Meta et l'IA", "start": 10,
                                 "end": 60, "text": PASSAGE.text, "score": 0.5}]
    assert data["citations"][0]["passage_id"] == "002#10-60" and data["error"] is None


def test_batch_record_and_api_answer_are_answer_json_with_their_own_fields():
    base = answer_json(ANSWER)
    record = record_of(Question("q1", "Combien Meta dépense-t-elle ?", 1), ANSWER, {"k": 3})
    assert record == base | {"id": "q1", "passages": ["002#10-60"], "settings": {"k": 3},
                             "timings": {"total": 1.2346}}
    article = SimpleNamespace(title="Meta et l'IA (titre)", path="002.txt")
    index = SimpleNamespace(article=lambda doc_id: article)
    turn = Turn("Et Meta ?", "Combien Meta dépense-t-elle ?", ANSWER.text, ANSWER, "done")
    api = turn_record(turn, index)
    assert api.keys() == base.keys() | {"standalone_question"}
    assert api["question"] == "Et Meta ?" and api["standalone_question"] == ANSWER.question
    assert api["citations"][0] == base["citations"][0] | {"title": "Meta et l'IA (titre)", "file": "002.txt",
                                                          "passage": PASSAGE.text}


def test_an_api_turn_without_answer_has_the_same_fields():
    turn = Turn("Bonjour ?", text="La question est vide.", status="error")
    api = turn_record(turn, index=None)
    assert api.keys() == answer_json(ANSWER).keys() | {"standalone_question"}
    assert api["error"] == "La question est vide." and api["citations"] == [] and not api["refused"]
