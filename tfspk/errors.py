"""The one exception type that means "the user's input is wrong".

Library code raises :class:`ToolError` with a message that names the file, line or key
and what was expected; command-line entry points print it without a traceback and exit
non-zero (see :mod:`tfspk.cli`). Anything else escaping is a bug in tfspk.
"""


class ToolError(Exception):
    """Bad input or impossible options; the message is shown to the user as is."""
