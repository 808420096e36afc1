#!/usr/bin/env bash
# Idempotent set-up of everything vigil needs on a bare Debian 12 host (run as root):
# Debian packages, npm packages, bpffs/tracefs, a Docker engine, the BPF object,
# the TypeScript build and the local test images. Safe to run again: each step checks
# first and does nothing when its work is already done.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '[bootstrap] %s\n' "$*" >&2; }

if [ "$(id -u)" != 0 ]; then
  echo "bootstrap: must run as root (it installs packages, mounts bpffs and starts dockerd)" >&2
  exit 1
fi

# --- Debian packages -------------------------------------------------------
APT_PACKAGES=(
  clang llvm libbpf-dev bpftool make          # BPF build (CO-RE, vmlinux.h from BTF)
  docker.io busybox-static iproute2           # container engine, test images, netns
  swtpm swtpm-tools tpm2-tools                # TPM for the BMC service and its tests
  gcc libc6-dev                               # static test fixtures, the layout probe, bench loops
  strace
  nginx redis-server python3                  # the workload test images (files copied, services unused)
  apache2 apache2-utils fio auditd            # bench/overhead: Apache and fio images, ab, the auditd mode
)
# Packages whose service must not run (or start at boot) on the host: only their files are used
# (auditd is started by bench/overhead for its own mode only).
HOST_SERVICES_OFF=(nginx redis-server apache2 auditd)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  apt-get update -q >/dev/null
  # Their services do not start during the install: a policy-rc.d of our own for the time of
  # it (unless one is in place) denies them (invoke-rc.d passes "nginx", deb-systemd-invoke
  # "nginx.service") and allows the rest (docker.io).
  own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    { echo '#!/bin/sh'; echo 'case "${1%.service}" in'
      echo "  $(IFS='|'; echo "${HOST_SERVICES_OFF[*]}")) exit 101 ;;"
      echo 'esac'; echo 'exit 0'; } >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d; own_policy=1
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  if [ "$own_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; trap - EXIT; fi
  for svc in "${HOST_SERVICES_OFF[@]}"; do
    if printf '%s\n' "${missing[@]}" | grep -qx "$svc" && command -v systemctl >/dev/null; then
      systemctl disable "$svc" >/dev/null 2>&1 || true
    fi
  done
fi

# --- npm packages ----------------------------------------------------------
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error
fi

# --- kernel file systems ---------------------------------------------------
mountpoint -q /sys/fs/bpf || { log "mounting bpffs"; mount -t bpf bpf /sys/fs/bpf; }
if [ ! -d /sys/kernel/tracing/events ] && ! mountpoint -q /sys/kernel/tracing; then
  log "mounting tracefs"; mount -t tracefs tracefs /sys/kernel/tracing || true
fi

# --- Docker engine ---------------------------------------------------------
if ! docker info >/dev/null 2>&1; then
  log "starting dockerd"
  mkdir -p /var/log
  # A session of its own: killing the process group that ran bootstrap (a CI step, a shell
  # job stopped) must not take the engine with it. Appended: an earlier engine's log stays.
  setsid nohup dockerd >>/var/log/vigil-dockerd.log 2>&1 < /dev/null &
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { echo "bootstrap: dockerd did not start; see /var/log/vigil-dockerd.log" >&2; exit 1; }
fi

# --- builds ----------------------------------------------------------------
log "building BPF object"
make -s -C bpf
# The log verifier's optional native helper (src/log/native/chain.c; without it the same checks run in TypeScript, slower).
make -s -C src/log/native || log "the log verifier's native helper did not build: vigil verify runs its checks in TypeScript (slower)"
log "building TypeScript"
npx tsc -p tsconfig.json

# --- local test images (no registry) --------------------------------------
bash scripts/build-test-images.sh
log "ready"
