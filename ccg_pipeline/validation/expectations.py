"""Custom Great Expectations 1.x expectations for the validation gate, where GX has none.

Importing this module registers them with GX (by their snake_case names), so the suites in
`expectations/*.json` can name them. Each comes as a metric provider, which computes on the
batch, and an expectation, which judges the metric; all run on the pandas engine, because the
staged tables are small and the identifier validators (Luhn, mod 97, checksums) are Python.

Their results carry counts only. Map expectations report `unexpected_count`, and the gate runs
them with `partial_unexpected_count: 0`, so no failing value is ever returned, logged or stored.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pandas as pd
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import BatchExpectation, ColumnMapExpectation
from great_expectations.expectations.metrics.map_metric_provider import (
    ColumnMapMetricProvider,
    column_condition_partial,
)
from great_expectations.expectations.metrics.metric_provider import metric_value
from great_expectations.expectations.metrics.table_metric_provider import TableMetricProvider
from great_expectations.render import LegacyRendererType, RenderedStringTemplateContent
from great_expectations.render.renderer.renderer import renderer

from ccg_pipeline.anonymise.cells import lone_suppressed_groups
from ccg_pipeline.anonymise.kanon import min_group_size
from ccg_pipeline.scan import scan_frame
from ccg_pipeline.scan.detectors import BY_NAME, DETECTORS
from ccg_pipeline.validation import known_identifiers

ALL_DETECTORS = [d.name for d in DETECTORS]


class Described:
    """Data Docs wording for a custom expectation: `wording`, where `$name` stands for the
    expectation's parameter `name` (lists are shown comma-separated)."""

    wording: ClassVar[str]

    @classmethod
    @renderer(renderer_type=LegacyRendererType.PRESCRIPTIVE)
    def _prescriptive_renderer(
        cls, configuration=None, result=None, runtime_configuration=None, **_kwargs
    ) -> list[RenderedStringTemplateContent]:
        configuration = configuration or (result.expectation_config if result else None)
        # GX 1.x expectations are pydantic v1 models; their class declares no `__fields__`.
        fields = cls.__fields__  # type: ignore[attr-defined]
        defaults = {name: field.default for name, field in fields.items()}
        kwargs = {**defaults, **(configuration.kwargs if configuration else {})}
        params = {
            name: ", ".join(map(str, value)) if isinstance(value, list) else value
            for name, value in kwargs.items()
        }
        template = {
            "template": cls.wording,
            "params": params,
            "styling": (runtime_configuration or {}).get("styling"),
        }
        return [
            RenderedStringTemplateContent(
                content_block_type="string_template", string_template=template
            )
        ]


def _table(execution_engine: PandasExecutionEngine, domain: dict) -> pd.DataFrame:
    frame, _, _ = execution_engine.get_compute_domain(domain, domain_type="table")
    return frame


# --- identifiers a detector recognises --------------------------------------------------------


class ColumnValuesContainNoDetectedIdentifier(ColumnMapMetricProvider):
    condition_metric_name = "column_values.no_detected_identifier"
    condition_value_keys = ("detectors",)

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, detectors: list[str], **_kwargs: Any) -> pd.Series:
        chosen = tuple(BY_NAME[name] for name in detectors)
        text = column.astype(str).to_frame("value").reset_index(drop=True)
        flagged = {finding.row for finding in scan_frame(text, chosen)}
        return pd.Series([row not in flagged for row in range(len(column))], index=column.index)


class ExpectColumnValuesToNotContainIdentifiers(Described, ColumnMapExpectation):
    """No value contains an identifier that one of `detectors` recognises and validates (emails,
    phone numbers, IP addresses, IBANs, sort codes and account numbers, Luhn-valid card numbers,
    postcodes, NI numbers, VAT, EORI and Companies House numbers, Swedish personnummer and
    organisationsnummer, URLs with identifying query strings). See `ccg_pipeline.scan`."""

    detectors: list[str] = ALL_DETECTORS
    map_metric = "column_values.no_detected_identifier"
    success_keys = ("detectors", "mostly")

    wording: ClassVar[str] = "values must contain no identifier found by the detectors $detectors."


# --- identifiers the personal zone holds -----------------------------------------------------


class ColumnValuesContainNoKnownIdentifier(ColumnMapMetricProvider):
    condition_metric_name = "column_values.no_known_identifier"
    condition_value_keys = ("index",)

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, index: str, **_kwargs: Any) -> pd.Series:
        return ~known_identifiers.active(index).unexpected(column)


class ExpectColumnValuesToNotContainKnownIdentifiers(Described, ColumnMapExpectation):
    """No value equals or contains a name, email, username, phone number or company name held in
    the personal zone (normalised, set-based; see `validation.known_identifiers`). `index` names
    the in-memory index the gate activates; the identifiers themselves never enter the suite."""

    index: str = known_identifiers.PERSONAL_ZONE
    map_metric = "column_values.no_known_identifier"
    success_keys = ("index", "mostly")

    wording: ClassVar[str] = (
        "values must not equal or contain any name, email, username, phone number "
        "or company name held in the index $index."
    )


