#!/usr/bin/env bash
# The TPM client and BMC service tests only (swtpm, tpm2-tools and root for the netns
# test): build, then run test/tpm and test/bmc one file at a time.
set -euo pipefail
cd "$(dirname "$0")/.."
npx tsc -p tsconfig.json
mapfile -t files < <(find dist/test/tpm dist/test/bmc -name '*.test.js' | sort)
exec node --test --test-concurrency=1 "$@" "${files[@]}"
