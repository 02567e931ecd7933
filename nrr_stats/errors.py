"""The one error type users see: bad input, reported as one line and exit code 3."""

from __future__ import annotations


class NrrInputError(Exception):
    """Bad input or usage: names the file, the line where there is one, and the fault.

    The CLI prints ``str(error)`` on stderr and exits with code 3; library callers
    catch it like any exception.
    """

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None):
        self.message = message
        self.path = path
        self.line = line
        super().__init__(self.one_line())

    def one_line(self) -> str:
        where = ""
        if self.path is not None:
            where = f"{self.path}:{self.line}: " if self.line is not None else f"{self.path}: "
        return (where + self.message).replace("\n", " ")


class BankStorageError(NrrInputError):
    """The bank could not be read or written (full disk, read-only file, a lock not granted in
    time): one line naming the bank, exit code 3, like any input error."""
