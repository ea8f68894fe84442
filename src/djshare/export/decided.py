"""Which rows of which base tables decide what a DataJoint query returns, as SQL conditions on those tables.

A capture records, for an analysis's fetch, one condition per base table: re-run on a copy that holds the rows
these conditions select (and, after the closure, everything they reference), the query returns what it returned
on the source. That takes more than the tables in the query's FROM clause:

- **semijoins** `A & B`: the rows of B that match a row of the result (without them, `A & B` is empty on the copy);
- **antijoins** `A - B`: the rows of B that match a row of A under A's other restrictions at that level (the rows
  that excluded something: without them, the copy returns rows the source did not);
- **subqueries**, projections with renamed attributes, limits (`dj.Top`), unions: each level is followed down
  with the rows of its output that the level above used, so renamed key attributes select exactly the rows read;
- **aggregations** (`aggr`, `dj.U().aggr`): every row of the grouped tables that belongs to a group in the result,
  so counts and sums come out the same.

DataJoint turns a restriction by a query expression into SQL text when it is applied, so the restricting
expression is no longer in the query's tree. `watch` wraps `QueryExpression.restrict` once per process and
remembers, for each condition text made from query expressions, which expressions made it (negated or not, and the
attributes they matched on). Both DataJoint lines build queries the same way; neither is imported here: the
caller passes its line's classes (`Line`; `installed_line()` reads them from the DataJoint installed here).
"""

from __future__ import annotations

import copy
import inspect
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

REMEMBERED = 4096  # restrictions by query expressions remembered per process (oldest forgotten first)


@dataclass(frozen=True)
class Line:
    """The classes of one DataJoint line that build queries."""

    expression: Any
    aggregation: Any
    union: Any
    not_: Any
    and_list: Any
    promiscuous: Any


@dataclass(frozen=True)
class Part:
    """One query expression inside a restriction: `negate` for an antijoin, `common` the attributes it matched on."""

    negate: bool
    expression: Any
    common: tuple[str, ...]


_lock = threading.Lock()
_remembered: OrderedDict[str, tuple[Part, ...]] = OrderedDict()
_watched: set[Any] = set()


def watch(line: Line) -> None:
    """Remember, from now on, which query expressions each restriction condition of this line was made from."""
    with _lock:
        if line.expression in _watched:
            return
        original = line.expression.restrict

        def restrict(self: Any, restriction: Any, *args: Any, **kwargs: Any) -> Any:
            result = original(self, restriction, *args, **kwargs)
            if result is not self and isinstance(result, line.expression):
                conditions = result._restriction
                parts = tuple(_parts(line, self, restriction, False))
                if parts and conditions and isinstance(conditions[-1], str):
                    _remember(conditions[-1], parts)
            return result

        line.expression.restrict = restrict
        _watched.add(line.expression)


def _remember(condition: str, parts: tuple[Part, ...]) -> None:
    with _lock:
        _remembered[condition] = parts
        _remembered.move_to_end(condition)
        while len(_remembered) > REMEMBERED:
            _remembered.popitem(last=False)


def _recall(condition: Any) -> tuple[Part, ...] | None:
    if not isinstance(condition, str):
        return ()
    with _lock:
        return _remembered.get(condition)


def _parts(line: Line, context: Any, restriction: Any, negate: bool) -> Iterator[Part]:
    while isinstance(restriction, line.not_):
        negate = not negate
        restriction = restriction.restriction
    if isinstance(restriction, line.promiscuous):
        restriction = restriction.operand
    if inspect.isclass(restriction) and issubclass(restriction, line.expression):
        restriction = restriction()
    if isinstance(restriction, line.expression):
        names = set(context.heading.names)
        common = tuple(n for n in restriction.heading.names if n in names)
        if common:  # without common attributes DataJoint evaluates the restriction to True or False at once
            yield Part(negate, restriction, common)
    elif isinstance(restriction, (list, tuple, set, line.and_list)):
        for item in restriction:
            yield from _parts(line, context, item, negate)


@dataclass
class Decided:
    """What `conditions` found: per base table its conditions, and the restrictions it could not see into."""

    conditions: list[tuple[str, str]] = field(default_factory=list)  # (full table name, SQL condition)
    unseen: list[str] = field(default_factory=list)  # SQL with subqueries written by hand or made before `watch`


