"""Exceptions that the command line turns into one-line errors."""


class MintError(Exception):
    """Bad input or usage: a malformed file, a missing field, an impossible option.

    The CLI prints ``Error: <message>`` and exits with code 2, without a traceback. The message
    names the file, line and field at fault where there is one.
    """
