"""Description parser: free-text experiment descriptions to TAXONOMY category, direction and values."""

from nrr_stats.parser.parse import ParsedChange, parse_description
from nrr_stats.parser.results import strip_result_words
from nrr_stats.parser.rules import Rules, load_rules
from nrr_stats.parser.tracker import ConfigTracker, parse_log_descriptions

__all__ = [
    "ConfigTracker",
    "ParsedChange",
    "Rules",
    "load_rules",
    "parse_description",
    "parse_log_descriptions",
    "strip_result_words",
]
