import json
import sys

summary_path, reward_path = sys.argv[1], sys.argv[2]
want_total = 289.25
want_regions = {"north": 140.0, "south": 100.0, "east": 42.0, "west": 7.25}
scores = {"total": 0, "by_region": 0}
try:
    with open(summary_path) as fh:
        data = json.load(fh)
except (OSError, ValueError) as exc:
    print(f"no usable summary: {exc}")
    data = None
if isinstance(data, dict):
    total = data.get("total")
    if isinstance(total, (int, float)) and abs(total - want_total) < 1e-6:
        scores["total"] = 1
    regions = data.get("by_region")
    if isinstance(regions, dict) and set(regions) == set(want_regions) and all(
            isinstance(regions[k], (int, float)) and abs(regions[k] - v) < 1e-6 for k, v in want_regions.items()):
        scores["by_region"] = 1
scores["reward"] = int(scores["total"] and scores["by_region"])
print(json.dumps(scores))
with open(reward_path, "w") as fh:
    json.dump(scores, fh)
