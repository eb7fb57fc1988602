#!/bin/bash
# Harbor verifier with several rewards in reward.json: "reward" (both parts right)
# is the task's reward; "total" and "by_region" grade each part on its own.
mkdir -p /logs/verifier
python3 /tests/grade.py "${SUMMARY_PATH:?}" /logs/verifier/reward.json
