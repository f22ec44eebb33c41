"""Validated models of the privacy notice and the data map.

The notice is encoded once, as YAML data beside this module; these models are the schema that
data must satisfy. Every rule carries the clause id of docs/DESIGN.md that it implements, and every
period the notice leaves open ("as long as necessary") says who decided it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

CLAUSE_IDS = frozenset(
    {
        "N-CAT",
        "N-SRC",
        "N-BASIS",
        "N-NOSPECIAL",
        "N-AGG",
        "N-MKT",
        "N-SHARE",
        "N-XFER",
        "N-SEC",
        "N-RET",
        "N-ANON",
        "N-RIGHTS",
        "N-CHILD",
    }
)


class Strict(BaseModel):
    """Base model: unknown keys are errors, so a typo in a policy file cannot pass silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Cited(Strict):
    clause: str = Field(description="Clause id from docs/DESIGN.md section 2")

    @field_validator("clause")
    @classmethod
    def _known_clause(cls, value: str) -> str:
        if value not in CLAUSE_IDS:
            raise ValueError(f"unknown clause id {value!r}; expected one of {sorted(CLAUSE_IDS)}")
        return value


class LawfulBasis(StrEnum):
    CONTRACT = "contract"
    LEGAL_OBLIGATION = "legal_obligation"
    LEGITIMATE_INTEREST = "legitimate_interest"
    CONSENT = "consent"


class Category(Cited):
    id: str
    name: str
    name_sv: str
    examples: list[str]
    part: Literal[1, 2] = 1


class ProcessingActivity(Cited):
    id: str
    purpose: str
    purpose_sv: str
    categories: list[str]
    lawful_bases: list[LawfulBasis] = Field(min_length=1)
    legitimate_interests: list[str] = Field(default_factory=list)


class LegitimateInterest(Cited):
    id: str
    text: str
    text_sv: str


class Period(Strict):
    years: int = 0
    months: int = 0
    days: int = 0

    @model_validator(mode="after")
    def _positive(self) -> Period:
        if min(self.years, self.months, self.days) < 0 or not (
            self.years or self.months or self.days
        ):
            raise ValueError("a retention period must be positive")
        return self


class Decision(StrEnum):
    """Who set a value: quoted from the notice, or CCG's own decision where the notice is open."""

    NOTICE = "notice"
    CCG = "ccg_decision"


class RetentionTrigger(StrEnum):
    CEASED_CUSTOMER = "ceased_customer"
    ACCOUNT_CLOSED = "account_closed"
    MARKETING_OPT_OUT = "marketing_opt_out"
    PROSPECT_INACTIVE = "prospect_inactive"
    EVENT_TIME = "event_time"


class RetentionAction(StrEnum):
    ANONYMISE_THEN_DELETE = "anonymise_then_delete"
    DELETE = "delete"
    SUPPRESS_THEN_DELETE = "suppress_then_delete"


