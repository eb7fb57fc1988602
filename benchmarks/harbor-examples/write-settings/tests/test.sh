#!/bin/bash
# Harbor verifier: byte-for-byte comparison with the expected file.
mkdir -p /logs/verifier
if cmp /tests/expected.ini /app/config/settings.ini; then
  echo 1 > /logs/verifier/reward.txt
else
  echo 0 > /logs/verifier/reward.txt
fi
