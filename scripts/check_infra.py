#!/usr/bin/env python3
"""Check infra/template.yaml against the code. Run by scripts/check-infra.sh.

Usage: check_infra.py ROUTES_JSON [TEMPLATE]
  ROUTES_JSON  the output of `licensing-admin routes`
  TEMPLATE     default infra/template.yaml

What must hold (each failure is printed; exit 1 if any):
  functions  the crates under functions/, the functions of the route table and
             the template's AWS::Serverless::Function resources (matched by
             Metadata.BuildProperties.Binary) are the same set, one resource
             each, built with rust-cargolambda from ../functions/<name>.
  routes     every route of the route table is exactly one route of the
             deployed HTTP API (read from the SAM-translated template, so it
             is what API Gateway gets), integrated with its function; the API
             has no other route except one `$default` catch-all; dev-server
             routes (function null) are absent.
  settings   each function's environment (Globals merged) is exactly the
             settings it reads, plus ALLOWED_EXTRA_ENV; each setting points at
             the right kind of resource.
  events     SQS event sources report partial batch failures; a DynamoDB
             stream event source reads the batches the local poller reads
             (STREAM_BATCH_SIZE, shared/src/webhooks/local.rs); every function
             has a trigger.
  IAM        each function has its own role; no statement has a wildcard in
             an action, nor a wildcard resource except one narrowing a name
             under this stack ("...:secret:${AWS::StackName}/tenants/*"), no
             NotAction/NotResource, no managed policies; a role reads exactly the
             secrets its function is configured with, may send only to queues
             it is configured with, and reaches the table only if it has
             TABLE_NAME; it may write logs only to its own log group.
  table      key schema, GSI1 and the TTL attribute match shared/src/store/keys.rs.
"""

import copy
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEMPLATE = os.path.join(ROOT, "infra", "template.yaml")  # argv[2] overrides (used to test this check)
ALLOWED_EXTRA_ENV = {"RUST_LOG"}

# What each setting must point at: a Ref to a resource of this type, or a
# string/Sub (SECRETS_PREFIX is a name prefix, not a resource).
SETTING_KINDS = {
    "TABLE_NAME": ("ref", "AWS::DynamoDB::Table"),
    "PEPPER_SECRET_ID": ("ref", "AWS::SecretsManager::Secret"),
    "SIGNING_KEY_SECRET_ID": ("ref", "AWS::SecretsManager::Secret"),
    "SIGNING_MASTER_SECRET_ID": ("ref", "AWS::SecretsManager::Secret"),
    "OPERATOR_TOKEN_SECRET_ID": ("ref", "AWS::SecretsManager::Secret"),
    "PROVISIONING_QUEUE_URL": ("ref", "AWS::SQS::Queue"),
    "SECRETS_PREFIX": ("prefix", None),
    "WEBHOOK_MASTER_SECRET_ID": ("ref", "AWS::SecretsManager::Secret"),
    "WEBHOOK_QUEUE_URL": ("ref", "AWS::SQS::Queue"),
    # The local development setting (http:// to loopback) is never deployed.
    "WEBHOOK_ALLOW_LOOPBACK_HTTP": ("exactly", "false"),
    "WEBHOOK_RETRY_BASE_SECONDS": ("integer", None),
    # Deployment choices, not resources: a Ref to a template parameter.
    "PORTAL_BASE_URL": ("param", None),
    "PORTAL_SENDER": ("param", None),
    # Stripe's own API in the deployed template (a local stand-in only in tests).
    "STRIPE_API_BASE": ("exactly", "https://api.stripe.com"),
}

errors = []


def fail(msg):
    errors.append(msg)


def load_template():
    from samtranslator.yaml_helper import yaml_parse

    with open(TEMPLATE) as f:
        return yaml_parse(f.read())


def crates():
    """Crate name -> directory, for every functions/<dir>/Cargo.toml."""
    out = {}
    base = os.path.join(ROOT, "functions")
    for d in sorted(os.listdir(base)):
        manifest = os.path.join(base, d, "Cargo.toml")
        if not os.path.isfile(manifest):
            continue
        name = package_name(manifest)
        if name != d:
            fail(f"functions/{d}: the package is named {name!r}; name the directory after the crate")
        out[name or d] = d
    return out


