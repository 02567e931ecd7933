"""Helpers of the curator tests (no tests here): small banks built row by row, and a local
HTTP server that speaks the Anthropic Messages API with scripted answers and faults."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from nrr_stats.bank import Bank, open_bank, utc_now

FIXTURES = Path(__file__).parent / "fixtures" / "nk"

# (status, description, metric, category, direction, parameter) per row; deltas are computed
# against the running best kept value (lower metric is better), outcomes from a fixed band.
Row = tuple[str, str, float | None, str, str, str]


def add_session(bank: Bank, name: str, rows: Sequence[Row], *, scale: float = 0.01) -> int:
    """Insert a session and its experiments directly (no ingest), with deltas and outcomes."""
    session_id, _ = bank.upsert_session(
        {
            "session_key": f"key-{name}",
            "name": name,
            "source_path": f"/logs/{name}",
            "metric_name": "val_bpb",
            "metric_direction": "lower",
            "direction_source": "test",
            "header": ["commit", "val_bpb", "status", "description"],
        }
    )
    best: float | None = None
    experiments = []
    for number, (status, description, metric, category, direction, parameter) in enumerate(
        rows, start=1
    ):
        delta = None if best is None or metric is None else best - metric
        outcome = _outcome(status, delta, description, scale)
        if status == "keep" and metric is not None:
            best = metric if best is None else min(best, metric)
        experiments.append(
            {
                "session_id": session_id,
                "ordinal": number - 1,
                "row_number": number,
                "line_number": number + 1,
                "experiment_id": f"{name[:3]}{number:04d}",
                "metric": metric,
                "status": status,
                "raw_status": status,
                "description": description,
                "category": category,
                "direction": direction,
                "parameter": parameter,
                "from_value": "",
                "to_value": "",
                "outcome": outcome,
                "delta": delta,
                "config_before": "{}",
                "evidence_weight": 1.0,
                "fields_json": "{}",
                "ingested_at": utc_now(),
            }
        )
    with bank.transaction():
        bank.insert_experiments(experiments)
    return session_id


def _outcome(status: str, delta: float | None, description: str, scale: float) -> str | None:
    if status == "keep":
        return "improvement"
    if status == "crash":
        return "crash_infra" if "LLM" in description else "crash_code"
    if status != "discard":
        return None
    if delta is None:
        return "no_improvement"
    if delta >= -0.25 * scale:
        return "marginal"
    return "regression" if delta < -3 * scale else "no_improvement"


LR = ("learning_rate", "increase", "LEARNING_RATE")
DEPTH = ("model_depth", "increase", "DEPTH")

SMALL_LOG: list[Row] = [
    ("keep", "baseline", 1.000, "other", "other", ""),
    ("discard", "increase LR to 0.04", 1.020, *LR),
    ("keep", "add warmup 5%", 0.990, "lr_schedule", "add", "WARMUP_RATIO"),
    ("discard", "increase LR to 0.05", 1.050, *LR),
    ("crash", "double model width (OOM)", None, "model_width", "increase", "N_EMBD"),
    ("discard", "increase LR to 0.06", 0.991, *LR),
    ("crash", "depth 12", None, *DEPTH),
    ("discard", "switch to GeLU", 0.9905, "activation", "replace", "ACTIVATION"),
]


def small_bank(tmp_path: Path, rows: Sequence[Row] = SMALL_LOG, name: str = "small.tsv") -> Bank:
    bank = open_bank(tmp_path / "bank.db")
    add_session(bank, name, rows)
    return bank


# -- a local Messages API ------------------------------------------------------------------------


def tool_answer(
    record: dict[str, Any], *, input_tokens: int = 120, output_tokens: int = 80
) -> dict[str, Any]:
    """A Messages API response whose only block calls the curator's tool with `record`."""
    return {
        "id": "msg_test",
        "type": "message",
        "role": "assistant",
        "model": "claude-test",
        "content": [
            {
                "type": "tool_use",
                "id": "toolu_1",
                "name": "record_negative_knowledge",
                "input": record,
            }
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
    }


def good_record(**changes: Any) -> dict[str, Any]:
    record = {
        "task_id": "small.tsv",
        "attempted_route": "increase LR to 0.04",
        "observation": "val_bpb 1.02, worse than the best kept 1.00",
        "failure": {
            "layer": "method_failure",
            "scope": "local_failure",
            "degree": "contradicted",
            "recommended_action": "change_method",
            "risk": "low_risk_omission",
        },
        "rationale": "The larger step overshoots; the loss stays above the kept run.",
        "recommended_alternative": "Keep the LR and lengthen warmup instead.",
    }
    record.update(changes)
    return record


class MessagesServer:
    """Serves scripted replies in order; each reply is ("json", status, body[, headers]),
    ("slow", seconds, body) or ("truncated", body). Records every request body it gets."""

    def __init__(self, replies: Sequence[tuple] = ()):
        self.replies = list(replies)
        self.requests: list[dict[str, Any]] = []
        self.raw_requests: list[str] = []
        self.default: tuple | None = None
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("content-length", "0"))
                raw = self.rfile.read(length).decode("utf-8")
                server.raw_requests.append(raw)
                server.requests.append(json.loads(raw))
                reply = server.replies.pop(0) if server.replies else server.default
                if reply is None:
                    reply = (
                        "json",
                        500,
                        {"type": "error", "error": {"type": "api_error", "message": "no script"}},
                    )
                kind = reply[0]
                if kind == "slow":
                    time.sleep(reply[1])
                    reply = ("json", 200, reply[2])
                if kind == "truncated":
                    body = json.dumps(reply[1]).encode()
                    self.send_response(200)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                status, body = reply[1], reply[2]
                headers = reply[3] if len(reply) > 3 else {}
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> MessagesServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def error_body(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}
