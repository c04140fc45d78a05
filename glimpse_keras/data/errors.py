"""Exceptions raised by the dataset readers.

Every class subclasses `ValueError` (bad input data is a bad value) and carries
the offending `path` (a file name, a directory or an id string) and a short
human-readable `reason`, so that the conversion step can skip the sample and
report exactly what was wrong with it.
"""

from glimpse_keras.errors import GlimpseError


class DataReadError(GlimpseError, ValueError):
    """Base class: a dataset file or name could not be interpreted.

    Attributes:
        path: the file, directory or text that was being read.
        reason: what was wrong with it.
    """

    def __init__(self, path, reason):
        self.path = str(path)
        self.reason = str(reason)
        super().__init__(f"{self.path}: {self.reason}")

    def __reduce__(self):
        # Keeps the exception picklable (multiprocessing workers re-raise it).
        return (type(self), (self.path, self.reason))


class InvalidSampleIdError(DataReadError):
    """A sample id / file / folder name does not follow the dataset's naming scheme."""


class SkeletonFormatError(DataReadError):
    """A skeleton text file is truncated or holds an unexpected token or count.

    Attributes:
        path: the file (or '<string>' source name) that was parsed.
        reason: what was wrong; includes the 1-based line number when known.
        line: the 1-based line number of the problem, or None.
    """

    def __init__(self, path, reason, line=None):
        self.line = line
        message = reason if line is None else f"line {line}: {reason}"
        super().__init__(path, message)
        self.reason = str(reason)
        self.args = (f"{self.path}: {message}",)

    def __reduce__(self):
        return (type(self), (self.path, self.reason, self.line))


class VideoDecodeError(DataReadError):
    """A video file is missing, unreadable, empty, truncated or fails to decode."""
