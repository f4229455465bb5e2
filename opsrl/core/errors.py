"""User-facing errors: each carries one line that names what is wrong and what was expected."""

from __future__ import annotations


class OpsrlError(Exception):
    """Bad input from a user (file, field, name, value). The CLI prints it as one line, exit 1."""

    exit_code = 1


class UsageError(OpsrlError):
    """A command used wrongly (unknown option value, negative limit). The CLI exits with 2."""

    exit_code = 2


class InstanceFileError(OpsrlError):
    """A malformed, truncated or inconsistent instance or solution file."""

    def __init__(self, path: object, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path, self.problem = path, problem

    def __reduce__(self) -> tuple:  # rebuilt with both arguments when it crosses a worker pipe
        return (type(self), (self.path, self.problem))


class InfeasibleInstanceError(OpsrlError):
    """An instance that no solution can satisfy (a demand above capacity, ...)."""
