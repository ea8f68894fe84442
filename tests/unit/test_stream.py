"""The stream diff (pure): merge of two key-ordered row streams, type conversion, order checks; handler
dispatch and the datastore operators over iterables."""

from __future__ import annotations

import datetime
import decimal
import uuid
from typing import Any

import pytest

from djshare.errors import DjshareError
from djshare.sync.actions import Action, Binary, counts
from djshare.sync.datastore import Datastore, diff, sync
from djshare.sync.handlers import Handler, UnhandledAction, method_name
from djshare.sync.sources import Rows
from djshare.sync.stream import convert, merge, typed


def kinds(actions: list[Action]) -> list[tuple[str, dict[str, Any]]]:
    return [(a.kind, a.key) for a in actions]


def test_merge_finds_added_removed_changed_at_both_edges() -> None:
    left = [{"k": 1, "v": "a"}, {"k": 2, "v": "b"}, {"k": 4, "v": None}, {"k": 6, "v": "x"}]
    right = [{"k": 0, "v": "z"}, {"k": 2, "v": "B"}, {"k": 4, "v": None}, {"k": 5, "v": "e"}]
    actions = list(merge(left, right, ["k"], "t"))
    assert kinds(actions) == [("removed", {"k": 0}), ("added", {"k": 1}), ("changed", {"k": 2}),
                              ("removed", {"k": 5}), ("added", {"k": 6})]
    assert actions[2].changes == {"v": ("b", "B")}


def test_merge_of_empty_and_identical_streams() -> None:
    rows = [{"k": i, "v": i * 2} for i in range(5)]
    assert list(merge([], [], ["k"], "t")) == []
    assert list(merge(rows, rows, ["k"], "t")) == []
    assert counts(merge(rows, [], ["k"], "t")) == {"added": 5, "removed": 0, "changed": 0}
    assert counts(merge([], rows, ["k"], "t")) == {"added": 0, "removed": 5, "changed": 0}


def test_merge_with_composite_keys_and_rows() -> None:
    left = [{"a": 1, "b": "x", "v": 1}, {"a": 1, "b": "y", "v": 2}, {"a": 2, "b": "a", "v": 3}]
    right = [{"a": 1, "b": "x", "v": 1}, {"a": 1, "b": "y", "v": 20}]
    actions = list(merge(left, right, ["a", "b"], "t", with_rows=True))
    assert kinds(actions) == [("changed", {"a": 1, "b": "y"}), ("added", {"a": 2, "b": "a"})]
    assert actions[0].row == left[1] and actions[1].row == left[2]


def test_only_columns_both_sides_have_are_compared() -> None:
    assert list(merge([{"k": 1, "v": 1, "extra": 9}], [{"k": 1, "v": 1}], ["k"], "t")) == []


@pytest.mark.parametrize(("rows", "message"), [
    ([{"k": 2}, {"k": 1}], "Key \\(1,\\) of the left side comes after \\(2,\\)"),
    ([{"k": 1}, {"k": 1}], "Key \\(1,\\) of the left side is repeated"),
    ([{"k": 1}, {"k": "a"}], "mixed types"),
    ([{"x": 1}], "has no key column 'k'"),
])
def test_unordered_duplicate_or_keyless_rows_are_clear_errors(rows: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(DjshareError, match=message):
        list(merge(rows, [], ["k"], "t"))


def test_text_converts_to_the_column_types() -> None:
    assert convert("int", "7") == 7 and convert("int", "") is None and convert("int", None) is None
    assert convert("double", "0.1") == 0.1 and convert("float", 3) == 3.0
    assert convert("decimal", "1.50") == decimal.Decimal("1.50")
    assert convert("date", "2024-02-29") == datetime.date(2024, 2, 29)
    assert convert("datetime", "2024-02-29 10:11:12") == datetime.datetime(2024, 2, 29, 10, 11, 12)
    assert convert("varchar", "") == "" and convert("longblob", "ab") == b"ab"
    key = uuid.uuid4()
    assert convert("binary", key) == key.bytes
    with pytest.raises(DjshareError, match="Value 'seven' is not a int"):
        convert("int", "seven")
    assert list(typed([{"n": "1", "s": "1"}], {"n": "int"})) == [{"n": 1, "s": "1"}]


def test_rows_are_sorted_unless_declared_ordered() -> None:
    rows = [{"k": 3}, {"k": 1}, {"k": 2}]
    assert [r["k"] for r in Rows(rows, ("k",)).stream()] == [1, 2, 3]
    with pytest.raises(DjshareError, match="comes after"):
        list(merge(Rows(rows, ("k",), ordered=True).stream(), [], ["k"], "t"))


class Recorder(Handler):
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def added_students(self, action: Action) -> None:
        self.calls.append(("added_students", action.key))

    def changed_students(self, action: Action) -> None:
        self.calls.append(("changed_students", action.changes))

    def fallback(self, action: Action) -> None:
        self.calls.append(("fallback", (action.kind, action.branch)))


def stores() -> tuple[Datastore, Datastore]:
    need = Datastore({"students": Rows([{"id": 1, "name": "Ann"}, {"id": 2, "name": "Bo"}], ("id",)),
                      "lab.Rooms": Rows([{"room": "a"}], ("room",))})
    have = Datastore({"students": Rows([{"id": 2, "name": "Bob"}, {"id": 3, "name": "Cy"}], ("id",)),
                      "lab.Rooms": Rows([{"room": "b"}], ("room",))}, handler=Recorder())
    return need, have


def test_handler_methods_are_found_by_kind_and_branch_with_a_fallback() -> None:
    need, have = stores()
    assert method_name("added", "lab.Rooms") == "added_lab_rooms"
    assert need >> have == {"added": 2, "removed": 2, "changed": 1}
    assert isinstance(have.handler, Recorder)
    assert have.handler.calls == [("added_students", {"id": 1}), ("changed_students", {"name": ("Bo", "Bob")}),
                                  ("fallback", ("removed", "students")), ("fallback", ("added", "lab.Rooms")),
                                  ("fallback", ("removed", "lab.Rooms"))]


def test_a_handler_without_method_or_fallback_refuses() -> None:
    need, have = stores()
    with pytest.raises(UnhandledAction, match="Handler has no method added_students and no fallback"):
        sync(need, have, Handler())


def test_operators_are_sugar_over_diff(capsys: pytest.CaptureFixture[str]) -> None:
    need, have = stores()
    assert [a.text() for a in need - have] == [a.text() for a in diff(need, have)]
    assert need > have
    printed = capsys.readouterr().out
    assert "+ students (id=1)" in printed and "    name: 'Bob' -> 'Bo'" in printed
    assert "- lab.Rooms (room='b')" in printed
    assert not (need > need)
    with pytest.raises(DjshareError, match="has no handler"):
        _ = have >> need
    with pytest.raises(DjshareError, match="Branches other are on one side only"):
        list(Datastore({**need.branches, "other": Rows([], ("k",))}) - have)


def test_actions_print_as_text_json_and_counts() -> None:
    action = Action("changed", "t", {"id": 1, "day": datetime.date(2024, 1, 2)},
                    {"payload": (Binary(3, "abc"), b"\x00\x01"), "note": (None, "it's")})
    assert action.text().splitlines() == ["~ t (id=1, day=2024-01-02)", "    payload: <2 bytes md5 "
                                          "441077cc9e57554dd476bdfb8b8b8102> -> <3 bytes md5 abc>",
                                          "    note: \"it's\" -> NULL"]
    assert '"day": "2024-01-02"' in action.json() and '"left": null' in action.json()
