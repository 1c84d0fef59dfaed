"""Prompt templates: files under prompts/, rendered strictly with Jinja2.

A variable missing at render time is an error naming it, never an empty string
silently sent to the model.
"""

from __future__ import annotations

import functools
from pathlib import Path

from rag.errors import RagError


def render(prompts_dir: Path, name: str, **variables: object) -> str:
    """Render `prompts_dir/name` with `variables`; unknown names raise RagError."""
    import jinja2

    try:
        return _template(Path(prompts_dir), name).render(**variables).strip() + "\n"
    except jinja2.UndefinedError as exc:
        raise RagError(f"Gabarit de prompt {name} : variable manquante ({exc.message})") from None


@functools.lru_cache(maxsize=16)
def _template(prompts_dir: Path, name: str):
    import jinja2

    path = prompts_dir / name
    if not path.is_file():
        raise RagError(f"Gabarit de prompt introuvable : {path}")
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             trim_blocks=True, lstrip_blocks=True, autoescape=False)
    return env.from_string(path.read_text(encoding="utf-8"))
