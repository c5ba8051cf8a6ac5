#!/usr/bin/env bash
# Installs the real Remote Execution API peers sykli's interop tests run against.
# Idempotent and bounded. Usage: reapi-peers.sh [install|check]
#   install  apt-get installs bazel-bootstrap (Bazel 4.2, a REAPI client) and postgresql
#            (BuildGrid's scheduler database) if missing (needs root), then creates a Python 3.13
#            venv (from pyenv: Debian's 3.11 silently gets an ancient buildgrid) holding buildgrid
#   check    says what is missing, installs nothing (exit 1 if anything is)
#
# Where: ${SYKLI_PEERS_DIR:-/var/cache/sykli-peers}/venv (bgd: venv/bin/bgd). The Rust tests read
# the same variable (sykli/tests/common/peers.rs).
set -euo pipefail

mode="${1:-install}"
case "$mode" in
    install|check) ;;
    *) echo "reapi-peers: unknown mode '$mode' (expected install or check)" >&2; exit 2 ;;
esac

peers_dir="${SYKLI_PEERS_DIR:-/var/cache/sykli-peers}"
venv="$peers_dir/venv"
# The BuildGrid release the tests were written against (0.9.x needs Python >= 3.13).
buildgrid_version="${SYKLI_BUILDGRID_VERSION:-0.9.1}"
apt_timeout="${SYKLI_PEERS_APT_TIMEOUT:-900}"
pip_timeout="${SYKLI_PEERS_PIP_TIMEOUT:-600}"

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

missing_packages() {
    local need=()
    command -v bazel >/dev/null 2>&1 || need+=(bazel-bootstrap)
    # The server binaries, not just the client: machines may ship psql alone.
    compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || need+=(postgresql)
    echo "${need[@]}"
}

venv_ok() {
    [ -x "$venv/bin/bgd" ] && [ -x "$venv/bin/python" ] &&
        [ "$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("buildgrid"))' 2>/dev/null)" = "$buildgrid_version" ]
}

python313() {
    local candidate
    for candidate in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.13*/bin/python3.13 /usr/bin/python3.13 /usr/local/bin/python3.13; do
        if [ -x "$candidate" ]; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

if [ "$mode" = check ]; then
    need="$(missing_packages)"
    status=0
    [ -z "$need" ] || { echo "reapi-peers: missing apt packages: $need"; status=1; }
    venv_ok || { echo "reapi-peers: missing buildgrid $buildgrid_version in $venv"; status=1; }
    [ $status = 0 ] && echo "reapi-peers: all peers installed ($venv, $(command -v bazel))"
    exit $status
fi

need="$(missing_packages)"
if [ -n "$need" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "reapi-peers: installing $need needs root (apt-get)" >&2
        exit 1
    fi
    apt_log="$(mktemp /tmp/reapi-peers-apt.XXXXXX.log)"
    echo "reapi-peers: installing $need (apt-get; log: $apt_log)"
    # shellcheck disable=SC2086 # one word per package
    if ! { timeout "$apt_timeout" apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=l timeout "$apt_timeout" \
            apt-get install -y -qq --no-install-recommends $need; } >"$apt_log" 2>&1; then
        echo "reapi-peers: apt-get install $need failed (or took over ${apt_timeout}s); last log lines:" >&2
        tail -n 30 "$apt_log" >&2
        exit 1
    fi
    rm -f "$apt_log"
fi
command -v bazel >/dev/null 2>&1 || { echo "reapi-peers: bazel still missing after installing bazel-bootstrap" >&2; exit 1; }

if ! venv_ok; then
    py="$(python313)" || {
        echo "reapi-peers: no Python 3.13 found (looked in ${PYENV_ROOT:-$HOME/.pyenv}/versions/3.13*/bin, /usr/bin, /usr/local/bin);" \
            "buildgrid $buildgrid_version needs Python >= 3.13" >&2
        exit 1
    }
    echo "reapi-peers: creating $venv with $py and buildgrid $buildgrid_version"
    mkdir -p "$peers_dir"
    rm -rf "$venv"
    "$py" -m venv "$venv"
    timeout "$pip_timeout" "$venv/bin/pip" install --quiet --disable-pip-version-check \
        "buildgrid==$buildgrid_version" || {
        echo "reapi-peers: pip install buildgrid==$buildgrid_version failed" >&2
        rm -rf "$venv"
        exit 1
    }
    venv_ok || { echo "reapi-peers: $venv/bin/bgd missing after pip install" >&2; exit 1; }
fi
echo "reapi-peers: ready: bazel-bootstrap $(dpkg-query -W -f='${Version}' bazel-bootstrap 2>/dev/null || echo '(not from apt)')," \
    "buildgrid $buildgrid_version in $venv, postgres $(ls -d /usr/lib/postgresql/*/bin/postgres | head -1)"
