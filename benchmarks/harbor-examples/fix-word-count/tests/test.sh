#!/bin/bash
# Harbor verifier: the reward is 1 when every check of test_wordcount.py passes.
mkdir -p /logs/verifier
if python3 /tests/test_wordcount.py; then
  echo 1 > /logs/verifier/reward.txt
else
  echo 0 > /logs/verifier/reward.txt
fi
