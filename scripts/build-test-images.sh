#!/usr/bin/env bash
# Builds the local test images without any registry, by `docker import` of a root
# file system assembled here from host files (binaries with the shared libraries ldd
# finds for them, copied at the paths they are loaded from):
#   vigil-test/busybox:1  busybox-static with its applets linked in /bin
#   vigil-test/bash:2     bash, coreutils, unshare, nsenter and a few tools
#   vigil-test/nginx:1    Debian's nginx serving /srv/www on port 8080 in the foreground
#                         (master as root, one worker as www-data), logs on stdout/stderr
#   vigil-test/redis:1    Debian's redis-server as user redis on port 6379, RDB and
#                         append-only persistence in /data; redis-cli
#   vigil-test/python:1   Debian's /usr/bin/python3 with the standard library of
#                         /usr/lib/python3.11 (no test suites, bytecode, IDLE, tkinter,
#                         ensurepip, lib2to3, distutils, turtledemo) and its lib-dynload modules
#   vigil-test/apache:1   Debian's apache2 (event MPM) serving /srv/www on port 8080 in the
#                         foreground; vigil-test/fio:1 Debian's fio (both for bench/overhead)
# The nginx, redis, python, apache and fio images also have busybox-static as /bin/sh with its applets
# (wget, ps, ...) for `docker exec`. An image that already exists is kept;
# VIGIL_REBUILD_IMAGES=1 forces a rebuild.
set -euo pipefail
log() { printf '[images] %s\n' "$*" >&2; }

have_image() { [ "${VIGIL_REBUILD_IMAGES:-0}" != 1 ] && docker image inspect "$1" >/dev/null 2>&1; }

import_rootfs() { # import_rootfs DIR IMAGE [CHANGE...]  (Dockerfile lines; default CMD ["/bin/sh"])
  local dir=$1 image=$2; shift 2
  [ $# -gt 0 ] || set -- 'CMD ["/bin/sh"]'
  local changes=(-c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin') c
  for c in "$@"; do changes+=(-c "$c"); done
  local old; old=$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)
  tar -C "$dir" -c . | docker import "${changes[@]}" - "$image" >/dev/null
  # A rebuild leaves the image it replaces untagged: drop it unless a container still uses it.
  [ -z "$old" ] || [ "$old" = "$(docker image inspect -f '{{.Id}}' "$image")" ] || docker image rm "$old" >/dev/null 2>&1 || true
  log "built $image ($(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%.1f MB", $1/1e6}'))"
}

base_dirs() { mkdir -p "$1"/{bin,sbin,etc,proc,sys,dev,tmp,root,usr/bin,usr/sbin,var/tmp,run}; chmod 1777 "$1/tmp"; }

base_etc() {
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$1/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$1/etc/group"
  printf 'root:*:19000:0:99999:7:::\n' >"$1/etc/shadow"; chmod 640 "$1/etc/shadow"
}

workload_base() { # workload_base ROOT: the base of the nginx, redis and python images
  base_dirs "$1"; base_etc "$1"
  chmod 1777 "$1/var/tmp"
  printf 'nobody:*:19000:0:99999:7:::\n' >>"$1/etc/shadow"
  printf 'passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\nservices: files\nprotocols: files\n' >"$1/etc/nsswitch.conf"
}

add_user() { # add_user ROOT NAME UID HOME: a system user with a group of the same name and id
  printf '%s:x:%s:%s:%s:%s:/bin/false\n' "$2" "$3" "$3" "$2" "$4" >>"$1/etc/passwd"
  printf '%s:x:%s:\n' "$2" "$3" >>"$1/etc/group"
  printf '%s:*:19000:0:99999:7:::\n' "$2" >>"$1/etc/shadow"
}

copy_libs() { # copy_libs ROOT FILE...: each shared library (and the loader) FILE loads, at the path it expects
  local root=$1 f lib; shift
  for f in "$@"; do
    { ldd "$f" 2>/dev/null || true; } | { grep -oE '/[^ ]+' || true; } | while read -r lib; do
      [ -e "$lib" ] && [ ! -e "$root$lib" ] || continue
      mkdir -p "$root$(dirname "$lib")"
      cp -L "$lib" "$root$lib"
    done
  done
}

copy_bin() { # copy_bin ROOT SRC [DEST]: a host binary (symlinks resolved) and its libraries
  local dest=${3:-$2}
  mkdir -p "$1$(dirname "$dest")"
  cp -L "$2" "$1$dest"
  copy_libs "$1" "$2"
}

