"""Choose the checks (which rules, which thresholds) on recorded answers of the dev split.

    # min_p_yes = 0, max_p_refuse = 1, enforce_checks = false in permissive.toml
    rag --config permissive.toml eval --split dev
    python bench/calibrate.py out/eval/<run>/answers.jsonl [more answers.jsonl] \
        [--reference eval/reference.jsonl --reference eval/faq/reference.jsonl] [--max-wrong 0.05]

The answers must come from a run that let everything through: every check then ran and
recorded its verdict, and each record holds the signals the thresholds read (rag/checks.py:
the verifier's P(oui), the model's first-token P(refusing)). Printed first, for each rule
that can be turned off (rag/checks.py `RULES`), what it refuses: right answers, wrong
answers and answers to off-corpus questions. Then for every set of those rules and every pair of
thresholds on a grid, the answers they would have refused become refusals and the set is
scored with the eval's own functions. Printed: the points on the frontier (no other has
more key facts, more refusals of off-corpus questions and fewer wrong refusals), and the
chosen one — most refusals of off-corpus questions with wrong refusals <= --max-wrong,
then most key facts; when none keeps wrong refusals that low, the one with the most
refusals minus wrong refusals. Several answer files (one per corpus) are scored as one
set, and the wrong-refusal budget holds for each file on its own: a point that refuses too
many of one corpus's answerable questions cannot hide behind another corpus (a user's
documents are one corpus). `--keep RULE` keeps a rule in every set tried (one the product
needs whatever it costs: grounded is what refuses an invented name). Writes out/calibration.json.
Calibrate on dev only: the test split is for reporting.

A choice made on some 130 questions flatters itself. `--folds N` says by how much, before
any test run: the questions are dealt into N folds (each corpus on its own), the point is
chosen on N-1 of them and scored on the one left out, and the held-out figures, summed over
the folds, are printed beside the chosen point's own.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

from rag.checks import REFUSAL, RULES
from rag.evaluation import load_reference, score_record, summary
from rag.settings import PROJECT_ROOT

REFERENCE = PROJECT_ROOT / "eval" / "reference.jsonl"
P_YES = [0.0, 0.2, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99]
P_REFUSE = [1.0, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2, 0.15, 0.1, 0.05, 0.02]


def signals(record: dict) -> tuple[float | None, float | None]:
    """(P(oui) of the verifier, P(refusing) at the first token) of a record, None if unknown."""
    checks = record.get("checks") or {}
    p_yes = next((v["detail"] for v in checks.get("verdicts", []) if v["check"] == "verified"), None)
    return (p_yes if isinstance(p_yes, (int, float)) else None), checks.get("p_refuse")


def failed(record: dict) -> set[str]:
    """The checks a record failed without being refused for it (a run not enforcing them)."""
    return {v["check"] for v in (record.get("checks") or {}).get("verdicts", [])
            if not v["passed"] and v["check"] not in ("verified", "confident")}


def decided(record: dict, min_p_yes: float, max_p_refuse: float, rules: tuple[str, ...] = tuple(RULES)) -> dict:
    """The record as these thresholds and rules would have left it."""
    p_yes, p_refuse = signals(record)
    if record["refused"] or record["error"]:
        return record
    ruled_out = {c for c in failed(record) if c in rules or c not in RULES}
    if ruled_out or (p_yes is not None and p_yes < min_p_yes) or (p_refuse is not None and p_refuse > max_p_refuse):
        return record | {"answer": REFUSAL, "refused": True, "citations": []}
    return record


def figures(refs: dict, records: list[dict], min_p_yes: float, max_p_refuse: float,
            rules: tuple[str, ...] = tuple(RULES)) -> dict:
    rows = [score_record(refs[r["id"]], decided(r, min_p_yes, max_p_refuse, rules)) for r in records]
    s = summary(rows)
    return {"rules": list(rules), "min_p_yes": min_p_yes, "max_p_refuse": max_p_refuse,
            "key_facts": s["answers"]["key_facts"],
            "cites_evidence": s["citations"]["cites_evidence"], "refusals": s["refusals"]["recall"],
            "wrong_refusals": s["refusals"]["wrong_refusals"]}


def point(refs: dict, corpora: list[list[dict]], min_p_yes: float, max_p_refuse: float,
          rules: tuple[str, ...]) -> dict:
    """The figures of all corpora's records as one set, and the worst corpus's wrong refusals."""
    pooled = figures(refs, [r for records in corpora for r in records], min_p_yes, max_p_refuse, rules)
    worst = max(figures(refs, records, min_p_yes, max_p_refuse, rules)["wrong_refusals"] or 0.0
                for records in corpora)
    return pooled | {"worst_wrong": worst}


def frontier(points: list[dict]) -> list[dict]:
    def beats(a, b):
        return (a["key_facts"] >= b["key_facts"] and a["refusals"] >= b["refusals"]
                and a["wrong_refusals"] <= b["wrong_refusals"] and a != b)
    return [p for p in points if not any(beats(q, p) for q in points)]


def choose(points: list[dict], max_wrong: float) -> dict:
    allowed = [p for p in points if p["worst_wrong"] <= max_wrong]
    if not allowed:  # every pair refuses too many answerable questions: the best trade-off
        return max(points, key=lambda p: (p["refusals"] - p["wrong_refusals"], p["key_facts"]))
    return max(allowed, key=lambda p: (p["refusals"], p["key_facts"], -len(p["rules"]), -p["min_p_yes"],
                                       p["max_p_refuse"]))


def held_out(refs: dict, corpora: list[list[dict]], rule_sets: list, max_wrong: float, folds: int) -> dict:
    """The chosen point's figures on questions it was not chosen on (see the docstring)."""
    fold_of = {r["id"]: i % folds for records in corpora
               for i, r in enumerate(sorted(records, key=lambda r: r["id"]))}
    scored = []
    for fold in range(folds):
        seen = [[r for r in records if fold_of[r["id"]] != fold] for records in corpora]
        points = [point(refs, seen, y, r, rules) for rules in rule_sets for y in P_YES for r in P_REFUSE]
        chosen = choose(points, max_wrong)
        unseen = [r for records in corpora for r in records if fold_of[r["id"]] == fold]
        scored += [decided(r, chosen["min_p_yes"], chosen["max_p_refuse"], tuple(chosen["rules"])) for r in unseen]
    return figures(refs, scored, 0.0, 1.0, ())  # the records are decided already


