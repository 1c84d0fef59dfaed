"""The one exception type the user sees: its message is a French sentence, shown as is."""


class RagError(Exception):
    """A failure the user can act on (bad input, missing model, stale index...).

    The message is written for the user, in French, on one line. The CLI prints it and
    exits non-zero; the chat shows it in the conversation.
    """
