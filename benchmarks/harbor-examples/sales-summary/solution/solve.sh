#!/bin/bash
set -e
python3 - <<'PY'
import csv, json
total, regions = 0.0, {}
with open("/app/sales.csv") as fh:
    for row in csv.DictReader(fh):
        amount = float(row["amount"])
        total += amount
        regions[row["region"]] = regions.get(row["region"], 0.0) + amount
with open("/app/summary.json", "w") as fh:
    json.dump({"total": total, "by_region": regions}, fh)
PY
