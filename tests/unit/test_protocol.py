"""Exhaustive tests of the pure link protocol: every state x every command, every crash point, and
every interleaving of a local-side command with source-side commands."""

from __future__ import annotations

import itertools

import pytest

from djshare.link.protocol import (
    SOURCE_SIDE_COMMANDS,
    STATE_FACTS,
    STEP_SERVER,
    TRANSITIONS,
    VIOLATIONS,
    Command,
    Facts,
    Outbound,
    Server,
    State,
    Step,
    UnknownStateError,
    apply_step,
    plan,
    state_of,
    transition,
)

LOCAL_SIDE_COMMANDS = [c for c in Command if c not in SOURCE_SIDE_COMMANDS]
ALL_PAIRS = list(itertools.product(State, Command))


def run(state: State, steps: tuple[Step, ...]) -> State:
    facts = STATE_FACTS[state]
    for step in steps:
        facts = apply_step(facts, step)
    return state_of(facts)


def reachable_states() -> set[State]:
    """States djshare's own commands reach from an entity that is only in the source, counting every
    crash point (every prefix of a command's steps)."""
    seen = {State.IDLE}
    frontier = [State.IDLE]
    while frontier:
        state = frontier.pop()
        for command in Command:
            steps = transition(state, command).steps
            for cut in range(1, len(steps) + 1):
                after = run(state, steps[:cut])
                if after not in seen:
                    seen.add(after)
                    frontier.append(after)
    return seen


def test_every_state_command_pair_is_in_the_table() -> None:
    assert set(TRANSITIONS) == set(ALL_PAIRS)


def test_states_and_facts_are_one_to_one() -> None:
    assert len(set(STATE_FACTS.values())) == len(State)
    for state, facts in STATE_FACTS.items():
        assert state_of(facts) is state


@pytest.mark.parametrize("outbound", list(Outbound))
@pytest.mark.parametrize("local", [True, False])
def test_outbound_row_without_source_row_is_a_named_error(outbound: Outbound, local: bool) -> None:
    with pytest.raises(UnknownStateError, match="outbound row cannot exist without its source row"):
        state_of(Facts(False, outbound, local))


@pytest.mark.parametrize(("state", "command"), ALL_PAIRS)
def test_steps_lead_to_the_next_state(state: State, command: Command) -> None:
    move = transition(state, command)
    assert run(state, move.steps) is move.next_state


@pytest.mark.parametrize(("state", "command"), ALL_PAIRS)
def test_commands_that_do_nothing_change_nothing_and_say_why(state: State, command: Command) -> None:
    move = transition(state, command)
    if not move.steps:
        assert move.next_state is state
        assert move.note


@pytest.mark.parametrize(("state", "command"), ALL_PAIRS)
def test_steps_run_in_declared_order(state: State, command: Command) -> None:
    """Plans run step groups in `Step` order, so each key's steps must already be in that order."""
    order = list(Step)
    steps = transition(state, command).steps
    assert [order.index(s) for s in steps] == sorted(order.index(s) for s in steps)


@pytest.mark.parametrize(("state", "command"), ALL_PAIRS)
def test_side_of_each_command_matches_its_steps(state: State, command: Command) -> None:
    servers = {STEP_SERVER[s] for s in transition(state, command).steps}
    if command in SOURCE_SIDE_COMMANDS:
        assert servers <= {Server.SOURCE}


@pytest.mark.parametrize("command", sorted(SOURCE_SIDE_COMMANDS, key=lambda c: c.value))
def test_source_side_commands_decide_on_what_the_source_can_see(command: Command) -> None:
    """The source server cannot see local rows: states that differ only in the local row get the same steps."""
    for first, second in itertools.combinations(State, 2):
        a, b = STATE_FACTS[first], STATE_FACTS[second]
        if (a.source, a.outbound) == (b.source, b.outbound):
            assert transition(first, command).steps == transition(second, command).steps


def test_djshare_never_reaches_a_violation_even_when_it_crashes() -> None:
    reached = reachable_states()
    assert not reached & VIOLATIONS
    assert {State.PULLED, State.DELETION_REQUESTED, State.DELETION_APPROVED, State.GONE} <= reached


def repaired(state: State) -> State:
    return run(state, transition(state, Command.REPAIR).steps)


