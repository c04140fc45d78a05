"""The project's errors: one base class, and the errors that cross layers.

Every error the project raises on purpose is a `GlimpseError`, so a command
catches them with one `except GlimpseError` (its message names the file,
key or value at fault) and lets anything else, a bug, show its traceback.
An error also keeps the built-in base that callers and tests already catch
(`ValueError` for a bad value, `OSError` for a refused write, ...).

The errors raised in several layers live here, on the ground floor, so that
a lower layer never imports a higher one only to raise its error; each
module's own errors are defined in that module, on this base.
"""


class GlimpseError(Exception):
    """Base of every error the project raises on purpose."""


class ConfigError(GlimpseError, ValueError):
    """A configuration file, key or value is invalid; the message names it."""


class DataDirError(GlimpseError, ValueError):
    """`--data-dir` holds neither converted shards nor a raw dataset."""


class TrainingError(GlimpseError, RuntimeError):
    """Training cannot go on (non-finite loss, unreadable checkpoint, a run
    folder that cannot be used, ...)."""