class RetentionRule(Cited):
    id: str
    description: str
    categories: list[str]
    tables: list[str] = Field(description="personal-zone tables the rule sweeps")
    trigger: RetentionTrigger
    period: Period
    action: RetentionAction
    decided_by: Decision
    rationale: str
    align_to_financial_year_end: bool = False
    financial_year_end: str | None = Field(
        default=None, description="MM-DD of the year end when aligning, e.g. 04-05 for HMRC"
    )
    people_still_in_contact: str | None = Field(
        default=None,
        description="ceased_customer rules: the rule under which a person of a due company who "
        "is still in contact is kept from the company's deadline (None: they go with it)",
    )
    people_still_in_contact_rationale: str | None = None

    @field_validator("financial_year_end")
    @classmethod
    def _month_day(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                dt.date.fromisoformat(f"2001-{value}")
            except ValueError as exc:
                raise ValueError(f"financial_year_end {value!r} is not a valid MM-DD") from exc
        return value

    @model_validator(mode="after")
    def _year_end_given(self) -> RetentionRule:
        if self.align_to_financial_year_end and self.financial_year_end is None:
            raise ValueError(
                f"rule {self.id}: align_to_financial_year_end needs financial_year_end"
            )
        return self


class Recipient(Cited):
    id: str
    name: str
    description: str
    location: str


class Safeguard(Cited):
    id: str
    name: str
    valid_from: dt.date | None = None
    valid_until: dt.date | None = None
    replaced_by: str | None = None


class Transfer(Cited):
    id: str
    recipient: str
    destination: str
    safeguard: str
    data_categories: list[str]


class DataSubject(Cited):
    """A category of data subjects (GDPR art. 30(1)(c)), for the record of processing activities.

    `sources` are data-map source names (checked against data_map.yaml by
    `Notice.check_data_subject_sources`); empty when the data reaches CCG outside the ingested
    sources, as subject requests do. `activities` are processing activity ids.
    """

    id: str
    name: str
    description: str
    sources: list[str]
    activities: list[str] = Field(min_length=1)


class SecurityMeasure(Cited):
    """A technical or organisational measure the pipeline implements (GDPR art. 30(1)(g), 32).

    Only what the code does: the record of processing activities repeats these as fact.
    """

    id: str
    name: str
    description: str


class ZoneAccess(Cited):
    """Who may read a warehouse zone: `pipeline` (the owning role) and/or `analyst`."""

    zone: Literal["personal", "staging", "statistics", "ops"]
    readers: list[Literal["pipeline", "analyst"]]
    decided_by: Decision


class Perturbation(Strict):
    """Cell-key perturbation of published counts and sums (N-AGG, `anonymise.cellkey`) and the
    protection levels the release audit enforces (`anonymise.audit`)."""

    # A count moves by at most this much, with this variance, and no published count is between
    # zero and `smallest_published_count` (a true 1 comes out as 0 or as 3 or more).
    max_count_noise: int = Field(3, ge=0, le=10)
    count_noise_variance: float = Field(1.5, ge=0)
    smallest_published_count: int = Field(3, ge=1)
    # A sum moves by between floor x scale and scale times its largest contribution, and is
    # published only with at least this many contributors (the threshold rule).
    sum_noise_scale: float = Field(0.2, ge=0, le=1)
    sum_noise_floor: float = Field(0.5, ge=0, le=1)
    min_sum_contributors: int = Field(5, ge=1)
    # The audit fails a release where an attacker, from everything published, narrows a count to
    # an interval narrower than this, or a sum's largest contribution to less than this share.
    count_protection_width: int = Field(2, ge=1)
    sum_protection_share: float = Field(0.1, ge=0, le=1)

    @model_validator(mode="after")
    def _table_exists(self) -> Perturbation:
        if self.max_count_noise and self.count_noise_variance <= 0:
            raise ValueError("count_noise_variance must be > 0 when counts are perturbed")
        if self.max_count_noise and self.max_count_noise < self.smallest_published_count - 1:
            raise ValueError(
                "max_count_noise must be >= smallest_published_count - 1: otherwise a true "
                "count just below smallest_published_count has no allowed output"
            )
        return self

    @property
    def largest_contribution_share(self) -> float:
        """How well a coalition that knows every other contribution to a sum can know the
        largest one, as a share of it. The published sum gives the coalition t(1 + s m) with
        s in [-1, -f] or [f, 1]: the guess of no noise is off by at least f m, and even a right
        guess of the sign leaves t within a branch of half-width (1 - f) m / (2 (1 + m))."""
        m, f = self.sum_noise_scale, self.sum_noise_floor
        return min(f * m, (1 - f) * m / (2 * (1 + m)))


class Settings(Strict):
    k_anonymity: int = Field(10, ge=2)
    min_cell_count: int = Field(10, ge=1)
    ipv4_prefix_bits: int = Field(24, ge=0, le=32)
    ipv6_prefix_bits: int = Field(48, ge=0, le=128)
    request_due_months: int = Field(1, ge=1)
    request_max_extension_months: int = Field(2, ge=0)
    perturbation: Perturbation = Perturbation()


class Notice(Strict):
    """The whole notice as data."""

    version: int
    controller: str
    company_number: str
    source_text: str
    categories: list[Category]
    processing_activities: list[ProcessingActivity]
    legitimate_interests: list[LegitimateInterest]
    retention_rules: list[RetentionRule]
    recipients: list[Recipient]
    safeguards: list[Safeguard]
    transfers: list[Transfer]
    data_subjects: list[DataSubject]
    security_measures: list[SecurityMeasure]
    zone_access: list[ZoneAccess] = []
    settings: Settings = Settings()

    @model_validator(mode="after")
    def _references_resolve(self) -> Notice:
        category_ids = {c.id for c in self.categories}
        interest_ids = {i.id for i in self.legitimate_interests}
        recipient_ids = {r.id for r in self.recipients}
        safeguard_ids = {s.id for s in self.safeguards}
        problems: list[str] = []
        for name, items in (
            ("categories", self.categories),
            ("processing_activities", self.processing_activities),
            ("legitimate_interests", self.legitimate_interests),
            ("retention_rules", self.retention_rules),
            ("recipients", self.recipients),
            ("safeguards", self.safeguards),
            ("transfers", self.transfers),
            ("data_subjects", self.data_subjects),
            ("security_measures", self.security_measures),
        ):
            seen: set[str] = set()
            for item in items:
                if item.id in seen:
                    problems.append(f"{name}: duplicate id {item.id!r}")
                seen.add(item.id)
        for activity in self.processing_activities:
            problems += [
                f"processing activity {activity.id!r}: unknown category {c!r}"
                for c in activity.categories
                if c not in category_ids
            ]
            problems += [
                f"processing activity {activity.id!r}: unknown legitimate interest {i!r}"
                for i in activity.legitimate_interests
                if i not in interest_ids
            ]
        rule_ids = {r.id for r in self.retention_rules}
        for rule in self.retention_rules:
            problems += [
                f"retention rule {rule.id!r}: unknown category {c!r}"
                for c in rule.categories
                if c not in category_ids
            ]
            if rule.people_still_in_contact not in (None, *rule_ids):
                problems.append(
                    f"retention rule {rule.id!r}: people_still_in_contact names unknown rule "
                    f"{rule.people_still_in_contact!r}"
                )
        for transfer in self.transfers:
            if transfer.recipient not in recipient_ids:
                problems.append(
                    f"transfer {transfer.id!r}: unknown recipient {transfer.recipient!r}"
                )
            if transfer.safeguard not in safeguard_ids:
                problems.append(
                    f"transfer {transfer.id!r}: unknown safeguard {transfer.safeguard!r}"
                )
        problems += [
            f"safeguard {sg.id!r}: unknown replaced_by {sg.replaced_by!r}"
            for sg in self.safeguards
            if sg.replaced_by is not None and sg.replaced_by not in safeguard_ids
        ]
        activity_ids = {a.id for a in self.processing_activities}
        for subject in self.data_subjects:
            problems += [
                f"data subject {subject.id!r}: unknown processing activity {a!r}"
                for a in subject.activities
                if a not in activity_ids
            ]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def check_data_subject_sources(self, data_map: DataMap) -> None:
        """Raise ValueError naming every data-subject source the data map lacks.

        A separate step because the notice and the data map are separate files: the notice alone
        cannot know which sources exist.
        """
        unknown = [
            f"data subject {subject.id!r}: unknown data-map source {source!r}"
            for subject in self.data_subjects
            for source in subject.sources
            if source not in data_map.sources
        ]
        if unknown:
            raise ValueError("; ".join(unknown))

    def category(self, category_id: str) -> Category:
        return next(c for c in self.categories if c.id == category_id)

    def rule(self, rule_id: str) -> RetentionRule:
        return next(r for r in self.retention_rules if r.id == rule_id)


class Role(StrEnum):
    DIRECT_IDENTIFIER = "direct_identifier"
    QUASI_IDENTIFIER = "quasi_identifier"
    SENSITIVE = "sensitive"
    NOT_PERSONAL = "not_personal"


class ColumnTag(Strict):
    category: str | None = Field(description="notice category id; null only for not_personal")
    role: Role
    note: str | None = None

    @model_validator(mode="after")
    def _category_for_personal(self) -> ColumnTag:
        if self.role is not Role.NOT_PERSONAL and self.category is None:
            raise ValueError(f"a {self.role.value} column needs a category")
        return self


DATABASE_LANE = "portal"


class FileFeed(Strict):
    """How ingest finds and loads a file-based source: the data map is the source registry, so a
    new file source is its loader module plus this entry (see ARCHITECTURE.md)."""

    lane: str = Field(
        pattern=r"^[a-z][a-z0-9_]*$",
        description="the DAG task ingest_<lane>; the sources of one lane load in data-map order",
    )
    folder: str = Field(description="where the files land, relative to CCG_SOURCE_DIR")
    folder_env: str | None = Field(
        None,
        pattern=r"^CCG_[A-Z0-9_]+_DIR$",
        description="environment variable that moves the folder; default CCG_<LANE>_DIR",
    )
    files: list[str] = Field(min_length=1, description="glob patterns of the files to load")
    loader: str = Field(
        pattern=r"^[a-z_][a-z0-9_.]*:[a-z_][a-z0-9_]*$",
        description="module:function taking (connection, context, path, batch result)",
    )
    after: list[str] = Field(
        default=[], description="lanes that must have loaded first (e.g. for subject links)"
    )
    per_file: bool = Field(
        False,
        description="each file stands alone (no order, no state across files): the DAG maps "
        "one task per file, and writers share the ccg_writers pool",
    )

    @property
    def folder_variable(self) -> str:
        return self.folder_env or f"CCG_{self.lane.upper()}_DIR"


@dataclass(frozen=True)
class IngestLane:
    """One ingest task: the portal database, or the file sources the data map puts in a lane."""

    name: str
    after: tuple[str, ...] = ()
    feeds: tuple[tuple[str, FileFeed], ...] = ()
    per_file: bool = False  # one mapped task per file (FileFeed.per_file)


class SourceMap(Strict):
    description: str
    clause: str = "N-SRC"
    origin: str = Field(description="N-SRC source kind, e.g. direct interaction, server logs")
    columns: dict[str, ColumnTag]
    ingest: FileFeed | None = Field(
        None, description="for a file-based source: its lane, folder, file patterns and loader"
    )


class DataMap(Strict):
    """Every column of every source, tagged with category and role."""

    version: int
    sources: dict[str, SourceMap]

    @model_validator(mode="after")
    def _lanes_agree(self) -> DataMap:
        """The sources of one lane share its folder and its order; `after` names earlier lanes."""
        shape: dict[str, tuple[str, str, tuple[str, ...], bool]] = {}
        problems: list[str] = []
        for name, source in self.sources.items():
            feed = source.ingest
            if feed is None:
                continue
            if feed.lane == DATABASE_LANE:
                problems.append(f"{name}: lane {DATABASE_LANE!r} is the portal database's")
            this = (feed.folder, feed.folder_variable, tuple(feed.after), feed.per_file)
            if shape.setdefault(feed.lane, this) != this:
                problems.append(
                    f"{name}: lane {feed.lane!r} has another folder, order or per_file setting"
                )
        # A lane may wait only for the portal or for a lane mapped before it: no cycles.
        earlier = {DATABASE_LANE}
        for lane, (_folder, _variable, after, _per_file) in shape.items():
            unknown = [a for a in after if a not in earlier]
            if unknown:
                problems.append(f"lane {lane!r}: after names no earlier lane: {unknown}")
            earlier.add(lane)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def ingest_lanes(self) -> list[IngestLane]:
        """The ingest tasks: the portal database first, then each file lane in first-mention
        order, with its sources in data-map order."""
        feeds: dict[str, list[tuple[str, FileFeed]]] = {}
        for name, source in self.sources.items():
            if source.ingest is not None:
                feeds.setdefault(source.ingest.lane, []).append((name, source.ingest))
        return [IngestLane(DATABASE_LANE)] + [
            IngestLane(lane, tuple(pairs[0][1].after), tuple(pairs), pairs[0][1].per_file)
            for lane, pairs in feeds.items()
        ]

    def check_columns(self, source: str, columns: list[str]) -> list[str]:
        """Return the columns the map does not know for `source` (empty list when all known)."""
        if source not in self.sources:
            raise KeyError(f"data map has no source {source!r}")
        known = self.sources[source].columns
        return [c for c in columns if c not in known]

    def columns_with_role(self, source: str, role: Role) -> list[str]:
        return [n for n, tag in self.sources[source].columns.items() if tag.role is role]