@pytest.mark.parametrize("state", sorted(reachable_states(), key=lambda s: s.value))
@pytest.mark.parametrize("command", LOCAL_SIDE_COMMANDS)
def test_crash_at_any_step_then_repair_and_rerun_converges(state: State, command: Command) -> None:
    """Crash after any prefix of the steps; `repair`, re-run, `repair` ends where the uninterrupted
    command followed by `repair` ends, and repair always reaches a fixed point."""
    move = transition(state, command)
    expected = repaired(move.next_state)
    for cut in range(len(move.steps) + 1):
        crashed = run(state, move.steps[:cut])
        assert crashed not in VIOLATIONS
        after_repair = repaired(crashed)
        assert transition(after_repair, Command.REPAIR).steps == ()
        assert repaired(run(after_repair, transition(after_repair, command).steps)) is expected


@pytest.mark.parametrize("state", [State.PULLING, State.PULLING_COPIED, State.IDLE])
def test_rerunning_pull_alone_converges(state: State) -> None:
    assert run(state, transition(state, Command.PULL).steps) is State.PULLED


def test_repair_fixes_every_crash_state_of_a_deletion() -> None:
    assert run(State.LOCAL_DELETED, transition(State.LOCAL_DELETED, Command.REPAIR).steps) is State.IDLE
    after = run(State.REQUESTED_LOCAL_DELETED, transition(State.REQUESTED_LOCAL_DELETED, Command.REPAIR).steps)
    assert after is State.DELETION_APPROVED


def _interleavings(state: State, command: Command, source_commands: int) -> list[State]:
    """Run `command`'s steps (planned from `state`, as the edge does: observe, then act) with up to
    `source_commands` source-side commands slipped in between any two steps. Returns every end state."""
    finals: list[State] = []
    planned = transition(state, command).steps

    def explore(facts: Facts, remaining: tuple[Step, ...], budget: int) -> None:
        assert state_of(facts) not in VIOLATIONS, (state, command, facts)
        if budget:
            for other in SOURCE_SIDE_COMMANDS:
                steps = transition(state_of(facts), other).steps
                after = facts
                for step in steps:
                    after = apply_step(after, step)
                if steps:
                    explore(after, remaining, budget - 1)
        if remaining:
            explore(apply_step(facts, remaining[0]), remaining[1:], budget)
        else:
            finals.append(state_of(facts))

    explore(STATE_FACTS[state], planned, source_commands)
    return finals


@pytest.mark.parametrize("state", sorted(reachable_states(), key=lambda s: s.value))
@pytest.mark.parametrize("command", LOCAL_SIDE_COMMANDS)
def test_source_side_commands_during_a_local_command_never_break_integrity(state: State, command: Command) -> None:
    for final in _interleavings(state, command, source_commands=2):
        repaired = run(final, transition(final, Command.REPAIR).steps)
        assert repaired not in VIOLATIONS
        assert transition(repaired, Command.REPAIR).steps == ()


def test_plan_groups_a_batch_by_step_in_execution_order() -> None:
    facts = {
        (1,): STATE_FACTS[State.IDLE],
        (2,): STATE_FACTS[State.PULLING],
        (3,): STATE_FACTS[State.PULLING_COPIED],
        (4,): STATE_FACTS[State.PULLED],
        (5,): STATE_FACTS[State.DELETION_APPROVED],
    }
    result = plan(Command.PULL, facts)
    assert list(result.groups) == [Step.RECORD_PULLING, Step.INSERT_LOCAL, Step.MARK_PULLED]
    assert result.keys(Step.RECORD_PULLING) == [(1,)]
    assert result.keys(Step.INSERT_LOCAL) == [(1,), (2,)]
    assert result.keys(Step.MARK_PULLED) == [(1,), (2,), (3,)]
    assert result.notes == {"already pulled": 1, "deletion approved: not pulled": 1}
    assert result


def test_plan_of_nothing_to_do_is_empty() -> None:
    result = plan(Command.REPAIR, {(1,): STATE_FACTS[State.PULLED]})
    assert not result
    assert result.keys(Step.MARK_PULLED) == []


def test_guards_make_overtaken_steps_change_nothing() -> None:
    requested = STATE_FACTS[State.REQUESTED_LOCAL_DELETED]
    assert apply_step(requested, Step.REMOVE_OUTBOUND) == requested
    assert apply_step(requested, Step.MARK_PULLED) == requested
    assert apply_step(STATE_FACTS[State.PULLED], Step.FINISH_DELETION) == STATE_FACTS[State.PULLED]