def package_name(manifest):
    """[package] name of a Cargo.toml (tomllib is Python 3.11+; the fallback reads the one line)."""
    try:
        import tomllib

        with open(manifest, "rb") as f:
            return tomllib.load(f).get("package", {}).get("name")
    except ImportError:
        with open(manifest) as f:
            m = re.search(r'^\[package\][^\[]*?^name\s*=\s*"([^"]+)"', f.read(), re.M | re.S)
        return m.group(1) if m else None


def as_list(v):
    return v if isinstance(v, list) else [v]


def ref_name(v):
    """'X' for {"Ref": "X"}, else None."""
    if isinstance(v, dict) and set(v) == {"Ref"} and isinstance(v["Ref"], str):
        return v["Ref"]
    return None


def getatt(v):
    """('X', 'Arn') for {"Fn::GetAtt": ["X", "Arn"]} or "X.Arn", else None."""
    if isinstance(v, dict) and set(v) == {"Fn::GetAtt"}:
        a = v["Fn::GetAtt"]
        if isinstance(a, str):
            a = a.split(".", 1)
        return tuple(a)
    return None


def sub_text(v):
    if isinstance(v, dict) and set(v) == {"Fn::Sub"}:
        s = v["Fn::Sub"]
        return s if isinstance(s, str) else s[0]
    return None


