"""The curator: negative-knowledge (NK) records of failed experiments, and the evidence weights
their diagnoses give the hierarchy's fit (offline rules by default, an Anthropic model on request)."""

from nrr_stats.curator.pipeline import CurationSummary, curate, find_experiment
from nrr_stats.curator.schema import (
    DEGREES,
    FAILURE_SUBFIELDS,
    LAYERS,
    RECOMMENDED_ACTIONS,
    RISKS,
    SCHEMA_BASE_FIELDS,
    SCHEMA_DEEP_EXTRA,
    SCOPES,
    RecordCheck,
    check_record,
    validate,
    validate_nk,
)
from nrr_stats.curator.store import (
    applicable_records,
    apply_weights,
    fetch_records,
    get_record,
    record_event,
)
from nrr_stats.curator.weights import WeightTable, load_weights

__all__ = [
    "DEGREES",
    "FAILURE_SUBFIELDS",
    "LAYERS",
    "RECOMMENDED_ACTIONS",
    "RISKS",
    "SCHEMA_BASE_FIELDS",
    "SCHEMA_DEEP_EXTRA",
    "SCOPES",
    "CurationSummary",
    "RecordCheck",
    "WeightTable",
    "applicable_records",
    "apply_weights",
    "check_record",
    "curate",
    "fetch_records",
    "find_experiment",
    "get_record",
    "load_weights",
    "record_event",
    "validate",
    "validate_nk",
]
