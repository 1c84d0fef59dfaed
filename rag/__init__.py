"""rag: answer French questions from a news corpus, citing the passages used."""

__version__ = "0.1.0"