def main(routes_json):
    with open(routes_json) as f:
        table = json.load(f)
    t = load_template()
    res = t.get("Resources", {})
    glob_fn = t.get("Globals", {}).get("Function", {})

    # ------------------------------------------------------------ functions
    code_fns = {f["function"]: f for f in table["functions"]}
    crate_dirs = crates()
    for name in sorted(set(code_fns) - set(crate_dirs)):
        fail(f"{name}: in the route table (shared/src/functions.rs) but there is no functions/{name} crate")
    for name in sorted(set(crate_dirs) - set(code_fns)):
        fail(f"functions/{name}: a crate the route table (shared/src/functions.rs) does not list")

    fn_res = {k: v for k, v in res.items() if v.get("Type") == "AWS::Serverless::Function"}
    by_binary = {}
    for lid, r in fn_res.items():
        md = r.get("Metadata", {})
        binary = md.get("BuildProperties", {}).get("Binary")
        if md.get("BuildMethod") != "rust-cargolambda":
            fail(f"{lid}: Metadata.BuildMethod must be rust-cargolambda")
        if not binary:
            fail(f"{lid}: Metadata.BuildProperties.Binary names no binary")
            continue
        by_binary.setdefault(binary, []).append(lid)
        props = r.get("Properties", {})
        if props.get("CodeUri") != f"../functions/{binary}":
            fail(f"{lid}: CodeUri must be ../functions/{binary} (the crate), not {props.get('CodeUri')!r}")
        for key, want in (("Runtime", "provided.al2023"), ("Handler", "bootstrap")):
            if props.get(key, glob_fn.get(key)) != want:
                fail(f"{lid}: {key} must be {want}")
        arch = props.get("Architectures", glob_fn.get("Architectures"))
        if arch != [{"Ref": "Architecture"}]:
            fail(f"{lid}: Architectures must be [!Ref Architecture] (arm64 by default)")
    for binary, lids in sorted(by_binary.items()):
        if len(lids) > 1:
            fail(f"{binary}: built by several template functions: {', '.join(sorted(lids))}")
    for name in sorted(set(code_fns) - set(by_binary)):
        fail(f"{name}: no AWS::Serverless::Function in infra/template.yaml builds it (Metadata.BuildProperties.Binary: {name})")
    for name in sorted(set(by_binary) - set(code_fns)):
        fail(f"{', '.join(by_binary[name])}: builds {name!r}, which the route table does not know")
    lid_of = {b: lids[0] for b, lids in by_binary.items()}
    name_of = {lid: b for b, lid in lid_of.items()}
    param = t.get("Parameters", {}).get("Architecture", {})
    if param.get("Default") != "arm64":
        fail("Parameters.Architecture must default to arm64")

    # ------------------------------------------------------------ routes
    deployed = translated_routes(t)
    if deployed is not None:
        apis, routes = deployed
        if len(apis) != 1:
            fail(f"the stack must have exactly one HTTP API, it has {len(apis)}: {', '.join(sorted(apis))}"
                 " (every HttpApi event needs ApiId: !Ref HttpApi)")
        want = {}
        for f in table["functions"]:
            for rk in f["routes"]:
                want[rk] = f["function"]
        for rk, fn in sorted(want.items()):
            got = routes.get(rk, [])
            if not got:
                fail(f"{rk}: contract route of {fn} is not in the HTTP API")
            elif len(got) > 1:
                fail(f"{rk}: {len(got)} integrations ({', '.join(got)}); exactly one expected")
            elif name_of.get(got[0]) != fn:
                fail(f"{rk}: integrated with {got[0]}, but the route table gives it to {fn}")
        for rk in table.get("dev_server_only", []):
            if rk in routes:
                fail(f"{rk}: a dev-server-only route must not be deployed")
        defaults = [rk for rk in routes if rk.startswith("ANY $default")]
        if len(defaults) > 1 or any(len(routes[d]) > 1 for d in defaults):
            fail("more than one $default route")
        for rk in sorted(set(routes) - set(want) - set(defaults) - set(table.get("dev_server_only", []))):
            fail(f"{rk}: a route of the template ({', '.join(routes[rk])}) that the route table does not have")

    # ------------------------------------------------------------ settings and events
    with open(os.path.join(ROOT, "shared", "src", "webhooks", "local.rs")) as f:
        m = re.search(r"const STREAM_BATCH_SIZE: i32 = (\d+);", f.read())
    local_stream_batch = int(m.group(1)) if m else None
    if local_stream_batch is None:
        fail("STREAM_BATCH_SIZE not found in shared/src/webhooks/local.rs")
    glob_env = glob_fn.get("Environment", {}).get("Variables", {}) or {}
    for name, lid in sorted(lid_of.items()):
        if name not in code_fns:
            continue
        props = fn_res[lid].get("Properties", {})
        env = dict(glob_env)
        env.update(props.get("Environment", {}).get("Variables", {}) or {})
        want = set(code_fns[name]["settings"])
        have = set(env)
        for v in sorted(want - have):
            fail(f"{lid} ({name}): reads {v} but the template does not set it")
        for v in sorted(have - want - ALLOWED_EXTRA_ENV):
            fail(f"{lid} ({name}): the template sets {v}, which {name} does not read")
        for v in sorted(want & have):
            kind, rtype = SETTING_KINDS.get(v, (None, None))
            val = env[v]
            if kind == "ref":
                target = ref_name(val)
                if not target or res.get(target, {}).get("Type") != rtype:
                    fail(f"{lid}: {v} must be !Ref to an {rtype}")
            elif kind == "param":
                if ref_name(val) not in t.get("Parameters", {}):
                    fail(f"{lid}: {v} must be !Ref to a template parameter")
            elif kind == "prefix":
                if not (isinstance(val, str) or sub_text(val)):
                    fail(f"{lid}: {v} must be a string or !Sub")
            elif kind == "exactly":
                if val != rtype:
                    fail(f"{lid}: {v} must be {rtype!r} in the deployed template")
            elif kind == "integer":
                if not (isinstance(val, str) and val.isdigit()):
                    fail(f"{lid}: {v} must be a whole number (as a string)")
            elif kind is None:
                fail(f"{lid}: {v} is a setting this check does not know; teach SETTING_KINDS in scripts/check_infra.py")
        events = props.get("Events", {}) or {}
        if not events:
            fail(f"{lid}: no events; nothing would ever invoke it")
        if not code_fns[name]["routes"] and not any(e.get("Type") in ("SQS", "DynamoDB", "Schedule") for e in events.values()):
            fail(f"{lid}: {name} serves no route, so it needs an SQS, DynamoDB stream or schedule event source")
        for ename, e in events.items():
            if e.get("Type") == "SQS":
                frt = e.get("Properties", {}).get("FunctionResponseTypes", [])
                if "ReportBatchItemFailures" not in frt:
                    fail(f"{lid}.{ename}: an SQS event source must set FunctionResponseTypes: [ReportBatchItemFailures]")
            if e.get("Type") == "DynamoDB":
                batch = e.get("Properties", {}).get("BatchSize")
                if batch != local_stream_batch:
                    fail(f"{lid}.{ename}: BatchSize {batch} is not STREAM_BATCH_SIZE ({local_stream_batch}) of "
                         "shared/src/webhooks/local.rs, the local poller that stands in for it")

    # ------------------------------------------------------------ IAM
    check_iam(t, res, fn_res, glob_env)

    # ------------------------------------------------------------ table
    check_table(res)

    if errors:
        print(f"infra/template.yaml does not match the code ({len(errors)} problem(s)):", file=sys.stderr)
        for e in errors:
            print(f"  - {e}", file=sys.stderr)
        return 1
    n_routes = sum(len(f["routes"]) for f in table["functions"])
    print(f"template OK: {len(code_fns)} functions, {n_routes} contract routes (+ $default), "
          f"settings, event sources, IAM and table shape match the code")
    return 0


