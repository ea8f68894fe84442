"""The finished-deletion cascade, as data: which tables, in which order, with which conditions."""

from __future__ import annotations

from djshare.link.cascade import deletions, descendants
from djshare.sql.catalog import ForeignKey

S = "lab"
SESSION, SCAN, CHANNEL, UNIT, PAIR, OUT = ((S, n) for n in
                                          ("session", "__scan", "__scan__channel", "__unit", "__pair", "session_out"))
KEYS = [
    ForeignKey(SCAN, SESSION, (("subject", "subject"), ("session", "session"))),
    ForeignKey(CHANNEL, SCAN, (("subject", "subject"), ("session", "session"))),
    ForeignKey(UNIT, SESSION, (("subject", "subject"), ("session", "session"))),
    # a diamond: pair depends on a scan and (renamed) on a unit
    ForeignKey(PAIR, SCAN, (("subject", "subject"), ("session", "session"))),
    ForeignKey(PAIR, UNIT, (("subject", "subject"), ("other_session", "session"))),
    ForeignKey(OUT, SESSION, (("subject", "subject"), ("session", "session"))),  # an outbound table
    ForeignKey(("other", "unrelated"), ("other", "parent"), (("x", "x"),)),
]


def test_descendants_are_ordered_parents_first_and_skip_outbound_tables() -> None:
    order = descendants(SESSION, KEYS, excluded={OUT})
    assert order[0] == SESSION and set(order) == {SESSION, SCAN, CHANNEL, UNIT, PAIR}
    for fk in KEYS:
        if fk.child in order and fk.parent in order:
            assert order.index(fk.parent) < order.index(fk.child)


def test_deletions_run_children_first_with_semijoin_conditions() -> None:
    statements = dict(deletions(SESSION, b"K", KEYS, excluded={OUT}))
    order = [table for table, _ in deletions(SESSION, b"K", KEYS, excluded={OUT})]
    assert order[-1] == "`lab`.`session`" and order.index("`lab`.`__pair`") < order.index("`lab`.`__scan`")
    assert statements["`lab`.`session`"] == b"K"
    assert statements["`lab`.`__scan`"] == b"((`subject`, `session`) IN (SELECT `subject`, `session` FROM " \
                                          b"`lab`.`session` WHERE K))"
    pair = statements["`lab`.`__pair`"]
    assert b"FROM `lab`.`__scan` WHERE" in pair and b" OR " in pair
    assert b"(`subject`, `other_session`) IN (SELECT `subject`, `session` FROM `lab`.`__unit`" in pair
    assert "`lab`.`session_out`" not in statements
