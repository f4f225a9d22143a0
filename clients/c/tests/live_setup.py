"""Creates what the live C/C++ examples need on a dev server, through the management API
(admin key): a product with a node-locked policy (a boolean and a metered entitlement) and a
floating policy (one seat, 60 s leases), and a license of each. Names are unique per run.
Prints `export NAME=value` lines for the shell. Standard library only.

Environment: LICENSING_BASE_URL, LICENSING_ADMIN_KEY.
"""

import json
import os
import secrets
import sys
import urllib.error
import urllib.request

BASE = os.environ["LICENSING_BASE_URL"].rstrip("/")
ADMIN = os.environ["LICENSING_ADMIN_KEY"]


def post(path, body):
    request = urllib.request.Request(
        BASE + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"x-api-key": ADMIN, "content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)["data"]
    except urllib.error.HTTPError as e:
        sys.exit(f"live_setup: POST {path} -> {e.code} {e.read().decode(errors='replace')}")


def main():
    run = secrets.token_hex(4)
    product = f"c-abi-{run}"
    post("/v1/manage/products", {"code": product, "name": f"C ABI test {run}"})
    node_locked = post("/v1/manage/policies", {
        "product": product, "name": "Node-locked", "max_activations": 2,
        "entitlements": {
            "export-4k": {"type": "boolean"},
            "api-calls": {"type": "metered", "limit": 1000, "period": "month", "overage": "deny"},
        },
    })
    floating = post("/v1/manage/policies", {
        "product": product, "name": "Floating", "max_activations": 1,
        "activation_mode": "floating", "lease_seconds": 60,
    })
    email = f"c-abi-{run}@example.com"
    license_ = post("/v1/manage/licenses", {"policy": node_locked["id"], "customer_email": email})
    pool = post("/v1/manage/licenses", {"policy": floating["id"], "customer_email": email})
    print(f"export LICENSING_PRODUCT={product}")
    print(f"export LICENSING_LICENSE_KEY={license_['key']}")
    print(f"export LICENSING_FLOATING_KEY={pool['key']}")
    print(f"export LICENSING_RUN={run}")


if __name__ == "__main__":
    main()
