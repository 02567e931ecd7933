"""NK record schema, the evidence-weight table and secret redaction."""

from __future__ import annotations

import copy
import json
import string

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from test_curator_support import FIXTURES, good_record

from nrr_stats.curator.redact import REDACTED, redact
from nrr_stats.curator.schema import (
    ACTIONS,
    DEGREES,
    LAYERS,
    RISKS,
    SCOPES,
    model_fields_schema,
    validate,
)
from nrr_stats.curator.weights import load_weights
from nrr_stats.errors import NrrInputError

# -- schema --------------------------------------------------------------------------------------


def deep_record(**changes):
    record = json.loads((FIXTURES / "paper_shape_depth3.json").read_text())
    record.update(changes)
    return record


def with_nrr_fields(record, **changes):
    fields = {
        "experiment_id": 7,
        "category": "learning_rate",
        "direction": "increase",
        "parameter": "LEARNING_RATE",
        "source": "rules",
        "evidence_weight": 0.5,
    }
    return {**record, **fields, **changes}


def test_the_nk_papers_own_records_validate():
    assert validate(json.loads((FIXTURES / "paper_sample_depth1.json").read_text())) == []
    assert validate(deep_record()) == []


def test_records_with_nrr_fields_validate():
    assert validate(with_nrr_fields(good_record())) == []
    assert validate(with_nrr_fields(deep_record(), source="llm:claude-sonnet-4-6")) == []


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda r: r.pop("rationale"), "missing field: rationale"),
        (lambda r: r.pop("attempted_route"), "missing field: attempted_route"),
        (lambda r: r["failure"].update(layer="design_failure"), "failure.layer 'design_failure'"),
        (lambda r: r["failure"].update(scope="global"), "failure.scope"),
        (lambda r: r["failure"].update(degree="maybe"), "failure.degree"),
        (lambda r: r["failure"].update(recommended_action="ignore"), "failure.recommended_action"),
        (lambda r: r["failure"].update(risk="none"), "failure.risk"),
        (lambda r: r["failure"].pop("risk"), "missing field: failure.risk"),
        (lambda r: r.update(failure="method"), "failure must be an object"),
        (
            lambda r: r.update(rationale="x" * 301),
            "rationale is 301 characters, NK's guidance is at most 300",
        ),
        (lambda r: r.update(recommended_alternative="y" * 301), "recommended_alternative is 301"),
        (lambda r: r.update(observation=""), "observation is empty"),
        (lambda r: r.update(attempted_route=3), "attempted_route must be a string"),
        (lambda r: r.update(depth=0), "depth must be an integer >= 1"),
        (lambda r: r.update(ruled_out_routes=["only one"]), "at least 2 required"),
    ],
)
def test_each_violation_is_reported(mutate, fragment):
    record = copy.deepcopy(good_record())
    mutate(record)
    problems = validate(record)
    assert any(fragment in p for p in problems), problems


def test_caps_are_inclusive():
    record = good_record(rationale="r" * 300, recommended_alternative="a" * 300)
    assert validate(record) == []
    assert validate(deep_record(synthesised_diagnosis="d" * 400)) == []
    assert any(
        "synthesised_diagnosis is 401" in p
        for p in validate(deep_record(synthesised_diagnosis="d" * 401))
    )


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"ruled_out_routes": ["lasso on band-power features"]}, "at least 2 required"),
        ({"ruled_out_routes": "ridge, lasso"}, "list of non-empty strings"),
        (
            {"recommended_alternative": "  Lasso on band-power FEATURES. "},
            "is one of the ruled_out_routes",
        ),
        ({"rounds_summary": [{"attempted_route": "a", "observation": "b"}]}, "must list 3 rounds"),
        ({"rounds_summary": [{"attempted_route": "a"}] * 3}, "rounds_summary[0].observation"),
        ({"depth": "3"}, "depth must be an integer"),
    ],
)
def test_depth_n_violations(changes, fragment):
    problems = validate(deep_record(**changes))
    assert any(fragment in p for p in problems), problems


def test_a_forced_depth_must_match():
    assert any("expected 1" in p for p in validate(deep_record(), depth=1))
    record = deep_record()
    del record["synthesised_diagnosis"]
    assert "missing field: synthesised_diagnosis" in validate(record)


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"source": "gpt"}, "source 'gpt'"),
        ({"evidence_weight": 0.0}, "evidence_weight 0.0"),
        ({"evidence_weight": 1.5}, "evidence_weight 1.5"),
        ({"evidence_weight": True}, "evidence_weight True"),
        ({"direction": "sideways"}, "direction 'sideways'"),
        ({"category": "Learning Rate"}, "snake_case"),
        ({"experiment_id": "a1b2c3"}, "experiment_id must be a positive integer"),
        ({"parameter": None}, "parameter must be a string"),
    ],
)
def test_nrr_field_violations(changes, fragment):
    problems = validate(with_nrr_fields(good_record(), **changes))
    assert any(fragment in p for p in problems), problems


