"""The pure parts of bench/run.py: the synthetic data the big
measurements run on (perturbed copies of the seed pages, clustered unit vectors,
French-like passages drawn from the seeds' vocabulary). No timing, no model. The FAISS
type by size and its tuning live in the app (rag/stores/faiss_store.py).
"""

from __future__ import annotations

import random
import re
import subprocess
import sys
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np


@contextmanager
def busy_process(busy: bool = True) -> Iterator[None]:
    """One process spinning on a core meanwhile (another program the user has open)."""
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        yield
    finally:
        if spinner:
            spinner.kill()
            spinner.wait()


def perturb(text: str, rng: random.Random) -> str:
    """The page with every digit redrawn and some neighbouring words of long lines swapped,
    so copies differ (new figures, new term pairs) while staying French news text."""
    text = re.sub(r"\d", lambda _: str(rng.randrange(10)), text)
    lines = []
    for line in text.split("\n"):
        words = line.split(" ")
        if len(line) > 80:  # body text: headings and footer markers stay intact
            for i in range(0, len(words) - 1, 2):
                if rng.random() < 0.15:
                    words[i], words[i + 1] = words[i + 1], words[i]
        lines.append(" ".join(words))
    return "\n".join(lines)


def write_synthetic_corpus(seeds_dir: Path, out_dir: Path, copies: int, seed: int = 0) -> int:
    """`copies` perturbed copies of every seed page into `out_dir`; the number of files."""
    rng = random.Random(seed)
    pages = sorted(p for p in Path(seeds_dir).iterdir() if p.is_file())
    out_dir.mkdir(parents=True, exist_ok=True)
    for copy in range(copies):
        for page in pages:
            text = page.read_text(encoding="utf-8")
            (out_dir / f"{copy:05d}_{page.name}").write_text(perturb(text, rng), encoding="utf-8")
    return copies * len(pages)


def clustered_unit_vectors(n: int, dim: int, rng: np.random.Generator, per_cluster: int = 100,
                           chunk: int = 100_000) -> np.ndarray:
    """n random unit vectors in clusters of ~per_cluster, as embeddings of related passages
    are. Uniform ones would have no near neighbours at all (every cosine ~0 ± 1/sqrt(dim)),
    which makes recall of an approximate index meaningless."""
    centres = rng.standard_normal((max(1, n // per_cluster), dim), dtype=np.float32)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, chunk):
        rows = min(chunk, n - start)
        picked = centres[rng.integers(0, len(centres), rows)]
        out[start:start + rows] = picked + rng.standard_normal((rows, dim), dtype=np.float32)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def seed_vocabulary(seeds_dir: Path) -> list[str]:
    """The words of the seed pages (letters only, as written), commonest first."""
    counts: Counter = Counter()
    for page in sorted(p for p in Path(seeds_dir).iterdir() if p.is_file()):
        counts.update(re.findall(r"[^\W\d_]+", page.read_text(encoding="utf-8")))
    return [w for w, _ in counts.most_common()]


def made_up_words(count: int, rng: random.Random, taken: set[str]) -> list[str]:
    """`count` distinct French-sounding words of 2 to 4 syllables not in `taken`."""
    onsets, vowels = "b c d f g l m n p r s t v ch tr pl br".split(), "a e i o u é è ou an on in".split()
    out: list[str] = []
    seen = set(taken)
    while len(out) < count:
        word = "".join(rng.choice(onsets) + rng.choice(vowels) for _ in range(rng.randint(2, 4)))
        if word not in seen:
            seen.add(word)
            out.append(word)
    return out


def zipf_texts(vocabulary: list[str], n: int, words: int, rng: np.random.Generator,
               chunk: int = 50_000) -> Iterator[str]:
    """n texts of ~`words` words, each word drawn with probability ~ 1/rank (Zipf's law,
    as word frequencies in text follow), so common terms have long posting lists and
    rare ones short, as in a real archive."""
    ranks = np.arange(1, len(vocabulary) + 1, dtype=np.float64)
    cumulative = np.cumsum(1 / ranks)
    cumulative /= cumulative[-1]
    for start in range(0, n, chunk):
        rows = min(chunk, n - start)
        lengths = rng.integers(words * 3 // 4, words * 5 // 4 + 1, rows)
        drawn = np.searchsorted(cumulative, rng.random(int(lengths.sum())))
        ends = np.cumsum(lengths)
        for end, length in zip(ends.tolist(), lengths.tolist()):
            yield " ".join(vocabulary[i] for i in drawn[end - length:end].tolist()) + "."
