#!/usr/bin/env bash
# Installs what the plugin tests need to build their C guests (examples/plugins/) into
# WebAssembly components: clang with its wasm32 builtins, the wasm-ld linker and Debian's
# wasi-libc. The WIT bindings and the component step are Rust libraries the tests link
# (sykli/tests/common/plugins.rs), so nothing else is needed.
# Idempotent. Usage: plugin-toolchain.sh [install|check]
#   install  apt-get installs whatever is missing (needs root)
#   check    says what is missing, installs nothing (exit 1 if anything is)
set -euo pipefail

mode="${1:-install}"
case "$mode" in
    install|check) ;;
    *) echo "plugin-toolchain: unknown mode '$mode' (expected install or check)" >&2; exit 2 ;;
esac

apt_timeout="${SYKLI_PLUGIN_APT_TIMEOUT:-900}"

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

# The compiler-rt wasm32 builtins must match clang's major version (Debian names the package
# after it), so ask the clang that is installed, or Debian's default clang once it is.
clang_major() {
    clang --version 2>/dev/null | sed -n 's/.*clang version \([0-9][0-9]*\)\..*/\1/p' | head -n 1
}

missing_packages() {
    local need=()
    command -v clang >/dev/null 2>&1 || need+=(clang)
    command -v wasm-ld >/dev/null 2>&1 || need+=(lld)
    installed wasi-libc || need+=(wasi-libc)
    local major
    major="$(clang_major)"
    if [ -n "$major" ]; then
        installed "libclang-rt-$major-dev-wasm32" || need+=("libclang-rt-$major-dev-wasm32")
    else
        # Debian's default clang pulls the builtins of its own version through this package.
        need+=(libclang-rt-dev-wasm32)
    fi
    echo "${need[@]}"
}

need="$(missing_packages)"
if [ -z "$need" ]; then
    echo "plugin-toolchain: clang $(clang_major), wasm-ld, wasi-libc and the wasm32 builtins are installed"
    exit 0
fi
if [ "$mode" = check ]; then
    echo "plugin-toolchain: missing Debian packages: $need (run .ci/plugin-toolchain.sh install)" >&2
    exit 1
fi

echo "plugin-toolchain: installing $need"
timeout "$apt_timeout" apt-get update -qq
# shellcheck disable=SC2086 # one word per package
DEBIAN_FRONTEND=noninteractive timeout "$apt_timeout" apt-get install -y -qq --no-install-recommends $need
# A default clang installed just now may have a version whose builtins are not in yet.
need="$(missing_packages)"
if [ -n "$need" ]; then
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive timeout "$apt_timeout" apt-get install -y -qq --no-install-recommends $need
fi
need="$(missing_packages)"
if [ -n "$need" ]; then
    echo "plugin-toolchain: still missing after apt-get: $need" >&2
    exit 1
fi
echo "plugin-toolchain: clang $(clang_major), wasm-ld, wasi-libc and the wasm32 builtins are installed"
