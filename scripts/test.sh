#!/usr/bin/env bash
# The whole test suite, from a bare machine: set-up first (idempotent), then every
# test under dist/test, one file at a time (tests share the Docker engine and the kernel).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
# Only *.test.js files: helpers and fixtures (a child process a test runs) are not tests.
if [ "$#" -eq 0 ]; then
  mapfile -t files < <(find dist/test -name '*.test.js' | sort)
  set -- "${files[@]}"
fi
exec node --test --test-concurrency=1 --test-timeout=600000 "$@"
