"""clients/conformance/cases.json: signed answers and license files, valid and tampered, made by
the service's own signing code. Every library must judge each one as the file expects; this test
runs every case and fails on any verdict that differs."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any, Dict, Optional

import pytest

from licensing_client import (
    LicenseFileError,
    PinnedKeys,
    SignatureError,
    parse_rfc3339,
    verify_answer,
    verify_license_file,
)

CASES = Path(__file__).resolve().parents[2] / "conformance" / "cases.json"


def load() -> Dict[str, Any]:
    if not CASES.exists():
        pytest.fail(f"{CASES} is missing: the conformance cases must be present")
    data = json.loads(CASES.read_text(encoding="utf-8"))
    assert data["format"] == "licensing-conformance/v1"
    return data


DATA = (
    load() if CASES.exists() else {"answers": [], "files": [], "keys": {}, "now": "", "tenant": ""}
)


def judge_answer(case: Dict[str, Any]) -> str:
    """``valid``, or ``invalid:<reason>`` as this library sees it."""
    req, resp = case["request"], case["response"]
    headers = {k.lower(): v for k, v in resp["headers"].items()}
    try:
        verify_answer(
            PinnedKeys(DATA["keys"]),
            method=req["method"],
            path_and_query=req["path"],
            tenant_id=req.get("tenant") or DATA["tenant"],
            nonce=req.get("nonce") or None,
            request_body=(req.get("body") or "").encode("utf-8"),
            signature=headers.get("x-signature"),
            signature_date=headers.get("x-signature-date"),
            response_body=resp["body"].encode("utf-8"),
            now=parse_rfc3339(DATA["now"]),
            max_skew=timedelta(seconds=DATA.get("max_clock_skew_seconds", 300)),
        )
    except SignatureError as e:
        return f"invalid:{e.reason}"
    return "valid"


def judge_file(case: Dict[str, Any]) -> str:
    try:
        verify_license_file(
            case["certificate"],
            PinnedKeys(DATA["keys"]),
            case.get("tenant") or DATA["tenant"],
            fingerprint=case.get("fingerprint"),
            now=parse_rfc3339(DATA["now"]),
        )
    except LicenseFileError as e:
        return f"invalid:{e.reason}"
    return "valid"


def test_the_cases_are_present_and_cover_both_verdicts():
    data = load()
    for kind in ("answers", "files"):
        expects = {c["expect"] for c in data[kind]}
        assert expects == {"valid", "invalid"}, kind
        assert len({c["name"] for c in data[kind]}) == len(data[kind]), f"duplicate {kind} names"


# The reasons this library reports, in the cases' words. The README says the list may grow and an
# unknown reason must not fail a test by itself: for those only the verdict is compared.
KNOWN_REASONS = {
    "answers": {
        "valid",
        "bad_signature",
        "unsupported_version",
        "missing_signature",
        "unknown_kid",
        "expired",
    },
    "files": {
        "valid",
        "unknown_kid",
        "expired",
        "tampered",
        "wrong_fingerprint",
        "unbound_with_fingerprint",
        "wrong_tenant",
        "not_yet_valid",
        "unsupported_format",
        "malformed",
    },
}


def expected(case: Dict[str, Any], kind: str) -> Optional[str]:
    """The verdict with its reason, or None when the case's reason is one this library does not
    know (then only the verdict is compared)."""
    if case["expect"] == "valid":
        return "valid"
    reason = case["reason"]
    if kind == "answers" and reason.startswith("tampered_"):
        reason = "bad_signature"  # a signature that does not verify cannot say what was changed
    return f"invalid:{reason}" if reason in KNOWN_REASONS[kind] else None


def compare(case: Dict[str, Any], kind: str, verdict: str) -> None:
    assert verdict.split(":")[0] == case["expect"], (
        f"{case['name']}: judged {verdict}, expected {case['expect']} ({case['reason']}: "
        f"{case.get('note', '')})"
    )
    reason = expected(case, kind)
    if reason is not None:
        assert verdict == reason, f"{case['name']}: reason {verdict}, the case says {reason}"


@pytest.mark.parametrize("case", DATA["answers"], ids=lambda c: c["name"])
def test_answer(case):
    compare(case, "answers", judge_answer(case))


@pytest.mark.parametrize("case", DATA["files"], ids=lambda c: c["name"])
def test_file(case):
    compare(case, "files", judge_file(case))
