#!/usr/bin/env bash
# Sets the host up (idempotent) and runs the agent with the default policy, printing
# events live in the paper's text format. With --demo, the screen shows only the alerts
# (INSECURE events, each with the rule that fired) while every event goes to a file it
# names, and a container from the local test image does something ordinary and
# something suspicious every few seconds so there is something to see. Other arguments
# go to `vigil agent` (see `vigil agent --help`).
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
  log="${VIGIL_DEMO_LOG:-/tmp/vigil-demo-events.jsonl}"
  echo "vigil demo: alerts on screen; every event is written to $log" >&2
  trap 'docker rm -f "$name" >/dev/null 2>&1 || true' EXIT
  (
    sleep 3
    # Ordinary work (id, ls, date: NORMAL) and an attacker's (reading /etc/shadow and
    # /etc/passwd by name, a binary dropped in /tmp, a cron entry: INSECURE).
    docker run -d --pull never --name "$name" vigil-test/bash:2 \
      sh -c 'while true; do id >/dev/null; ls / >/dev/null; cat /etc/shadow >/dev/null; cat /etc/passwd >/dev/null;
        cp /bin/true /tmp/.x; /tmp/.x; echo "* * * * * root /tmp/.x" >> /etc/crontab; sleep 5; done' >/dev/null
    sleep 2
    docker exec "$name" sh -c 'ls /root' >/dev/null 2>&1 || true
  ) &
  args=(--alerts text:- --output "jsonl:$log" ${args[@]+"${args[@]}"})
fi
node dist/src/cli/main.js agent ${args[@]+"${args[@]}"}
