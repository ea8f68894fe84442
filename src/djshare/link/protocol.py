"""The link protocol: entity states, the transitions between them, and the plan for a batch of keys.

This module is the crash-safety argument in code; it does no I/O. An entity of a link (one primary key
of the source table, seen by one subscriber) is in a state determined by three stored facts:

- is the row in the source table (source server)?
- what does the outbound row say (source server; absent, or its `state` column)?
- is the row in the local table (local server)?

Every step changes one of those facts on one server in one transaction. Commands (pull, a local
deletion, a deletion request, finishing a deletion, repair) are sequences of steps. Because the
outbound row is always written before the local row is inserted, and the local row is always deleted
before the outbound row is removed, a crash between any two steps leaves a state in which every local
row has an outbound row; `repair` (or re-running the command) takes every such state to a consistent one.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, replace
from enum import Enum, StrEnum
from typing import Generic, TypeVar


class Outbound(StrEnum):
    """Values of the outbound table's `state` column (absent row: `None`)."""

    PULLING = "pulling"
    PULLED = "pulled"
    DELETION_REQUESTED = "deletion_requested"
    DELETION_APPROVED = "deletion_approved"


class State(Enum):
    """The state of one entity of a link, for one subscriber."""

    IDLE = "idle"  # in the source only: may be pulled
    PULLING = "pulling"  # outbound row written, local insert not done yet (pull under way or crashed)
    PULLING_COPIED = "pulling_copied"  # local row inserted, outbound not yet marked pulled
    PULLED = "pulled"
    LOCAL_DELETED = "local_deleted"  # local row gone, outbound row not yet removed
    DELETION_REQUESTED = "deletion_requested"
    REQUESTED_LOCAL_DELETED = "requested_local_deleted"  # deleted locally, approval not yet written
    DELETION_APPROVED = "deletion_approved"
    APPROVED_LOCAL_PRESENT = "approved_local_present"  # a local row came back after approval
    ORPHAN_LOCAL = "orphan_local"  # local row without outbound row: integrity violation
    STRANDED_LOCAL = "stranded_local"  # local row whose source row is gone: integrity violation
    GONE = "gone"  # nowhere


class Command(Enum):
    PULL = "pull"  # local side
    DELETE_LOCAL = "delete_local"  # local side: a scientist deletes local rows
    REQUEST_DELETION = "request_deletion"  # source side
    FINISH_DELETION = "finish_deletion"  # source side
    REPAIR = "repair"  # local side: make the outbound table agree with the local table


class Server(Enum):
    SOURCE = "source"
    LOCAL = "local"


class Step(Enum):
    """One change to one server in one transaction. Declared in execution order."""

    RECORD_PULLING = "record_pulling"
    ADOPT = "adopt"
    INSERT_LOCAL = "insert_local"
    MARK_PULLED = "mark_pulled"
    REQUEST_DELETION = "request_deletion"
    DELETE_LOCAL = "delete_local"
    REMOVE_OUTBOUND = "remove_outbound"
    APPROVE_DELETION = "approve_deletion"
    REVERT_TO_REQUESTED = "revert_to_requested"
    FINISH_DELETION = "finish_deletion"


STEP_SERVER: dict[Step, Server] = {
    Step.RECORD_PULLING: Server.SOURCE,  # INSERT outbound rows, state pulling
    Step.ADOPT: Server.SOURCE,  # INSERT outbound rows, state pulled, for local rows that had none
    Step.INSERT_LOCAL: Server.LOCAL,  # INSERT masters and their parts
    Step.MARK_PULLED: Server.SOURCE,  # UPDATE pulling -> pulled
    Step.REQUEST_DELETION: Server.SOURCE,  # UPDATE pulling/pulled -> deletion_requested
    Step.DELETE_LOCAL: Server.LOCAL,  # DELETE masters and their parts
    Step.REMOVE_OUTBOUND: Server.SOURCE,  # DELETE outbound rows
    Step.APPROVE_DELETION: Server.SOURCE,  # UPDATE deletion_requested -> deletion_approved
    Step.REVERT_TO_REQUESTED: Server.SOURCE,  # UPDATE deletion_approved -> deletion_requested
    Step.FINISH_DELETION: Server.SOURCE,  # DELETE outbound row, then the source row
}


