#!/usr/bin/env bash
# The whole test suite, from a bare machine: set-up first (idempotent), then every
# test under dist/test, one file at a time (tests share the Docker engine and the kernel).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec node --test --test-concurrency=1 --test-timeout=600000 "${@:-dist/test}"