def catches(refs: dict, records: list[dict]) -> dict[str, dict[str, int]]:
    """For each optional rule, the answers it refuses: right, wrong, off-corpus."""
    out = {rule: {"right": 0, "wrong": 0, "off-corpus": 0} for rule in RULES}
    for record in records:
        if record["refused"] or record["error"]:
            continue
        ref = refs[record["id"]]
        kind = "off-corpus" if not ref.answerable else "right" if score_record(ref, record)["correct"] else "wrong"
        for rule in failed(record) & set(RULES):
            out[rule][kind] += 1
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("answers", type=Path, nargs="+")
    parser.add_argument("--reference", type=Path, action="append",
                        help="questions de référence (plusieurs : un fichier par corpus)")
    parser.add_argument("--split", default="dev", choices=["dev", "test", "all"])
    parser.add_argument("--max-wrong", type=float, default=0.05)
    parser.add_argument("--keep", action="append", default=[], choices=RULES,
                        help="règle gardée quoi qu'elle coûte (dans chaque ensemble essayé)")
    parser.add_argument("--folds", type=int, default=0,
                        help="estimer le choix sur des questions qu'il n'a pas vues (N plis)")
    args = parser.parse_args()
    refs = {r.id: r for path in args.reference or [REFERENCE] for r in load_reference(path)
            if args.split in ("all", r.split)}
    corpora = [[r for r in map(json.loads, path.read_text("utf-8").splitlines()) if r["id"] in refs]
               for path in args.answers]
    records = [r for records in corpora for r in records]
    if args.split == "test":
        print("Attention : calibrer sur test fausse le rapport (test sert à rendre compte).", file=sys.stderr)
    for rule, counts in catches(refs, records).items():
        print(f"{rule:9} refuse seule : {counts['right']} justes, {counts['wrong']} fausses, "
              f"{counts['off-corpus']} hors corpus")
    rule_sets = [rules for n in range(len(RULES) + 1) for rules in itertools.combinations(RULES, n)
                 if set(args.keep) <= set(rules)]
    points = [point(refs, corpora, y, r, rules) for rules in rule_sets for y in P_YES for r in P_REFUSE]
    for p in sorted(frontier(points), key=lambda p: -p["refusals"]):
        print(_line(p))
    chosen = choose(points, args.max_wrong)
    print("choisi :", _line(chosen))
    if args.folds > 1:
        unseen = held_out(refs, corpora, rule_sets, args.max_wrong, args.folds)
        print(f"hors échantillon ({args.folds} plis) : key facts {unseen['key_facts']:.3f}  "
              f"cites {unseen['cites_evidence']:.3f}  refusals {unseen['refusals']:.3f}  "
              f"wrong {unseen['wrong_refusals']:.3f}")
    out = PROJECT_ROOT / "out" / "calibration.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"answers": [str(a) for a in args.answers], "split": args.split,
                               "questions": len(records), "chosen": chosen, "points": points}, indent=1), "utf-8")


def _line(p: dict) -> str:
    return (f"{'+'.join(p['rules']) or '-':30} min_p_yes {p['min_p_yes']:.2f} max_p_refuse {p['max_p_refuse']:.2f}  "
            f"key facts {p['key_facts']:.3f}  "
            f"cites {p['cites_evidence']:.3f}  refusals {p['refusals']:.3f}  wrong {p['wrong_refusals']:.3f}"
            f"  (worst corpus {p['worst_wrong']:.3f})")


if __name__ == "__main__":
    main()
