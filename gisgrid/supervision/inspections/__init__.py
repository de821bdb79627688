"""Inspection rounds against the database: plan, record findings, end and score, patrol coverage.

Every function takes a connection and works in the caller's transaction.
Which rounds a user sees is :func:`gisgrid.accounts.scope.round_visible_sql`
(``Scope.round_sql``): a round outside it answers :class:`NotFound` (404),
exactly like one that does not exist — an unannounced round (暗访) is hidden
from the inspected until it ends.  The rules themselves (the plan's checks,
the sample draw, the scores) are pure, in :mod:`gisgrid.supervision.inspection`.

A finding is a case (:func:`gisgrid.cases.store.create_case`), routed like any
other, with ``report.source`` ``inspection`` (督查) or ``unannounced`` (暗访)
and ``report.inspection_round_id``; the ``inspection_finding`` row keeps its
checklist item and the units it counts against, frozen when it is recorded.
Ending a round writes ``inspection_score`` (one row per unit), read by
:func:`round_scores`.

One concern a module, every public name importable from here:

- :mod:`~gisgrid.supervision.inspections.checklist`: the checklist and its deductions;
- :mod:`~gisgrid.supervision.inspections.planning`: planning a round (scope, inspectors, sample);
- :mod:`~gisgrid.supervision.inspections.rounds`: reading rounds, their units, findings and scores;
- :mod:`~gisgrid.supervision.inspections.findings`: recording findings;
- :mod:`~gisgrid.supervision.inspections.scores`: ending a round and the stored scores;
- :mod:`~gisgrid.supervision.inspections.patrol`: patrol check-ins and coverage.
"""

from gisgrid.supervision.inspections.checklist import checklist, ensure_checklist, update_checklist
from gisgrid.supervision.inspections.findings import record_finding, store_finding
from gisgrid.supervision.inspections.patrol import (
    VISITS_SQL,
    cases_client_id_ok,
    coverage,
    coverage_towns,
    month_bounds,
    record_checkin,
)
from gisgrid.supervision.inspections.planning import cells_by_code, inspector_choices, plan_round, scope_choices
from gisgrid.supervision.inspections.rounds import (
    get_round,
    is_open,
    list_rounds,
    open_rounds_for,
    round_findings,
    round_score_table,
    round_targets,
)
from gisgrid.supervision.inspections.scores import end_round, round_scores

__all__ = [
    "VISITS_SQL",
    "cases_client_id_ok",
    "cells_by_code",
    "checklist",
    "coverage",
    "coverage_towns",
    "end_round",
    "ensure_checklist",
    "get_round",
    "inspector_choices",
    "is_open",
    "list_rounds",
    "month_bounds",
    "open_rounds_for",
    "plan_round",
    "record_checkin",
    "record_finding",
    "round_findings",
    "round_score_table",
    "round_scores",
    "round_targets",
    "scope_choices",
    "store_finding",
    "update_checklist",
]
