"""Errors that name the file, the field and the fix."""

from __future__ import annotations


class MMRecError(Exception):
    """Base class of every error mmrec raises on purpose."""

    run_record: str | None = None  # the summary file of the run that failed (set by mmrec.run)


class DataError(MMRecError, ValueError):
    """Bad input data: missing or malformed file, wrong shape, NaN features, unknown ids."""

    def __init__(self, path: object, problem: str, fix: str | None = None):
        self.path = str(path)
        self.problem = problem
        self.fix = fix
        message = f"{self.path}: {problem}"
        if fix:
            message += f" ({fix})"
        super().__init__(message)


class ConfigError(MMRecError, ValueError):
    """A configuration that cannot work, detected before any data is loaded."""

    def __init__(self, message: str, hint: str | None = None):
        self.hint = hint
        super().__init__(message)


def find_mmrec_error(error: BaseException | None) -> MMRecError | None:
    """The first :class:`MMRecError` in an exception's chain (Hydra wraps errors raised in ``instantiate``)."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, MMRecError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None
