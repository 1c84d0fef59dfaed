"""The one exception type the user sees: its message is a French sentence, shown as is
(without server file paths when the user is not on this machine)."""

import re


class RagError(Exception):
    """A failure the user can act on (bad input, missing model, stale index...).

    The message is written for the user, in French, on one line. The CLI prints it and
    exits non-zero; the chat shows it in the conversation.
    """


# An absolute file path (« /srv/rag/index/vectors.npy », « C:\rag\index »): a separator,
# then at least one folder; quotes, brackets and spaces end it. URLs (« http://… ») are not.
_PATH = re.compile(r"""(?<![\w/.~-])(?:~|[A-Za-z]:)?[/\\](?:[^\s/\\'"«»()\[\],;]+[/\\])+[^\s/\\'"«»()\[\],;]*""")


def without_paths(message: str) -> str:
    """`message` with each absolute file path cut to its last name, for a user who is not on
    this machine (the chat, its API): « Index corrompu : /srv/rag/index/vectors.npy » ->
    « Index corrompu : vectors.npy ». The full message belongs in the server log."""
    return _PATH.sub(lambda m: re.split(r"[/\\]", m.group(0).rstrip("/\\"))[-1], message)
