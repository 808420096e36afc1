#!/usr/bin/env bash
# Sets the host up (idempotent) and runs the agent with the default configuration,
# printing events live in the paper's text format. With --demo, a container from the
# local test image does something suspicious every few seconds so there is something
# to see. Other arguments go to `vigil agent` (see `vigil agent --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
demo=0
args=()
for a in "$@"; do
  if [ "$a" = --demo ]; then demo=1; else args+=("$a"); fi
done
bash scripts/bootstrap.sh
if [ "$demo" = 1 ]; then
  name="vigil-demo-$$"
  trap 'docker rm -f "$name" >/dev/null 2>&1 || true' EXIT
  (
    sleep 3
    docker run -d --pull never --name "$name" vigil-test/bash:2 \
      sh -c 'while true; do cat /etc/shadow >/dev/null; id; ls /root; sleep 5; done' >/dev/null
  ) &
fi
node dist/src/cli/main.js agent ${args[@]+"${args[@]}"}