def translated_routes(t):
    """({api logical ids}, {"METHOD /path": [function logical ids]}) of the SAM-translated template."""
    from samtranslator.translator.transform import transform

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    t = copy.deepcopy(t)
    for r in t.get("Resources", {}).values():
        if r.get("Type") == "AWS::Serverless::Function":
            r.setdefault("Properties", {})["CodeUri"] = "s3://bucket/key"  # a local path is `sam build`'s business

    class NoManagedPolicies:
        def load(self):
            return {}

    try:
        out = transform(t, {}, NoManagedPolicies())
    except Exception as e:  # the SAM translator's own message is the useful part
        fail(f"the SAM transform fails: {e}")
        return None
    apis = set()
    routes = {}
    for lid, r in out["Resources"].items():
        if r["Type"] != "AWS::ApiGatewayV2::Api":
            continue
        apis.add(lid)
        for path, methods in r["Properties"].get("Body", {}).get("paths", {}).items():
            for method, op in methods.items():
                m = "ANY" if method == "x-amazon-apigateway-any-method" else method.upper()
                uri = op.get("x-amazon-apigateway-integration", {}).get("uri", {})
                text = sub_text(uri) or json.dumps(uri)
                fn = re.search(r"\$\{(\w+)\.Arn\}", text)
                key = f"{m} {path.lstrip('/') if path == '/$default' else path}"
                routes.setdefault(key, []).append(fn.group(1) if fn else "?")
    return apis, routes


def resource_target(rsc, res):
    """The logical id a policy resource names (Ref, GetAtt, or ${X.Arn}... in a Sub), else its text."""
    name = ref_name(rsc) or (getatt(rsc) or (None,))[0]
    if name:
        return name
    text = rsc if isinstance(rsc, str) else sub_text(rsc)
    if text is None:
        return json.dumps(rsc)
    m = re.match(r"\$\{(\w+)(?:\.Arn)?\}", text)
    if m and m.group(1) in res:
        return m.group(1)
    return text


def statements(doc):
    return as_list((doc or {}).get("Statement", []))