@dataclass(frozen=True)
class Facts:
    """What is stored about one entity, for one subscriber."""

    source: bool
    outbound: Outbound | None
    local: bool


# The state <-> stored facts table (docs/link-states.md is generated from it).
STATE_FACTS: dict[State, Facts] = {
    State.IDLE: Facts(True, None, False),
    State.PULLING: Facts(True, Outbound.PULLING, False),
    State.PULLING_COPIED: Facts(True, Outbound.PULLING, True),
    State.PULLED: Facts(True, Outbound.PULLED, True),
    State.LOCAL_DELETED: Facts(True, Outbound.PULLED, False),
    State.DELETION_REQUESTED: Facts(True, Outbound.DELETION_REQUESTED, True),
    State.REQUESTED_LOCAL_DELETED: Facts(True, Outbound.DELETION_REQUESTED, False),
    State.DELETION_APPROVED: Facts(True, Outbound.DELETION_APPROVED, False),
    State.APPROVED_LOCAL_PRESENT: Facts(True, Outbound.DELETION_APPROVED, True),
    State.ORPHAN_LOCAL: Facts(True, None, True),
    State.STRANDED_LOCAL: Facts(False, None, True),
    State.GONE: Facts(False, None, False),
}
_STATE_OF_FACTS: dict[Facts, State] = {facts: state for state, facts in STATE_FACTS.items()}

# States in which a local row has no outbound row. No step sequence of djshare leads into them.
VIOLATIONS = frozenset({State.ORPHAN_LOCAL, State.STRANDED_LOCAL})


class ProtocolError(Exception):
    """Base of the protocol's own errors (the edge wraps them in djshare errors)."""


class UnknownStateError(ProtocolError):
    def __init__(self, facts: Facts) -> None:
        super().__init__(
            f"no link state has these stored facts: source row {facts.source}, outbound {facts.outbound}, "
            f"local row {facts.local} (an outbound row cannot exist without its source row)"
        )
        self.facts = facts


def state_of(facts: Facts) -> State:
    try:
        return _STATE_OF_FACTS[facts]
    except KeyError:
        raise UnknownStateError(facts) from None


@dataclass(frozen=True)
class Transition:
    """What a command does to an entity in a state: the next state and the steps, in order.

    `steps == ()` means the command leaves the entity alone; `note` says why.
    """

    next_state: State
    steps: tuple[Step, ...]
    note: str = ""


def _stay(state: State, note: str) -> Transition:
    return Transition(state, (), note)


S, C, P = State, Command, Step
_PULL = (P.RECORD_PULLING, P.INSERT_LOCAL, P.MARK_PULLED)