def installed_line() -> Line:
    """The query classes of the DataJoint line installed here (both lines name them alike)."""
    from datajoint import condition, expression

    return Line(expression.QueryExpression, expression.Aggregation, expression.Union, condition.Not,
                condition.AndList, condition.PromiscuousOperand)


def of(expression: Any) -> Decided:
    """`conditions` for a query of the installed DataJoint line, on its own connection."""
    import datajoint as dj

    connection = expression.connection
    adapter = getattr(connection, "adapter", None)  # DataJoint 2.x; 0.14 speaks MySQL only
    quote = adapter.quote_identifier if adapter is not None else (lambda name: f"`{name}`")
    return conditions(installed_line(), expression, quote,
                      lambda full_name: list(dj.FreeTable(connection, full_name).primary_key))


def conditions(line: Line, expression: Any, quote: Callable[[str], str],
               primary_key: Callable[[str], list[str]]) -> Decided:
    """The conditions, one or more per base table (full name as DataJoint writes it), selecting the rows that decide
    what `expression` returns. `quote` quotes an identifier; `primary_key` gives a base table's key attributes."""
    found = Decided()
    _Walk(line, quote, primary_key, found).level(expression, None)
    found.conditions = list(dict.fromkeys(found.conditions))
    return found


@dataclass
class _Walk:
    line: Line
    quote: Callable[[str], str]
    primary_key: Callable[[str], list[str]]
    found: Decided

    def names(self, names: list[str] | tuple[str, ...]) -> str:
        return ", ".join(self.quote(n) for n in names)

    def level(self, node: Any, limit: str | None) -> None:
        """Record the rows behind `node` whose output rows satisfy `limit` (a condition on its output attributes)."""
        if isinstance(node, self.line.union):
            for argument in node.support:
                self.level(argument, limit)
            return
        self.found.unseen += [a.attribute_expression for a in node.heading.attributes.values()
                              if a.attribute_expression and "select" in a.attribute_expression.lower()]
        aggregated = isinstance(node, self.line.aggregation)
        where = list(node._left_restrict or []) if aggregated else list(node.restriction)
        having = list(node.restriction) if aggregated else []
        chosen = where + [self.selector(node, limit)] if (limit or node._top or having) else where
        for item in node.support:
            if isinstance(item, str):
                key = self.primary_key(item)
                self.found.conditions.append((item, f"({self.names(key)}) IN ({self.rows(node, key, chosen)})"))
            else:
                key = list(item.primary_key)
                self.level(item, f"({self.names(key)}) IN ({self.rows(node, key, chosen)})" if key else limit)
        for condition in where:
            for part in self.parts(condition):
                # an antijoin's rows are the ones that excluded rows allowed by the level's other conditions
                scope = [c for c in where if c is not condition] if part.negate else chosen
                self.level(part.expression, f"({self.names(part.common)}) IN ({self.rows(node, part.common, scope)})")
        for condition in having:
            for part in self.parts(condition):
                if part.negate:
                    others = copy.copy(node)
                    others._restriction = self.line.and_list([c for c in having if c is not condition])
                    output, tail = others.make_sql(), ""
                else:
                    output, tail = node.make_sql(), f" WHERE {limit}" if limit else ""
                common = self.names(part.common)
                self.level(part.expression, f"({common}) IN (SELECT {common} FROM ({output}) AS djshare_h{tail})")

    def parts(self, condition: Any) -> tuple[Part, ...]:
        parts = _recall(condition)
        if parts is None:
            if "select" in condition.lower():
                self.found.unseen.append(condition)
            return ()
        return parts

    def selector(self, node: Any, limit: str | None) -> str:
        """A condition on `node`'s FROM rows: those behind its output rows that satisfy `limit` (after its limits,
        HAVING and projections)."""
        key = list(node.primary_key)
        inner = f"SELECT {self.names(key) or '1'} FROM ({node.make_sql()}) AS djshare_o"
        if limit:
            inner += f" WHERE {limit}"
        if not key:
            return f"EXISTS ({inner})"
        sources = ", ".join(node.heading[k].attribute_expression or self.quote(k) for k in key)
        return f"({sources}) IN ({inner})"

    def rows(self, node: Any, columns: list[str] | tuple[str, ...], conditions: list[str]) -> str:
        """The FROM rows of `node` that satisfy `conditions`, as a SELECT of `columns`."""
        where = " WHERE (" + ")AND(".join(str(c) for c in conditions) + ")" if conditions else ""
        return f"SELECT {self.names(columns)} FROM {node.from_clause()}{where}"