add_libgcc_s() { # add_libgcc_s ROOT: glibc dlopens libgcc_s for pthread_exit and cancellation, which ldd does not show
  local libc; libc=$(ldd /bin/sh | awk '$1 == "libc.so.6" { print $3 }')
  copy_bin "$1" "$(dirname "$libc")/libgcc_s.so.1"
}

add_busybox() { # add_busybox ROOT: busybox-static as /bin/busybox, its applets linked in /bin
  local root=$1 applet d
  cp /bin/busybox "$root/bin/busybox"
  for applet in $("$root/bin/busybox" --list); do
    [ "$applet" = busybox ] && continue
    # Leave a real program of that name alone (busybox in /bin would come last on PATH anyway).
    for d in bin sbin usr/bin usr/sbin; do [ -e "$root/$d/$applet" ] && continue 2; done
    ln -s busybox "$root/bin/$applet"
  done
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
    copy_bin "$root" "$(readlink -f "$src")" "/bin/$t"
  done
  ln -sf bash "$root/bin/sh"
  import_rootfs "$root" vigil-test/bash:2
fi

need() { # need IMAGE FILE...: the host files an image is made of, or a skip naming the missing package
  local image=$1 f; shift
  for f in "$@"; do
    [ -e "$f" ] || { log "skipping $image: $f missing (scripts/bootstrap.sh installs its Debian package)"; return 1; }
  done
}

if ! have_image vigil-test/nginx:1 && need vigil-test/nginx:1 /usr/sbin/nginx /etc/nginx/mime.types; then
  root="$workdir/nginx"; workload_base "$root"
  add_user "$root" www-data 33 /var/www
  copy_bin "$root" /usr/sbin/nginx
  mkdir -p "$root"/etc/nginx "$root"/var/lib/nginx "$root"/var/log/nginx "$root"/var/www "$root"/srv/www "$root"/usr/share/nginx
  cp /etc/nginx/mime.types "$root/etc/nginx/mime.types"
  cat >"$root/etc/nginx/nginx.conf" <<'CONF'
# vigil-test/nginx:1: static files from /srv/www on port 8080, in the foreground.
user www-data;
worker_processes 1;
daemon off;
pid /run/nginx.pid;
error_log stderr notice;

events {
  worker_connections 256;
}

http {
  include /etc/nginx/mime.types;
  default_type application/octet-stream;
  access_log /dev/stdout;
  sendfile on;
  keepalive_timeout 65;
  server_tokens off;

  server {
    listen 8080 default_server;
    root /srv/www;
    index index.html;
    location / {
      try_files $uri $uri/ =404;
    }
  }
}
CONF
  printf '<!doctype html>\n<html><head><title>vigil-test nginx</title></head>\n<body><h1>vigil-test nginx</h1></body></html>\n' >"$root/srv/www/index.html"
  printf 'vigil-test static file\n' >"$root/srv/www/hello.txt"
  add_libgcc_s "$root"; add_busybox "$root"
  import_rootfs "$root" vigil-test/nginx:1 'EXPOSE 8080/tcp' 'CMD ["nginx"]'
fi

if ! have_image vigil-test/redis:1 && need vigil-test/redis:1 /usr/bin/redis-check-rdb /usr/bin/redis-cli; then
  root="$workdir/redis"; workload_base "$root"
  add_user "$root" redis 999 /data
  # Debian ships redis-server as a link to redis-check-rdb: one binary, chosen by argv[0].
  copy_bin "$root" /usr/bin/redis-check-rdb
  ln -s redis-check-rdb "$root/usr/bin/redis-server"
  copy_bin "$root" /usr/bin/redis-cli
  mkdir -p "$root/etc/redis" "$root/data"
  cat >"$root/etc/redis/redis.conf" <<'CONF'
# vigil-test/redis:1: foreground, port 6379 on every address, persistence in /data.
bind 0.0.0.0
protected-mode no
port 6379
daemonize no
supervised no
loglevel notice
logfile ""
dir /data
dbfilename dump.rdb
save 3600 1 300 100 60 10000
appendonly yes
appendfilename "appendonly.aof"
appenddirname "appendonlydir"
appendfsync everysec
CONF
  chown -R 999:999 "$root/data"; chmod 750 "$root/data"
  add_libgcc_s "$root"; add_busybox "$root"
  import_rootfs "$root" vigil-test/redis:1 'USER redis' 'WORKDIR /data' 'EXPOSE 6379/tcp' \
    'CMD ["redis-server", "/etc/redis/redis.conf"]'
fi

if ! have_image vigil-test/python:1 && need vigil-test/python:1 /usr/bin/python3 /usr/lib/python3.11/os.py; then
  root="$workdir/python"; workload_base "$root"
  real=$(readlink -f /usr/bin/python3)   # /usr/bin/python3.11; python3 links to it as on Debian
  copy_bin "$root" "$real"
  ln -s "$(basename "$real")" "$root/usr/bin/python3"
  mkdir -p "$root/usr/lib" "$root/etc/python3.11"
  # The standard library without test suites, bytecode, or what a server workload does not use.
  tar -C /usr/lib -c \
    --exclude=__pycache__ --exclude=test --exclude=tests --exclude=idle_test \
    --exclude='_test*.so' --exclude='_xxtestfuzz*.so' --exclude='xxlimited*.so' \
    --exclude=python3.11/idlelib --exclude=python3.11/tkinter --exclude=python3.11/turtledemo \
    --exclude=python3.11/turtle.py --exclude=python3.11/ensurepip --exclude=python3.11/lib2to3 \
    --exclude=python3.11/distutils --exclude='python3.11/config-3.11-*' --exclude=python3.11/dist-packages \
    --exclude=python3.11/site-packages \
    python3.11 | tar -C "$root/usr/lib" -x
  cp /etc/python3.11/sitecustomize.py "$root/etc/python3.11/" 2>/dev/null || rm -f "$root/usr/lib/python3.11/sitecustomize.py"
  copy_libs "$root" "$root"/usr/lib/python3.11/lib-dynload/*.so
  add_libgcc_s "$root"; add_busybox "$root"
  # No bytecode written at run time: the stdlib is read-only for a workload (no writes under /usr).
  import_rootfs "$root" vigil-test/python:1 'ENV LANG=C.UTF-8' 'ENV PYTHONDONTWRITEBYTECODE=1' 'CMD ["python3"]'
fi

# The images of the overhead benchmark (bench/overhead): Debian's apache2 and fio.
if ! have_image vigil-test/apache:1 && need vigil-test/apache:1 /usr/sbin/apache2 /usr/lib/apache2/modules/mod_mpm_event.so /etc/mime.types; then
  root="$workdir/apache"; workload_base "$root"
  add_user "$root" www-data 33 /var/www
  copy_bin "$root" /usr/sbin/apache2
  modules=(mpm_event authz_core mime dir)
  for m in "${modules[@]}"; do copy_bin "$root" "/usr/lib/apache2/modules/mod_$m.so"; done
  mkdir -p "$root/etc/apache2" "$root/srv/www" "$root/run/apache2" "$root/var/log/apache2"
  cp /etc/mime.types "$root/etc/mime.types"
  {
    echo '# vigil-test/apache:1: static files from /srv/www on port 8080, in the foreground.'
    for m in "${modules[@]}"; do echo "LoadModule ${m}_module /usr/lib/apache2/modules/mod_$m.so"; done
    cat <<'CONF'
ServerRoot /etc/apache2
ServerName vigil-test-apache
Listen 8080
User www-data
Group www-data
PidFile /run/apache2/apache2.pid
DefaultRuntimeDir /run/apache2
ErrorLog /dev/stderr
LogLevel warn
TypesConfig /etc/mime.types
DocumentRoot /srv/www
DirectoryIndex index.html
KeepAlive On
<Directory />
  Require all denied
</Directory>
<Directory /srv/www>
  Require all granted
</Directory>
CONF
  } >"$root/etc/apache2/apache2.conf"
  printf '<!doctype html>\n<html><head><title>vigil-test apache</title></head>\n<body><h1>vigil-test apache</h1></body></html>\n' >"$root/srv/www/index.html"
  add_libgcc_s "$root"; add_busybox "$root"
  import_rootfs "$root" vigil-test/apache:1 'EXPOSE 8080/tcp' \
    'CMD ["apache2", "-f", "/etc/apache2/apache2.conf", "-DFOREGROUND"]'
fi

if ! have_image vigil-test/fio:1 && need vigil-test/fio:1 /usr/bin/fio; then
  root="$workdir/fio"; workload_base "$root"
  copy_bin "$root" /usr/bin/fio
  mkdir -p "$root/data"
  add_libgcc_s "$root"; add_busybox "$root"
  import_rootfs "$root" vigil-test/fio:1 'WORKDIR /data' 'CMD ["fio", "--version"]'
fi