# The transition table: (state, command) -> transition. Every pair is listed.
TRANSITIONS: dict[tuple[State, Command], Transition] = {
    # --- pull (local side): only entities in the source, not already held, not up for deletion
    (S.IDLE, C.PULL): Transition(S.PULLED, _PULL),
    (S.PULLING, C.PULL): Transition(S.PULLED, (P.INSERT_LOCAL, P.MARK_PULLED), "resumes an interrupted pull"),
    (S.PULLING_COPIED, C.PULL): Transition(S.PULLED, (P.MARK_PULLED,), "finishes an interrupted pull"),
    (S.PULLED, C.PULL): _stay(S.PULLED, "already pulled"),
    (S.LOCAL_DELETED, C.PULL): Transition(S.PULLED, (P.INSERT_LOCAL,), "local row was deleted outside djshare"),
    (S.DELETION_REQUESTED, C.PULL): _stay(S.DELETION_REQUESTED, "already pulled"),
    (S.REQUESTED_LOCAL_DELETED, C.PULL): _stay(S.REQUESTED_LOCAL_DELETED, "deletion requested: not pulled"),
    (S.DELETION_APPROVED, C.PULL): _stay(S.DELETION_APPROVED, "deletion approved: not pulled"),
    (S.APPROVED_LOCAL_PRESENT, C.PULL): _stay(S.APPROVED_LOCAL_PRESENT, "deletion approved: not pulled"),
    (S.ORPHAN_LOCAL, C.PULL): Transition(S.PULLED, (P.ADOPT,), "local row had no outbound row: recorded"),
    (S.STRANDED_LOCAL, C.PULL): _stay(S.STRANDED_LOCAL, "not in the source"),
    (S.GONE, C.PULL): _stay(S.GONE, "not in the source"),
    # --- local deletion (local side): the local row goes first, then the outbound row follows
    (S.IDLE, C.DELETE_LOCAL): _stay(S.IDLE, "no local row"),
    (S.PULLING, C.DELETE_LOCAL): _stay(S.PULLING, "no local row"),
    (S.PULLING_COPIED, C.DELETE_LOCAL): Transition(S.IDLE, (P.DELETE_LOCAL, P.REMOVE_OUTBOUND)),
    (S.PULLED, C.DELETE_LOCAL): Transition(S.IDLE, (P.DELETE_LOCAL, P.REMOVE_OUTBOUND)),
    (S.LOCAL_DELETED, C.DELETE_LOCAL): _stay(S.LOCAL_DELETED, "no local row"),
    (S.DELETION_REQUESTED, C.DELETE_LOCAL): Transition(S.DELETION_APPROVED, (P.DELETE_LOCAL, P.APPROVE_DELETION)),
    (S.REQUESTED_LOCAL_DELETED, C.DELETE_LOCAL): _stay(S.REQUESTED_LOCAL_DELETED, "no local row"),
    (S.DELETION_APPROVED, C.DELETE_LOCAL): _stay(S.DELETION_APPROVED, "no local row"),
    (S.APPROVED_LOCAL_PRESENT, C.DELETE_LOCAL): Transition(S.DELETION_APPROVED, (P.DELETE_LOCAL,)),
    (S.ORPHAN_LOCAL, C.DELETE_LOCAL): Transition(S.IDLE, (P.DELETE_LOCAL,)),
    (S.STRANDED_LOCAL, C.DELETE_LOCAL): Transition(S.GONE, (P.DELETE_LOCAL,)),
    (S.GONE, C.DELETE_LOCAL): _stay(S.GONE, "no local row"),
    # --- deletion request (source side: sees only the outbound row)
    (S.IDLE, C.REQUEST_DELETION): _stay(S.IDLE, "not held by this subscriber"),
    (S.PULLING, C.REQUEST_DELETION): Transition(S.REQUESTED_LOCAL_DELETED, (P.REQUEST_DELETION,)),
    (S.PULLING_COPIED, C.REQUEST_DELETION): Transition(S.DELETION_REQUESTED, (P.REQUEST_DELETION,)),
    (S.PULLED, C.REQUEST_DELETION): Transition(S.DELETION_REQUESTED, (P.REQUEST_DELETION,)),
    (S.LOCAL_DELETED, C.REQUEST_DELETION): Transition(S.REQUESTED_LOCAL_DELETED, (P.REQUEST_DELETION,)),
    (S.DELETION_REQUESTED, C.REQUEST_DELETION): _stay(S.DELETION_REQUESTED, "already requested"),
    (S.REQUESTED_LOCAL_DELETED, C.REQUEST_DELETION): _stay(S.REQUESTED_LOCAL_DELETED, "already requested"),
    (S.DELETION_APPROVED, C.REQUEST_DELETION): _stay(S.DELETION_APPROVED, "already approved"),
    (S.APPROVED_LOCAL_PRESENT, C.REQUEST_DELETION): _stay(S.APPROVED_LOCAL_PRESENT, "already approved"),
    (S.ORPHAN_LOCAL, C.REQUEST_DELETION): _stay(S.ORPHAN_LOCAL, "not held by this subscriber"),
    (S.STRANDED_LOCAL, C.REQUEST_DELETION): _stay(S.STRANDED_LOCAL, "not in the source"),
    (S.GONE, C.REQUEST_DELETION): _stay(S.GONE, "not in the source"),
    # --- finishing a deletion (source side): only approved entities
    (S.IDLE, C.FINISH_DELETION): _stay(S.IDLE, "not approved"),
    (S.PULLING, C.FINISH_DELETION): _stay(S.PULLING, "not approved"),
    (S.PULLING_COPIED, C.FINISH_DELETION): _stay(S.PULLING_COPIED, "not approved"),
    (S.PULLED, C.FINISH_DELETION): _stay(S.PULLED, "not approved"),
    (S.LOCAL_DELETED, C.FINISH_DELETION): _stay(S.LOCAL_DELETED, "not approved"),
    (S.DELETION_REQUESTED, C.FINISH_DELETION): _stay(S.DELETION_REQUESTED, "not approved"),
    (S.REQUESTED_LOCAL_DELETED, C.FINISH_DELETION): _stay(S.REQUESTED_LOCAL_DELETED, "not approved"),
    (S.DELETION_APPROVED, C.FINISH_DELETION): Transition(S.GONE, (P.FINISH_DELETION,)),
    # Only a local row put back by hand after approval gets here (no djshare step does): the source
    # cannot see it, so it loses its source row. `repair` before finishing withdraws the approval.
    (S.APPROVED_LOCAL_PRESENT, C.FINISH_DELETION): Transition(S.STRANDED_LOCAL, (P.FINISH_DELETION,),
                                                             "local row put back by hand after approval"),
    (S.ORPHAN_LOCAL, C.FINISH_DELETION): _stay(S.ORPHAN_LOCAL, "not approved"),
    (S.STRANDED_LOCAL, C.FINISH_DELETION): _stay(S.STRANDED_LOCAL, "not in the source"),
    (S.GONE, C.FINISH_DELETION): _stay(S.GONE, "not in the source"),
    # --- repair (local side): make the outbound table agree with the local table; never copies rows
    (S.IDLE, C.REPAIR): _stay(S.IDLE, "consistent"),
    (S.PULLING, C.REPAIR): Transition(S.IDLE, (P.REMOVE_OUTBOUND,), "interrupted pull rolled back"),
    (S.PULLING_COPIED, C.REPAIR): Transition(S.PULLED, (P.MARK_PULLED,), "interrupted pull completed"),
    (S.PULLED, C.REPAIR): _stay(S.PULLED, "consistent"),
    (S.LOCAL_DELETED, C.REPAIR): Transition(S.IDLE, (P.REMOVE_OUTBOUND,), "local deletion recorded"),
    (S.DELETION_REQUESTED, C.REPAIR): _stay(S.DELETION_REQUESTED, "consistent"),
    (S.REQUESTED_LOCAL_DELETED, C.REPAIR): Transition(S.DELETION_APPROVED, (P.APPROVE_DELETION,),
                                                      "local deletion approved"),
    (S.DELETION_APPROVED, C.REPAIR): _stay(S.DELETION_APPROVED, "consistent"),
    (S.APPROVED_LOCAL_PRESENT, C.REPAIR): Transition(S.DELETION_REQUESTED, (P.REVERT_TO_REQUESTED,),
                                                     "local row present again: approval withdrawn"),
    (S.ORPHAN_LOCAL, C.REPAIR): Transition(S.PULLED, (P.ADOPT,), "local row had no outbound row: recorded"),
    (S.STRANDED_LOCAL, C.REPAIR): _stay(S.STRANDED_LOCAL, "local row whose source row is gone: needs a person"),
    (S.GONE, C.REPAIR): _stay(S.GONE, "consistent"),
}

