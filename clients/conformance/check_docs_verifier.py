#!/usr/bin/env python3
"""Runs the complete Python verifier of docs/signing.md § 6 (extracted from the page as written) on every
case of clients/conformance/cases.json and exits 1 if any verdict differs from `expect`, so the documented
verifier and the cases cannot drift apart. Needs the `cryptography` package.

    python3 clients/conformance/check_docs_verifier.py
"""
import base64, json, pathlib, re, sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
page = (ROOT / "docs" / "signing.md").read_text()
section = page[page.index("## 6. A complete verifier in Python"):]
verifier = {}
exec(re.search(r"```python\n(.*?)```", section, re.S).group(1), verifier)

cases = json.loads((ROOT / "clients" / "conformance" / "cases.json").read_text())
assert cases["format"] == "licensing-conformance/v1", cases["format"]
Ed25519PublicKey = verifier["Ed25519PublicKey"]
keys = {kid: Ed25519PublicKey.from_public_bytes(base64.b64decode(key)) for kid, key in cases["keys"].items()}
now = verifier["ts"](cases["now"])


def answer(case):
    request, response = case["request"], case["response"]
    headers = response["headers"]
    if "x-signature" not in headers or "x-signature-date" not in headers:
        raise ValueError("unsigned")
    verifier["verify_answer"](keys, request["method"], request["path"], request["tenant"], request["nonce"],
                              request["body"].encode(), headers["x-signature"], headers["x-signature-date"],
                              response["body"].encode(), now)


def license_file(case):
    verifier["verify_license_file"](keys, case["certificate"], case["tenant"], case["fingerprint"], now)


wrong = 0
for kind, judge in (("answers", answer), ("files", license_file)):
    for case in cases[kind]:
        try:
            judge(case)
            got, why = "valid", ""
        except Exception as e:  # any refusal, whatever its type
            got, why = "invalid", f"{type(e).__name__}: {e}"
        if got != case["expect"]:
            wrong += 1
            print(f"DIFFERS {kind}/{case['name']}: expected {case['expect']} ({case['reason']}), got {got} {why}")
total = len(cases["answers"]) + len(cases["files"])
print(f"docs/signing.md § 6 verifier: {total - wrong} of {total} cases as expected")
sys.exit(1 if wrong else 0)
