#!/usr/bin/env bash
# The CPU cost of a warm request's hot path (no I/O), measured by
# shared/benches/hot_path.rs in the release profile; the table is written
# into docs/benchmarks.md between the hot-path markers.
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(cargo bench --locked -p licensing-shared --bench hot_path 2>/dev/null | grep '^|')"
printf '%s\n' "$out"
cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
python3 - "$out" "$cpu" <<'PY'
import sys, datetime, re
table, cpu = sys.argv[1], sys.argv[2]
path = "docs/benchmarks.md"
doc = open(path).read()
block = (f"<!-- hot-path:begin -->\nMeasured {datetime.date.today()} on {cpu} (one core), `cargo bench -p licensing-shared --bench hot_path`:\n\n"
         + table + "\n<!-- hot-path:end -->")
if "<!-- hot-path:begin -->" in doc:
    doc = re.sub(r"<!-- hot-path:begin -->.*?<!-- hot-path:end -->", block, doc, flags=re.S)
else:
    doc += "\n## Hot path: CPU per warm request\n\n" + block + "\n"
open(path, "w").write(doc)
PY