SOURCE_SIDE_COMMANDS = frozenset({Command.REQUEST_DELETION, Command.FINISH_DELETION})


def transition(state: State, command: Command) -> Transition:
    try:
        return TRANSITIONS[(state, command)]
    except KeyError:
        raise UnknownStateError(STATE_FACTS.get(state, Facts(False, None, False))) from None


# Guards: a step changes the outbound row only if it is in one of these states (`None`: absent). The
# edge writes them into each statement's WHERE clause, so a step that a concurrent source-side command
# overtook changes nothing instead of something wrong.
STEP_GUARD: dict[Step, frozenset[Outbound | None]] = {
    Step.RECORD_PULLING: frozenset({None}),
    Step.ADOPT: frozenset({None}),
    Step.MARK_PULLED: frozenset({Outbound.PULLING}),
    Step.REQUEST_DELETION: frozenset({Outbound.PULLING, Outbound.PULLED}),
    Step.REMOVE_OUTBOUND: frozenset({Outbound.PULLING, Outbound.PULLED}),
    Step.APPROVE_DELETION: frozenset({Outbound.DELETION_REQUESTED}),
    Step.REVERT_TO_REQUESTED: frozenset({Outbound.DELETION_APPROVED}),
    Step.FINISH_DELETION: frozenset({Outbound.DELETION_APPROVED}),
}