# --- k-anonymity -----------------------------------------------------------------------------


class TableMinGroupSize(TableMetricProvider):
    metric_name = "table.min_group_size"
    value_keys = ("column_list",)

    @metric_value(engine=PandasExecutionEngine)
    def _pandas(
        cls, execution_engine, metric_domain_kwargs, metric_value_kwargs, metrics, **_kwargs
    ) -> int | None:
        frame = _table(execution_engine, metric_domain_kwargs)
        return min_group_size(frame, metric_value_kwargs["column_list"]) if len(frame) else None


class ExpectTableGroupsToHaveAtLeastKRows(Described, BatchExpectation):
    """Every combination of values over `column_list` (the quasi-identifiers) occurs in at least
    `k` rows, so no record can be singled out by them. An empty table passes."""

    column_list: list[str]
    k: int
    metric_dependencies: ClassVar[tuple[str, ...]] = ("table.min_group_size",)
    success_keys: ClassVar[tuple[str, ...]] = ("column_list", "k")

    wording: ClassVar[str] = (
        "Every group over $column_list must have at least $k rows (k-anonymity)."
    )

    def _validate(self, metrics: dict, runtime_configuration=None, execution_engine=None) -> dict:
        smallest = metrics["table.min_group_size"]
        return {
            "success": smallest is None or smallest >= self.k,
            "result": {"observed_value": smallest},
        }


# --- small-cell suppression ------------------------------------------------------------------


def _hidden(frame: pd.DataFrame, measures: list[str]) -> tuple[pd.Series, pd.Series]:
    nulls = frame[measures].isna()
    return nulls.all(axis=1), nulls.any(axis=1)


class TablePartlySuppressedRows(TableMetricProvider):
    metric_name = "table.partly_suppressed_rows"
    value_keys = ("measures",)

    @metric_value(engine=PandasExecutionEngine)
    def _pandas(
        cls, execution_engine, metric_domain_kwargs, metric_value_kwargs, metrics, **_kwargs
    ) -> int:
        frame = _table(execution_engine, metric_domain_kwargs)
        whole, some = _hidden(frame, metric_value_kwargs["measures"])
        return int((some & ~whole).sum())


class ExpectTableRowsToBeSuppressedWhole(Described, BatchExpectation):
    """A row's `measures` are all shown or all suppressed (NULL): they are tied to each other, so
    one hidden measure could be recomputed from its neighbours."""

    measures: list[str]
    metric_dependencies: ClassVar[tuple[str, ...]] = ("table.partly_suppressed_rows",)
    success_keys: ClassVar[tuple[str, ...]] = ("measures",)

    wording: ClassVar[str] = "Rows must be suppressed whole: $measures are all NULL or none is."

    def _validate(self, metrics: dict, runtime_configuration=None, execution_engine=None) -> dict:
        partly = metrics["table.partly_suppressed_rows"]
        return {"success": partly == 0, "result": {"observed_value": partly}}


class TableLoneSuppressedMargins(TableMetricProvider):
    metric_name = "table.lone_suppressed_margins"
    value_keys = ("dimensions", "measures")

    @metric_value(engine=PandasExecutionEngine)
    def _pandas(
        cls, execution_engine, metric_domain_kwargs, metric_value_kwargs, metrics, **_kwargs
    ) -> int:
        frame = _table(execution_engine, metric_domain_kwargs)
        if not len(frame):
            return 0
        hidden, _ = _hidden(frame, metric_value_kwargs["measures"])
        return lone_suppressed_groups(frame, metric_value_kwargs["dimensions"], hidden)


class ExpectTableMarginsToNotHideASingleCell(Described, BatchExpectation):
    """No margin group (rows sharing every dimension but one) hides exactly one of two or more
    rows: a reader who knows the group's total could recover it (secondary suppression)."""

    dimensions: list[str]
    measures: list[str]
    metric_dependencies: ClassVar[tuple[str, ...]] = ("table.lone_suppressed_margins",)
    success_keys: ClassVar[tuple[str, ...]] = ("dimensions", "measures")

    wording: ClassVar[str] = "No margin group over $dimensions may hide exactly one row."

    def _validate(self, metrics: dict, runtime_configuration=None, execution_engine=None) -> dict:
        lone = metrics["table.lone_suppressed_margins"]
        return {"success": lone == 0, "result": {"observed_value": lone}}


CUSTOM_EXPECTATIONS = (
    ExpectColumnValuesToNotContainIdentifiers,
    ExpectColumnValuesToNotContainKnownIdentifiers,
    ExpectTableGroupsToHaveAtLeastKRows,
    ExpectTableRowsToBeSuppressedWhole,
    ExpectTableMarginsToNotHideASingleCell,
)
