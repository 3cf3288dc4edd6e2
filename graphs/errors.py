"""The one exception type that the command line reports as a single line."""


class GraftError(Exception):
    """Bad input or a refused file: the message is shown to the user as is."""
