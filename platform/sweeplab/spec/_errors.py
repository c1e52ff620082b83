"""Errors in a study file, each with the file, line and field path it concerns."""

from __future__ import annotations

from dataclasses import dataclass

Location = tuple[str | int, ...]


def format_location(location: Location) -> str:
    """``('models', 1, 'search', 'lr', 'low')`` -> ``models[1].search.lr.low``."""
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


@dataclass(frozen=True)
class SpecIssue:
    location: Location
    message: str
    line: int | None = None

    def format(self, source: str) -> str:
        where = f"{source}:{self.line}" if self.line is not None else source
        field = format_location(self.location)
        return f"{where} {field}: {self.message}" if field else f"{where}: {self.message}"


class StudyError(Exception):
    """A study that cannot run: every issue found, in file order."""

    def __init__(self, source: str, issues: list[SpecIssue]) -> None:
        self.source = source
        self.issues = sorted(issues, key=lambda issue: (issue.line or 0, format_location(issue.location)))
        super().__init__("\n".join(issue.format(source) for issue in self.issues))