def apply_step(facts: Facts, step: Step) -> Facts:
    """What one step does to the stored facts: the model the edge implements in SQL."""
    guard = STEP_GUARD.get(step)
    if guard is not None and facts.outbound not in guard:
        return facts
    if step is Step.INSERT_LOCAL:
        return replace(facts, local=True)
    if step is Step.DELETE_LOCAL:
        return replace(facts, local=False)
    if step is Step.FINISH_DELETION:
        return replace(facts, outbound=None, source=False)
    new_outbound: dict[Step, Outbound | None] = {
        Step.RECORD_PULLING: Outbound.PULLING,
        Step.ADOPT: Outbound.PULLED,
        Step.MARK_PULLED: Outbound.PULLED,
        Step.REQUEST_DELETION: Outbound.DELETION_REQUESTED,
        Step.REMOVE_OUTBOUND: None,
        Step.APPROVE_DELETION: Outbound.DELETION_APPROVED,
        Step.REVERT_TO_REQUESTED: Outbound.DELETION_REQUESTED,
    }
    return replace(facts, outbound=new_outbound[step])


Key = TypeVar("Key", bound=Hashable)


@dataclass
class Plan(Generic[Key]):
    """The steps to run for a batch of keys, grouped by step, in execution order.

    The edge runs each group as one statement (or one transaction) on the step's server.
    """

    groups: dict[Step, list[Key]]
    notes: dict[str, int]

    def keys(self, step: Step) -> list[Key]:
        return self.groups.get(step, [])

    def __bool__(self) -> bool:
        return any(self.groups.values())


def plan(command: Command, facts: Mapping[Key, Facts]) -> Plan[Key]:
    """Decide what `command` does to each key of a batch, from the facts observed for that batch."""
    groups: dict[Step, list[Key]] = {}
    notes: dict[str, int] = {}
    for key, observed in facts.items():
        move = transition(state_of(observed), command)
        for step in move.steps:
            groups.setdefault(step, []).append(key)
        if not move.steps and move.note:
            notes[move.note] = notes.get(move.note, 0) + 1
    ordered = {step: groups[step] for step in Step if step in groups}
    return Plan(ordered, notes)


def counts_by_state(facts: Iterable[Facts]) -> dict[State, int]:
    result: dict[State, int] = {}
    for observed in facts:
        state = state_of(observed)
        result[state] = result.get(state, 0) + 1
    return result
