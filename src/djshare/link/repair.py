"""Repair: make the outbound table agree with the local table, for some keys or for a whole link.

Repair never copies rows: an interrupted pull is rolled back (re-run `pull` to finish it) or, where the
local rows are complete, marked pulled; local deletions are recorded; local rows without an outbound row
are recorded if their source row exists, and reported if not (a person must decide).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from djshare.link.protocol import Command, Facts, Outbound, State, Step, plan, state_of
from djshare.link.tables import Checkpoint, LocalSide, SourceSide, no_checkpoint

BATCH = 2000


@dataclass
class RepairReport:
    steps: dict[str, int] = field(default_factory=dict)  # step name -> entities it was run for
    stranded: list[bytes] = field(default_factory=list)  # local rows whose source row is gone (key literals)
    checked: int = 0
    dry_run: bool = False

    @property
    def changed(self) -> int:
        return sum(self.steps.values())


def repair_keys(source: SourceSide, local: LocalSide, keys: list[bytes], report: RepairReport,
                checkpoint: Checkpoint = no_checkpoint) -> None:
    """Run REPAIR for one batch of keys. The caller holds the link lock."""
    if not keys:
        return
    states = source.observe(keys)
    present = local.present(keys)
    in_source = source.present(keys)
    facts = {k: Facts(k in in_source, states.get(k), k in present) for k in keys}
    report.checked += len(keys)
    report.stranded += [k for k, f in facts.items() if state_of(f) is State.STRANDED_LOCAL]
    todo = plan(Command.REPAIR, facts)
    for step, step_keys in todo.groups.items():
        report.steps[step.value] = report.steps.get(step.value, 0) + len(step_keys)
        if report.dry_run:
            continue
        with source.transaction(f"repair: {step.value}"):
            if step is Step.REMOVE_OUTBOUND:
                source.remove(step_keys)
            elif step is Step.ADOPT:
                source.record(step_keys, Outbound.PULLED)
            else:
                source.update(step_keys, step)
        checkpoint(step.value)


def repair(source: SourceSide, local: LocalSide, *, dry_run: bool = False,
           on_progress: Callable[[int], None] | None = None, checkpoint: Checkpoint = no_checkpoint,
           batch_size: int = BATCH) -> RepairReport:
    """Repair a whole link: every outbound row of this subscriber, then every local row."""
    report = RepairReport(dry_run=dry_run)
    pages: Iterable[list[bytes]]
    for pages in (source.outbound_pages(batch_size), local.key_pages(batch_size)):
        for page in pages:
            repair_keys(source, local, page, report, checkpoint)
            if on_progress:
                on_progress(len(page))
    return report
