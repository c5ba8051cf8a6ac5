#!/usr/bin/env bash
# Prepares a Docker engine and the local test images for sykli's container tests.
# Idempotent: installs docker.io and busybox-static if missing, starts dockerd if no engine
# answers, and builds the test images from a static busybox without any registry.
#
# Images built:
#   sykli-test/busybox:latest   a busybox rootfs (sh and the common applets)
#   sykli-test/echo-server:latest  busybox plus an entrypoint serving TCP on port 7777
#                                  ("hello from service" to every connection)
set -euo pipefail

log_file="${SYKLI_DOCKERD_LOG:-/var/log/sykli-dockerd.log}"
wait_secs="${SYKLI_DOCKERD_WAIT:-60}"

need_install=()
command -v docker >/dev/null 2>&1 || need_install+=(docker.io)
[ -x /bin/busybox ] || need_install+=(busybox-static)
if [ ${#need_install[@]} -gt 0 ]; then
    echo "docker-setup: installing ${need_install[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_install[@]}"
fi

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

# sykli-test/busybox
if ! docker image inspect sykli-test/busybox:latest >/dev/null 2>&1; then
    build_rootfs "$work/busybox"
    tar -C "$work/busybox" -c . | docker import \
        -c 'ENV PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin' \
        -c 'CMD ["/bin/sh"]' - sykli-test/busybox:latest >/dev/null
    echo "docker-setup: built sykli-test/busybox:latest"
fi

# sykli-test/echo-server: answers every TCP connection on 7777.
if ! docker image inspect sykli-test/echo-server:latest >/dev/null 2>&1; then
    build_rootfs "$work/echo"
    cat >"$work/echo/bin/serve-hello" <<'SH'
#!/bin/sh
echo "hello from service"
SH
    chmod 755 "$work/echo/bin/serve-hello"
    tar -C "$work/echo" -c . | docker import \
        -c 'ENV PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin' \
        -c 'EXPOSE 7777/tcp' \
        -c 'CMD ["/bin/nc", "-ll", "-p", "7777", "-e", "/bin/serve-hello"]' \
        - sykli-test/echo-server:latest >/dev/null
    echo "docker-setup: built sykli-test/echo-server:latest"
fi

docker image ls --filter reference='sykli-test/*'
