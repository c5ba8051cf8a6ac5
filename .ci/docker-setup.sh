#!/usr/bin/env bash
# Prepares a Docker engine and the local test images for sykli's container tests.
# Idempotent. Usage: docker-setup.sh [install|images|all]
#   install  installs docker.io and busybox-static if missing (apt-get; needs root)
#   images   builds the test images from a static busybox, without any registry, on the engine
#            that answers (it must already run: sykli.rs runs dockerd as a background task)
#   all      (default, for a manual set-up) install, start dockerd if no engine answers, images
#
# Images built (all from one static-busybox rootfs, see the definitions below):
#   sykli-test/busybox          sh and the common applets
#   sykli-test/echo-server      greets every TCP connection on 7777 (EXPOSEd port)
#   sykli-test/healthy-server   the same, ready by HEALTHCHECK after about 1 s
#   sykli-test/broken-service   exposes 7777 but exits with code 3 at once
#   sykli-test/web-noshell      busybox httpd on 7777 (EXPOSEd) in an image without a shell
set -euo pipefail

mode="${1:-all}"
case "$mode" in
    install|images|all) ;;
    *) echo "docker-setup: unknown mode '$mode' (expected install, images or all)" >&2; exit 2 ;;
esac

log_file="${SYKLI_DOCKERD_LOG:-/var/log/sykli-dockerd.log}"
wait_secs="${SYKLI_DOCKERD_WAIT:-60}"

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

install_packages() {
    local need_install=()
    # The engine, not just a client: machines may ship a docker CLI without dockerd.
    command -v dockerd >/dev/null 2>&1 || need_install+=(docker.io)
    installed busybox-static || need_install+=(busybox-static)
    if [ ${#need_install[@]} -gt 0 ]; then
        echo "docker-setup: installing ${need_install[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_install[@]}"
    fi
}

start_engine() {
    if ! docker info >/dev/null 2>&1; then
        if [ -n "${DOCKER_HOST:-}" ] && [ "${DOCKER_HOST}" != "unix:///var/run/docker.sock" ]; then
            echo "docker-setup: DOCKER_HOST=${DOCKER_HOST} does not answer; not starting a local dockerd" >&2
            exit 1
        fi
        echo "docker-setup: starting dockerd (log: $log_file)"
        if [ "$(id -u)" -ne 0 ]; then
            echo "docker-setup: starting dockerd needs root" >&2
            exit 1
        fi
        nohup dockerd >"$log_file" 2>&1 &
        deadline=$((SECONDS + wait_secs))
        until docker info >/dev/null 2>&1; do
            if [ $SECONDS -ge $deadline ]; then
                echo "docker-setup: dockerd did not answer within ${wait_secs}s; last log lines:" >&2
                tail -n 30 "$log_file" >&2 || true
                exit 1
            fi
            sleep 0.5
        done
    fi
}

if [ "$mode" = install ] || [ "$mode" = all ]; then
    install_packages
    [ "$mode" = install ] && exit 0
fi
if [ "$mode" = all ]; then
    start_engine
elif ! docker info >/dev/null 2>&1; then
    echo "docker-setup: no Docker engine answers (docker info failed); start one first" >&2
    exit 1
fi
echo "docker-setup: engine up: $(docker version --format '{{.Server.Version}}' 2>/dev/null || echo unknown)"

busybox_bin="$(command -v busybox || echo /bin/busybox)"
if ! file -L "$busybox_bin" 2>/dev/null | grep -q 'statically linked' && ! ldd "$busybox_bin" 2>&1 | grep -q 'not a dynamic'; then
    echo "docker-setup: $busybox_bin is not static; install busybox-static" >&2
    exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

build_rootfs() {
    local root="$1"
    mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,tmp,etc,root,var/www,proc,sys,dev,work}
    chmod 1777 "$root/tmp"
    cp "$busybox_bin" "$root/bin/busybox"
    local applet
    for applet in $("$busybox_bin" --list); do
        [ "$applet" = busybox ] || ln -sf /bin/busybox "$root/bin/$applet"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
}

# Bump when an image definition changes: images with another version are rebuilt.
images_version=4

# import_image NAME ROOTFS [--change ...]: imports ROOTFS as NAME unless it is up to date.
import_image() {
    local name="$1" root="$2"
    shift 2
    local have
    have="$(docker image inspect "$name" --format '{{ index .Config.Labels "dev.sykli.test-images" }}' 2>/dev/null || true)"
    if [ "$have" = "$images_version" ]; then
        return 0
    fi
    tar -C "$root" -c . | docker import \
        -c 'ENV PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin' \
        -c "LABEL dev.sykli.test-images=$images_version" \
        "$@" - "$name" >/dev/null
    echo "docker-setup: built $name"
}

build_rootfs "$work/rootfs"
cat >"$work/rootfs/bin/serve-hello" <<'SH'
#!/bin/sh
echo "hello from service"
SH
chmod 755 "$work/rootfs/bin/serve-hello"

# A plain busybox userland.
import_image sykli-test/busybox:latest "$work/rootfs" -c 'CMD ["/bin/sh"]'

# A service exposing 7777/tcp that greets every connection (readiness: open port).
import_image sykli-test/echo-server:latest "$work/rootfs" \
    -c 'EXPOSE 7777/tcp' \
    -c 'CMD ["/bin/nc", "-ll", "-p", "7777", "-e", "/bin/serve-hello"]'

# The same greeting, but ready only once its HEALTHCHECK passes (about 1 s after start).
import_image sykli-test/healthy-server:latest "$work/rootfs" \
    -c 'HEALTHCHECK --interval=250ms --timeout=2s --start-period=10s CMD test -f /tmp/ready' \
    -c 'CMD ["/bin/sh", "-c", "/bin/nc -ll -p 7777 -e /bin/serve-hello & sleep 1; touch /tmp/ready; wait"]'

# A web server in an image without a shell (only busybox and its httpd applet).
mkdir -p "$work/noshell/bin" "$work/noshell/www"
cp "$busybox_bin" "$work/noshell/bin/busybox"
ln -sf /bin/busybox "$work/noshell/bin/httpd"
echo "hello from web" >"$work/noshell/www/index.html"
import_image sykli-test/web-noshell:latest "$work/noshell" \
    -c 'EXPOSE 7777/tcp' \
    -c 'CMD ["/bin/httpd", "-f", "-p", "7777", "-h", "/www"]'

# A service that exposes a port but exits with code 3 at once.
import_image sykli-test/broken-service:latest "$work/rootfs" \
    -c 'EXPOSE 7777/tcp' \
    -c 'CMD ["/bin/sh", "-c", "echo cannot start >&2; exit 3"]'

docker image ls --filter reference='sykli-test/*'