def test_one_nrr_field_requires_all_of_them():
    problems = validate({**good_record(), "source": "rules"})
    assert "missing field: evidence_weight" in problems and "missing field: category" in problems


def test_not_an_object():
    assert validate([good_record()]) == ["record must be a JSON object, not list"]


def test_model_schema_names_every_field_and_vocabulary():
    schema = model_fields_schema(3)
    failure = schema["properties"]["failure"]["properties"]
    assert failure["layer"]["enum"] == list(LAYERS) and failure["degree"]["enum"] == list(DEGREES)
    assert failure["scope"]["enum"] == list(SCOPES) and failure["risk"]["enum"] == list(RISKS)
    assert failure["recommended_action"]["enum"] == list(ACTIONS)
    assert {"rounds_summary", "ruled_out_routes", "synthesised_diagnosis", "depth"} <= set(
        schema["required"]
    )
    assert schema["properties"]["rationale"]["maxLength"] == 300
    assert "rounds_summary" not in model_fields_schema(1)["properties"]


# -- weights -------------------------------------------------------------------------------------


def test_builtin_table_orders_the_diagnoses():
    table = load_weights()
    weight = lambda la, sc, de: table.weight({"layer": la, "scope": sc, "degree": de})  # noqa: E731
    assert weight("method_failure", "general_failure", "contradicted") == 1.0
    assert weight("implementation_failure", "local_failure", "artifact_driven") <= 0.1
    assert weight("communication_failure", "local_failure", "artifact_driven") <= 0.1
    for scope in SCOPES:
        for degree in DEGREES:
            method = weight("method_failure", scope, degree)
            assert method >= weight("implementation_failure", scope, degree)
            assert weight("implementation_failure", scope, degree) >= weight(
                "communication_failure", scope, degree
            )
    assert len(table.rows()) == len(LAYERS) * len(SCOPES) * len(DEGREES)


factors = st.floats(min_value=1e-6, max_value=1.0, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(
    layer=st.fixed_dictionaries({n: factors for n in LAYERS}),
    scope=st.fixed_dictionaries({n: factors for n in SCOPES}),
    degree=st.fixed_dictionaries({n: factors for n in DEGREES}),
    floor=factors,
    override=st.dictionaries(
        st.tuples(st.sampled_from(LAYERS), st.sampled_from(SCOPES), st.sampled_from(DEGREES)),
        factors,
        max_size=3,
    ),
)
def test_any_table_gives_weights_in_the_unit_interval(
    tmp_path_factory, layer, scope, degree, floor, override
):
    lines = []
    for name, section in (("layer", layer), ("scope", scope), ("degree", degree)):
        lines.append(f"[{name}]")
        lines += [f"{k} = {v!r}" for k, v in section.items()]
    lines += ["[bounds]", f"floor = {floor!r}", "[override]"]
    lines += [f'"{".".join(k)}" = {v!r}' for k, v in override.items()]
    path = tmp_path_factory.mktemp("w") / "weights.toml"
    path.write_text("\n".join(lines))
    table = load_weights(path)
    for row in table.rows():
        assert 0.0 < row["weight"] <= 1.0
    for key, value in override.items():
        assert table.weight(
            dict(zip(("layer", "scope", "degree"), key, strict=True))
        ) == pytest.approx(value, rel=1e-3)


def test_a_partial_table_overrides_only_its_entries(tmp_path):
    path = tmp_path / "w.toml"
    path.write_text(
        '[layer]\nimplementation_failure = 1.0\n[override]\n"method_failure.local_failure.partial" = 0.5\n'
    )
    table, builtin = load_weights(path), load_weights()
    impl = {"layer": "implementation_failure", "scope": "general_failure", "degree": "contradicted"}
    assert table.weight(impl) == 1.0 and builtin.weight(impl) < 1.0
    assert (
        table.weight({"layer": "method_failure", "scope": "local_failure", "degree": "partial"})
        == 0.5
    )
    same = {"layer": "method_failure", "scope": "regime_bound_failure", "degree": "unstable"}
    assert table.weight(same) == builtin.weight(same)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[layer]\nmethod_failure = 0\n", "method_failure = 0"),
        ("[layer]\nmethod_failure = 1.5\n", "in (0, 1]"),
        ('[layer]\nmethod_failure = "high"\n', "in (0, 1]"),
        ("[layer]\ndesign_failure = 0.5\n", "design_failure: not one of"),
        ("[colours]\nred = 1\n", "unknown section [colours]"),
        ("[bounds]\nceiling = 1\n", "[bounds] holds only floor"),
        ('[override]\n"method_failure.local_failure" = 0.5\n', "layer.scope.degree"),
        ("[layer\n", "not valid TOML"),
    ],
)
def test_bad_weight_tables_are_one_line_errors(tmp_path, text, fragment):
    path = tmp_path / "w.toml"
    path.write_text(text)
    with pytest.raises(NrrInputError) as caught:
        load_weights(path)
    assert (
        fragment in str(caught.value)
        and str(path) in str(caught.value)
        and "\n" not in str(caught.value)
    )


