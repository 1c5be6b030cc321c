"""The one error type of the data package.

Every problem with dataset files (not found, truncated, wrong format, failed download,
unreadable image) raises ``DatasetError`` with a message that names the file and says
what was expected, so a user can fix it without reading the code.
"""


class DatasetError(RuntimeError):
    """A dataset could not be found, downloaded or parsed."""
