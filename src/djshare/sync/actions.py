"""Actions: what a diff found, as typed records (pure)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Action:
    """One difference for one key. `kind` is added (only left), removed (only right) or changed.

    Values are SQL literals as the servers format them (exact: FLOAT widened to DOUBLE, binary as hex);
    binary columns are summarized as `<N bytes md5 ...>` unless values were asked for.
    """

    kind: str
    branch: str  # the table (entity type) the key belongs to
    key: dict[str, str]
    changes: dict[str, tuple[str, str]] = field(default_factory=dict)  # column -> (left, right)

    def text(self) -> str:
        key = ", ".join(f"{k}={v}" for k, v in self.key.items())
        mark = {"added": "+", "removed": "-", "changed": "~"}[self.kind]
        lines = [f"{mark} {self.branch} ({key})"]
        lines += [f"    {column}: {right} -> {left}" for column, (left, right) in self.changes.items()]
        return "\n".join(lines)

    def json(self) -> str:
        return json.dumps({"kind": self.kind, "branch": self.branch, "key": self.key,
                           "changes": {c: {"left": a, "right": b} for c, (a, b) in self.changes.items()}},
                          ensure_ascii=False)


def counts(actions: list[Action]) -> dict[str, int]:
    result = {"added": 0, "removed": 0, "changed": 0}
    for action in actions:
        result[action.kind] += 1
    return result