def test_a_missing_weight_table(tmp_path):
    with pytest.raises(NrrInputError, match="weight table not found"):
        load_weights(tmp_path / "nope.toml")


# -- redaction -----------------------------------------------------------------------------------

SECRETS = {
    "anthropic": "sk-ant-api03-Zx9QwErTy7uIoP1aSdFgHjKl-_mNbVcXz0123456789abcdEF",
    "openai": "sk-proj-AbCdEfGhIjKlMnOpQrStUvWx1234567890",
    "aws_access": "AKIAIOSFODNN7EXAMPLE",
    "aws_secret": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "github": "ghp_1234567890abcdefABCDEF1234567890abcd",
    "github_pat": "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
    "bearer": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.c2lnbmF0dXJl",
    "password": "hunter2!Pass",
    "db_password": "s3cr3t-pw",
}


def secret_text() -> str:
    return "\n".join(
        [
            "step 100 | loss 3.21 | tokens_per_step = 524288 | val_bpb 0.9979",
            f"export ANTHROPIC_API_KEY={SECRETS['anthropic']}",
            f"openai key {SECRETS['openai']} loaded",
            f"aws_access_key_id = {SECRETS['aws_access']}",
            f"aws_secret_access_key: {SECRETS['aws_secret']}",
            f"git clone https://{SECRETS['github']}@github.com/me/repo",
            f"token {SECRETS['github_pat']}",
            f"Authorization: Bearer {SECRETS['bearer']}",
            f"password={SECRETS['password']}",
            f"postgresql://nrr:{SECRETS['db_password']}@db.example.com/bank",
            "-----BEGIN OPENSSH PRIVATE KEY-----",
            "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW",
            "QyNTUxOQAAACDh0cWxPrivateKeyBodyLineTwo0123456789abcdefABCDEF0123",
            "-----END OPENSSH PRIVATE KEY-----",
            "commit 4f2a9c1e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39 kept",
            "path /home/user/Projects/autoresearch/train.py",
        ]
    )


def test_every_kind_of_secret_is_redacted_and_ordinary_text_kept():
    out = redact(secret_text())
    for name, secret in SECRETS.items():
        assert secret not in out, name
    assert "PrivateKeyBody" not in out and "b3BlbnNzaC1rZXkt" not in out
    for kept in (
        "tokens_per_step = 524288",
        "val_bpb 0.9979",
        "4f2a9c1e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39",
        "/home/user/Projects/autoresearch/train.py",
        "github.com/me/repo",
        "password=",
    ):
        assert kept in out, kept
    assert out.count(REDACTED) >= len(SECRETS)


def test_a_private_key_cut_by_a_tail_or_a_head_is_still_redacted():
    body = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\nMzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu"
    tail_cut = f"{body}\n-----END PRIVATE KEY-----\nTraceback: boom"
    head_cut = f"loss 3.2\n-----BEGIN RSA PRIVATE KEY-----\n{body}"
    for text in (tail_cut, head_cut):
        out = redact(text)
        assert "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj" not in out
        assert "MzEfYyjiWA4R4" not in out
    assert "Traceback: boom" in redact(tail_cut) and "loss 3.2" in redact(head_cut)


key_chars = st.text(alphabet=string.ascii_letters + string.digits, min_size=30, max_size=60)
filler = st.text(alphabet=string.ascii_letters + string.digits + " .,:;()[]\n", max_size=80)


@settings(max_examples=80, deadline=None)
@given(
    prefix=st.sampled_from(["sk-ant-api03-", "sk-", "ghp_", "Bearer ", "password=", "api_key: "]),
    body=key_chars,
    before=filler,
    after=filler,
)
def test_random_secrets_never_survive(prefix, body, before, after):
    assume(body not in before + after)
    secret = prefix + body
    out = redact(f"{before} {secret}\n{after}")
    assert body not in out


def test_the_shipped_strict_table_loads_and_discounts_more():
    from nrr_stats.curator.weights import default_weights_path

    strict = load_weights(default_weights_path().with_name("weights_strict_nk.toml"))
    builtin = load_weights()
    rows = zip(strict.rows(), builtin.rows(), strict=True)
    assert all(s["weight"] <= b["weight"] for s, b in rows)
    local = {"layer": "method_failure", "scope": "local_failure", "degree": "partial"}
    assert strict.weight(local) < builtin.weight(local) == 1.0
