"""Exceptions that the command line turns into one-line errors."""


class MintError(Exception):
    """Bad input or usage: a malformed file, a missing field, an impossible option.

    The CLI prints ``Error: <message>`` and exits with code 2, without a traceback. The message
    names the file, line and field at fault where there is one.
    """


def first_line(error: BaseException, default: str | None = None) -> str:
    """The first line of ``error``'s message, for a one-line error; ``default`` (else the exception's
    type name) when the message is empty."""
    text = str(error).strip()
    if text:
        return text.splitlines()[0]
    return type(error).__name__ if default is None else default
