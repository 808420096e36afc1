#!/usr/bin/env bash
# Builds the local test images without any registry, by `docker import` of a root
# file system assembled here:
#   vigil-test/busybox:1  busybox-static with its applets linked in /bin
#   vigil-test/bash:2     bash, coreutils, unshare, nsenter and a few tools copied from the host with
#                         the shared libraries they need (found with ldd)
# An image that already exists is kept; VIGIL_REBUILD_IMAGES=1 forces a rebuild.
set -euo pipefail
log() { printf '[images] %s\n' "$*" >&2; }

have_image() { [ "${VIGIL_REBUILD_IMAGES:-0}" != 1 ] && docker image inspect "$1" >/dev/null 2>&1; }

import_rootfs() { # import_rootfs DIR IMAGE
  tar -C "$1" -c . | docker import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'CMD ["/bin/sh"]' - "$2" >/dev/null
  log "built $2"
}

base_dirs() { mkdir -p "$1"/{bin,sbin,etc,proc,sys,dev,tmp,root,usr/bin,usr/sbin,var/tmp,run}; chmod 1777 "$1/tmp"; }

base_etc() {
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$1/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$1/etc/group"
  printf 'root:*:19000:0:99999:7:::\n' >"$1/etc/shadow"; chmod 640 "$1/etc/shadow"
}

workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT

if ! have_image vigil-test/busybox:1; then
  root="$workdir/busybox"; base_dirs "$root"; base_etc "$root"
  cp /bin/busybox "$root/bin/busybox"
  for applet in $("$root/bin/busybox" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
  done
  import_rootfs "$root" vigil-test/busybox:1
fi

if ! have_image vigil-test/bash:2; then
  root="$workdir/bash"; base_dirs "$root"; base_etc "$root"
  tools=(bash cat ls cp mv rm ln mkdir chmod chown touch id sleep echo env head tail grep sed stat readlink true false unshare nsenter)
  for t in "${tools[@]}"; do
    src=$(type -P "$t" || true)
    [ -n "$src" ] || { log "skipping $t: not on the host"; continue; }
    src=$(readlink -f "$src")
    cp "$src" "$root/bin/$t"
    # Copy each shared library (and the loader) at the path the binary expects.
    ldd "$src" 2>/dev/null | grep -oE '/[^ ]+' | while read -r lib; do
      [ -e "$lib" ] || continue
      mkdir -p "$root$(dirname "$lib")"
      cp -L "$lib" "$root$lib"
    done
  done
  ln -sf bash "$root/bin/sh"
  import_rootfs "$root" vigil-test/bash:2
fi
