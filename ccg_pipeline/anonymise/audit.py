"""What an attacker can derive about hidden and perturbed cells, by linear programming.

The attacker's knowledge is written as a linear system over the true values of the cells: a box
per cell (from the published value and the published noise bounds, or [0, oo) for a hidden one),
equalities that always hold between true values (a stock is last quarter's stock plus the new
minus the ceased), and inequalities (completed requests never exceed received ones). For every
cell, and for every derived quantity an attack would target (a flow worked out from two stocks),
the smallest and largest value consistent with all of it is the interval the attacker can narrow
it to: two LPs each (HiGHS, through SciPy), as tau-Argus audits a suppression pattern.

Only cells tied together by a constraint need an LP: the system is split into connected
components, a lone cell's interval is its box, and within a component every LP solution found is
used to skip the bounds it already reaches (optimisation-based bound tightening), so most cells
cost no LP of their own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linprog
from scipy.sparse import csr_matrix, hstack, identity, vstack
from scipy.sparse.csgraph import connected_components

# Upper bound for a cell the attacker knows nothing about (a suppressed one): large, but finite
# so that every LP is bounded.
UNBOUNDED = 1e9
_TOLERANCE = 1e-6
# Solutions of random objectives the interval search starts from: each is a point the attacker
# cannot exclude, and in a large component a dozen of them already spread most cells wider than
# the protection width, so few cells need LPs of their own (at demo size 126 LPs instead of
# 1,278 with two).
MOST_RANDOM_POINTS = 12

Terms = dict[int, float]


@dataclass
class AttackerView:
    """The attacker's linear knowledge about one or more published tables."""

    names: list[str] = field(default_factory=list)  # "table[dimensions].column", no values
    lower: list[float] = field(default_factory=list)
    upper: list[float] = field(default_factory=list)
    equalities: list[Terms] = field(default_factory=list)  # sum(coef * x) == 0
    # Identities that held when their cells were computed together but may have been broken
    # between releases (cells of periods frozen at different times): used while the published
    # values agree with them, dropped where they do not.
    soft_equalities: list[Terms] = field(default_factory=list)
    inequalities: list[Terms] = field(default_factory=list)  # sum(coef * x) <= 0
    derived: list[tuple[str, Terms]] = field(default_factory=list)
    # Variables that stand for published constants (a count of records in another table): they
    # enter identities but are not cells to protect.
    constants: set[int] = field(default_factory=set)

    def cell(self, name: str, lower: float, upper: float) -> int:
        self.names.append(name)
        self.lower.append(lower)
        self.upper.append(upper)
        return len(self.names) - 1

    def constant(self, name: str, lower: float, upper: float | None = None) -> int:
        """A published figure of another table (or a range around one) that enters identities
        but is not itself a cell to protect."""
        variable = self.cell(name, lower, lower if upper is None else upper)
        self.constants.add(variable)
        return variable


@dataclass(frozen=True)
class Interval:
    name: str
    lower: float
    upper: float

    @property
    def width(self) -> float:
        return self.upper - self.lower


@dataclass
class AuditResult:
    intervals: list[Interval]
    lp_solves: int = 0
    # Components whose published values no assignment within the noise bounds reconciles with
    # the identities that must hold: the method was not followed, so nothing about them can be
    # vouched for. One name per component (its first cell).
    inconsistent: list[str] = field(default_factory=list)
    # Components where soft identities had to be dropped to reconcile the published values, and
    # how many were dropped (the fewest that must go; the others are kept).
    relaxed_components: int = 0
    dropped_identities: int = 0

    def narrowest(self) -> Interval | None:
        return min(self.intervals, key=lambda i: i.width, default=None)

    def narrower_than(self, width: float) -> list[Interval]:
        return [i for i in self.intervals if i.width < width]


def _matrix(rows: list[Terms], columns: dict[int, int]) -> csr_matrix | None:
    if not rows:
        return None
    data, row_index, col_index = [], [], []
    for r, terms in enumerate(rows):
        for var, coef in terms.items():
            data.append(coef)
            row_index.append(r)
            col_index.append(columns[var])
    return csr_matrix((data, (row_index, col_index)), shape=(len(rows), len(columns)))


class _Infeasible(Exception):
    pass