def check_iam(t, res, fn_res, glob_env):
    roles_used = {}
    for lid, r in fn_res.items():
        props = r.get("Properties", {})
        if "Policies" in props:
            fail(f"{lid}: use its own AWS::IAM::Role, not SAM Policies (they bring managed policies with \"*\")")
        role = getatt(props.get("Role"))
        if not role or role[1] != "Arn" or res.get(role[0], {}).get("Type") != "AWS::IAM::Role":
            fail(f"{lid}: Role must be !GetAtt <its own AWS::IAM::Role>.Arn")
            continue
        roles_used.setdefault(role[0], []).append(lid)
    for role, lids in roles_used.items():
        if len(lids) > 1:
            fail(f"{role}: shared by {', '.join(sorted(lids))}; each function gets its own role")

    for lid, r in res.items():
        rtype = r.get("Type")
        props = r.get("Properties", {})
        docs = []
        if rtype == "AWS::IAM::Role":
            if props.get("ManagedPolicyArns"):
                fail(f"{lid}: managed policies are not allowed (they grant \"*\" resources)")
            docs = [p.get("PolicyDocument") for p in props.get("Policies", [])]
        elif rtype in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            docs = [props.get("PolicyDocument")]
        for doc in docs:
            for st in statements(doc):
                for a in as_list(st.get("Action", [])):
                    if not isinstance(a, str) or "*" in a:
                        fail(f"{lid}: action {a!r} has a wildcard")
                if "NotAction" in st or "NotResource" in st:
                    fail(f"{lid}: NotAction/NotResource are not allowed")
                for rsc in as_list(st.get("Resource", [])):
                    text = rsc if isinstance(rsc, str) else sub_text(rsc)
                    # A wildcard may only narrow a name under this stack
                    # (".../secret:${AWS::StackName}/tenants/*").
                    if text is not None and "*" in text and "${AWS::StackName}/" not in text.split("*")[0]:
                        fail(f"{lid}: resource {text!r} is a wildcard not scoped to this stack")

    # What each function's role reaches must be what its settings name.
    for lid, r in fn_res.items():
        props = r.get("Properties", {})
        role = getatt(props.get("Role"))
        if not role or res.get(role[0], {}).get("Type") != "AWS::IAM::Role":
            continue
        env = dict(glob_env)
        env.update(props.get("Environment", {}).get("Variables", {}) or {})
        grants = []  # (action, resource)
        for p in res[role[0]].get("Properties", {}).get("Policies", []):
            for st in statements(p.get("PolicyDocument")):
                if st.get("Effect") != "Allow":
                    continue
                for a in as_list(st.get("Action", [])):
                    for rsc in as_list(st.get("Resource", [])):
                        grants.append((a, rsc))

        def targets(prefix, action=None):
            """Logical ids (or ARN texts) the role may use with these actions."""
            out = set()
            for a, rsc in grants:
                if a.startswith(prefix) and (action is None or a == action):
                    out.add(resource_target(rsc, res))
            return out

        secret_env = {ref_name(v) for k, v in env.items() if k.endswith("_SECRET_ID") and ref_name(v)}
        readable = {x for x in targets("secretsmanager:", "secretsmanager:GetSecretValue") if res.get(x, {}).get("Type") == "AWS::SecretsManager::Secret"}
        for s in sorted(secret_env - readable):
            fail(f"{lid}: is configured with secret {s} but its role cannot read it")
        for s in sorted(readable - secret_env):
            fail(f"{lid}: its role can read secret {s}, which it is not configured with")
        prefix_grants = {x for x in targets("secretsmanager:") if x not in res}
        if "SECRETS_PREFIX" in env and not prefix_grants:
            fail(f"{lid}: has SECRETS_PREFIX but no permission on the tenant secrets")
        if "SECRETS_PREFIX" not in env and prefix_grants:
            fail(f"{lid}: may use secrets by name ({sorted(prefix_grants)}) but has no SECRETS_PREFIX")
        queue_env = {ref_name(v) for k, v in env.items() if k.endswith("_QUEUE_URL") and ref_name(v)}
        sendable = targets("sqs:", "sqs:SendMessage")
        # An event source's on-failure destination is sent to by Lambda with
        # the function's role.
        for e in (props.get("Events", {}) or {}).values():
            dest = (e.get("Properties", {}).get("DestinationConfig", {}) or {}).get("OnFailure", {})
            d = dest.get("Destination") if isinstance(dest, dict) else None
            if d is not None:
                queue_env.add(resource_target(d, res))
        # A queue the function consumes (its SQS event source) may be named
        # in its settings without a send grant (webhook-deliver sets its
        # messages' visibility); every other configured queue is sent to.
        consumed = set()
        for e in (props.get("Events", {}) or {}).values():
            if e.get("Type") == "SQS":
                q = e.get("Properties", {}).get("Queue")
                if q is not None:
                    consumed.add(resource_target(q, res))
        if not sendable <= queue_env or not queue_env <= sendable | consumed:
            fail(f"{lid}: may send to {sorted(sendable)} but is configured with queues {sorted(queue_env)}")
        mails = targets("ses:")
        if mails and "PORTAL_SENDER" not in env:
            fail(f"{lid}: may send e-mail but has no PORTAL_SENDER")
        if "PORTAL_SENDER" in env and not targets("ses:", "ses:SendEmail"):
            fail(f"{lid}: has PORTAL_SENDER but its role cannot send e-mail")
        table_ref = ref_name(env.get("TABLE_NAME"))
        db = targets("dynamodb:")
        if table_ref and table_ref not in db:
            fail(f"{lid}: has TABLE_NAME but its role cannot reach {table_ref}")
        if db - {table_ref}:
            fail(f"{lid}: its role reaches tables {sorted(db - {table_ref})} it is not configured with")
        log_group = ref_name(props.get("LoggingConfig", {}).get("LogGroup"))
        logs = targets("logs:")
        if not log_group:
            fail(f"{lid}: LoggingConfig.LogGroup must be !Ref its own log group (with retention)")
        elif logs != {log_group}:
            fail(f"{lid}: may write logs to {sorted(map(str, logs))}, expected only its own {log_group}")
        elif "RetentionInDays" not in res.get(log_group, {}).get("Properties", {}):
            fail(f"{log_group}: no RetentionInDays")


