#!/usr/bin/env bash
# The only way expected sample outputs are rewritten: reruns the golden tests
# with BLESS=1, which writes samples/<case>/expected/*.csv from the current
# binary. Review the diff (git diff samples/) before committing it.
set -euo pipefail
cd "$(dirname "$0")/.."
BLESS=1 cargo test --profile test-release --test golden -- --test-threads 1 --skip expected_messages
git status --short samples/