@dataclass
class _Component:
    variables: list[int]
    equalities: list[Terms]
    inequalities: list[Terms]
    lower: np.ndarray
    upper: np.ndarray
    solves: int = 0

    def __post_init__(self) -> None:
        self.columns = {v: i for i, v in enumerate(self.variables)}
        self.a_eq = _matrix(self.equalities, self.columns)
        self.a_ub = _matrix(self.inequalities, self.columns)
        self.bounds = np.column_stack([self.lower, self.upper])

    def solve(self, objective: np.ndarray) -> np.ndarray:
        self.solves += 1
        result = linprog(
            objective,
            A_ub=self.a_ub,
            b_ub=None if self.a_ub is None else np.zeros(self.a_ub.shape[0]),
            A_eq=self.a_eq,
            b_eq=None if self.a_eq is None else np.zeros(self.a_eq.shape[0]),
            bounds=self.bounds,
            method="highs",
        )
        if result.status == 2:
            raise _Infeasible
        if result.status != 0:
            raise RuntimeError(f"the audit LP did not solve: {result.message}")
        return result.x

    def broken(self, soft: list[Terms]) -> list[bool]:
        """Which soft identities the published values contradict: the fewest (least total
        violation, an elastic LP with a slack pair per soft identity) that must go for the rest to
        hold. The others stay: an attacker keeps every identity that still holds."""
        n, k = len(self.variables), len(soft)
        rows = _matrix(soft, self.columns)
        slack = identity(k, format="csr")
        a_eq = hstack([rows, slack, -slack], format="csr")
        if self.a_eq is not None:
            a_eq = vstack(
                [a_eq, hstack([self.a_eq, csr_matrix((self.a_eq.shape[0], 2 * k))])], format="csr"
            )
        a_ub = None
        if self.a_ub is not None:
            a_ub = hstack([self.a_ub, csr_matrix((self.a_ub.shape[0], 2 * k))], format="csr")
        self.solves += 1
        result = linprog(
            np.r_[np.zeros(n), np.ones(2 * k)],
            A_ub=a_ub,
            b_ub=None if a_ub is None else np.zeros(a_ub.shape[0]),
            A_eq=a_eq,
            b_eq=np.zeros(a_eq.shape[0]),
            bounds=np.vstack(
                [self.bounds, np.column_stack([np.zeros(2 * k), np.full(2 * k, np.inf)])]
            ),
            method="highs",
        )
        if result.status != 0:
            raise _Infeasible  # even without the soft identities: the hard ones are contradicted
        violation = result.x[n : n + k] + result.x[n + k :]
        return list(violation > _TOLERANCE)

    def intervals(
        self, targets: list[np.ndarray], boxes: list[tuple[float, float]], enough: float | None
    ) -> list[tuple[float, float]]:
        """The LP interval of each target (a linear function of the component's variables).

        Every solution found is a point the attacker cannot exclude, so the range of a target over
        the points found so far is inside its interval: once that range is `enough` wide, or
        reaches the target's box, no LP of its own is needed (bound tightening by the solutions
        of earlier LPs). Without `enough`, every interval is exact."""
        n = len(self.variables)
        rng = np.random.default_rng(0)  # fixed: the audit is reproducible
        points = [self.solve(sign * np.ones(n)) for sign in (1.0, -1.0)]
        spread = min(MOST_RANDOM_POINTS, 2 + n // 50)
        points += [self.solve(rng.choice([-1.0, 1.0], n)) for _ in range(spread)]
        out = []
        # The points as one matrix, rebuilt only when an LP adds one (rebuilding it for every
        # target was most of the audit's time outside the solver).
        matrix = np.asarray(points)
        for target, (box_low, box_high) in zip(targets, boxes, strict=True):
            values = matrix @ target
            low, high = float(values.min()), float(values.max())
            if enough is None or high - low < enough:
                found = len(points)
                if high < box_high - _TOLERANCE:
                    points.append(self.solve(-target))
                    high = float(points[-1] @ target)
                if low > box_low + _TOLERANCE:
                    points.append(self.solve(target))
                    low = float(points[-1] @ target)
                if len(points) != found:
                    matrix = np.asarray(points)
            out.append((low, high))
        return out


def _box(terms: Terms, lower: np.ndarray, upper: np.ndarray) -> tuple[float, float]:
    low = sum(c * (lower[v] if c > 0 else upper[v]) for v, c in terms.items())
    high = sum(c * (upper[v] if c > 0 else lower[v]) for v, c in terms.items())
    return low, high


def _component_labels(view: AttackerView) -> np.ndarray:
    """The connected component of every variable: variables are linked when a constraint or a
    derived quantity names them together."""
    n = len(view.names)
    links_from, links_to = [], []
    for terms in [
        *view.equalities,
        *view.soft_equalities,
        *view.inequalities,
        *(t for _n, t in view.derived),
    ]:
        variables = list(terms)
        links_from += variables[:-1]
        links_to += variables[1:]
    graph = csr_matrix((np.ones(len(links_from)), (links_from, links_to)), shape=(n, n))
    return connected_components(graph, directed=False)[1] if n else np.array([], dtype=int)


def _target_vectors(targets: list[Terms], variables: list[int]) -> list[np.ndarray]:
    """Each target as a coefficient vector over its component's variables."""
    column_of = {v: i for i, v in enumerate(variables)}
    vectors = []
    for terms in targets:
        vector = np.zeros(len(variables))
        for var, coef in terms.items():
            vector[column_of[var]] = coef
        vectors.append(vector)
    return vectors


def _component_intervals(
    variables: list[int],
    constraints: tuple[list[Terms], list[Terms], list[Terms]],
    lower: np.ndarray,
    upper: np.ndarray,
    vectors: list[np.ndarray],
    boxes: list[tuple[float, float]],
    enough: float | None,
    result: AuditResult,
) -> list[tuple[float, float]] | None:
    """The intervals of one component's targets, or None when its published values contradict
    its hard identities. `constraints` are its (equalities, inequalities, soft equalities). Adds
    the LPs solved, and any soft identities dropped, to `result`."""
    equalities, inequalities, soft = constraints
    component = _Component(
        variables, equalities + soft, inequalities, lower[variables], upper[variables]
    )
    exact: list[tuple[float, float]] | None
    try:
        try:
            exact = component.intervals(vectors, boxes, enough)
        except _Infeasible:
            if not soft:
                raise
            # Some soft identity was broken between releases: drop only those.
            hard = _Component(
                variables, equalities, inequalities, lower[variables], upper[variables]
            )
            broken = hard.broken(soft)
            kept = [terms for terms, gone in zip(soft, broken, strict=True) if not gone]
            result.lp_solves += component.solves + hard.solves
            component = _Component(
                variables, equalities + kept, inequalities, lower[variables], upper[variables]
            )
            exact = component.intervals(vectors, boxes, enough)
            result.relaxed_components += 1
            result.dropped_identities += sum(broken)
    except _Infeasible:
        exact = None
    result.lp_solves += component.solves
    return exact


def attacker_intervals(
    view: AttackerView, *, integer: bool = True, enough: float | None = None
) -> AuditResult:
    """The interval of every cell and derived quantity of `view`, rounded inward to integers
    when the true values are counts. With `enough`, an interval already known to be at least
    that wide is reported as the part found (a lower bound on its width): a pass stays a pass,
    and every interval narrower than `enough` is exact."""
    lower = np.asarray(view.lower, dtype=np.float64)
    upper = np.asarray(view.upper, dtype=np.float64)
    targets: list[tuple[str, Terms]] = [
        (name, {i: 1.0}) for i, name in enumerate(view.names) if i not in view.constants
    ]
    targets += view.derived
    label = _component_labels(view)
    grouped: dict[int, tuple[list[Terms], list[Terms], list[Terms]]] = {}
    for kind, rows in enumerate((view.equalities, view.inequalities, view.soft_equalities)):
        for terms in rows:
            grouped.setdefault(int(label[next(iter(terms))]), ([], [], []))[kind].append(terms)
    # Without constraints an interval is the box (of a sum of cells, the sum of the boxes).
    found = [_box(terms, lower, upper) for _name, terms in targets]
    by_component: dict[int, list[int]] = {}
    for position, (_name, terms) in enumerate(targets):
        by_component.setdefault(int(label[next(iter(terms))]), []).append(position)
    result = AuditResult([])
    for key, constraints in grouped.items():
        variables = np.flatnonzero(label == key).tolist()
        positions = by_component.get(key, [])
        vectors = _target_vectors([targets[p][1] for p in positions], variables)
        boxes = [found[p] for p in positions]
        exact = _component_intervals(
            variables, constraints, lower, upper, vectors, boxes, enough, result
        )
        if exact is None:
            result.inconsistent.append(view.names[variables[0]])
            continue
        for position, interval in zip(positions, exact, strict=True):
            found[position] = interval
    intervals = [Interval(name, *found[i]) for i, (name, _t) in enumerate(targets)]
    if integer:
        intervals = [
            Interval(i.name, math.ceil(i.lower - _TOLERANCE), math.floor(i.upper + _TOLERANCE))
            for i in intervals
        ]
    result.intervals = intervals
    return result