def check_table(res):
    with open(os.path.join(ROOT, "shared", "src", "store", "keys.rs")) as f:
        consts = dict(re.findall(r'pub const (\w+): &str = "([^"]*)";', f.read()))
    tables = [r for r in res.values() if r.get("Type") == "AWS::DynamoDB::Table"]
    if len(tables) != 1:
        fail(f"expected one DynamoDB table, found {len(tables)}")
        return
    p = tables[0].get("Properties", {})
    ks = {k["KeyType"]: k["AttributeName"] for k in p.get("KeySchema", [])}
    if ks != {"HASH": consts.get("PK"), "RANGE": consts.get("SK")}:
        fail(f"table key schema {ks} does not match keys.rs PK/SK")
    gsis = {g["IndexName"]: {k["KeyType"]: k["AttributeName"] for k in g["KeySchema"]} for g in p.get("GlobalSecondaryIndexes", [])}
    if gsis.get(consts.get("GSI1")) != {"HASH": consts.get("GSI1PK"), "RANGE": consts.get("GSI1SK")}:
        fail(f"GSI {consts.get('GSI1')} on {consts.get('GSI1PK')}/{consts.get('GSI1SK')} (keys.rs) is not in the template: {gsis}")
    if gsis.get(consts.get("GSI2")) != {"HASH": consts.get("GSI2PK"), "RANGE": consts.get("GSI2SK")}:
        fail(f"GSI {consts.get('GSI2')} on {consts.get('GSI2PK')}/{consts.get('GSI2SK')} (keys.rs) is not in the template: {gsis}")
    with open(os.path.join(ROOT, "shared", "src", "store", "schema.rs")) as f:
        m = re.search(r"GSI2_PROJECTED: \[&str; \d+\] = \[(.*?)\];", f.read(), re.S)
    with open(os.path.join(ROOT, "shared", "src", "store", "attrs.rs")) as f:
        attrs = dict(re.findall(r'pub const (\w+): &str = "([^"]*)";', f.read()))
    want = sorted(attrs.get(n.strip().removeprefix("a::"), "?") for n in (m.group(1).split(",") if m else []) if n.strip())
    gsi2 = next((g for g in p.get("GlobalSecondaryIndexes", []) if g["IndexName"] == consts.get("GSI2")), {})
    have = sorted(gsi2.get("Projection", {}).get("NonKeyAttributes", []))
    if not want or want != have:
        fail(f"GSI2 projects {have}, schema.rs GSI2_PROJECTED says {want}")
    ttl = p.get("TimeToLiveSpecification", {})
    if ttl.get("AttributeName") != consts.get("TTL") or ttl.get("Enabled") is not True:
        fail(f"table TTL must be enabled on {consts.get('TTL')!r} (keys.rs)")
    if p.get("BillingMode") != "PAY_PER_REQUEST":
        fail("table must be on-demand (BillingMode: PAY_PER_REQUEST)")
    if p.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled") is not True:
        fail("table must have point-in-time recovery")
    if p.get("SSESpecification", {}).get("SSEEnabled") is not True:
        fail("table must have SSESpecification.SSEEnabled: true")


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    if len(sys.argv) == 3:
        TEMPLATE = sys.argv[2]
    sys.exit(main(sys.argv[1]))
