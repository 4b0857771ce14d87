#!/usr/bin/env bash
# Installs what `make run` and `make test` need when it is missing, and nothing else:
#   uv           from PyPI into .akros/tools/uv-venv (unless uv is already on PATH)
#   redis-server from Debian's packages (apt-get)
#   kubectl 1.20 from Debian's kubernetes-client package, unpacked into .akros/tools/kubectl
#                (never whichever kubectl a machine happens to have)
#   nginx        from Debian's nginx package, unpacked into .akros/tools/nginx: the end-to-end
#                test of environments' URLs runs it as ingress-nginx configures auth-url
#                (Debian builds in the auth_request module)
#   chromium     from Debian's packages (apt-get), only with AKROS_WITH_BROWSER=1 (`make test`
#                sets it): the dashboard's browser test drives it through Playwright
# Safe to run any number of times. Writes the tool paths to .akros/tools/paths.
set -euo pipefail
cd "$(dirname "$0")/.."
tools=.akros/tools
mkdir -p "$tools"

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=0
apt_update_once() {
    if [ "$apt_updated" -eq 0 ]; then
        as_root apt-get update -qq
        apt_updated=1
    fi
}

# --- uv ---------------------------------------------------------------------
if command -v uv >/dev/null 2>&1; then
    uv_bin=$(command -v uv)
elif [ -x "$tools/uv-venv/bin/uv" ]; then
    uv_bin=$tools/uv-venv/bin/uv
else
    echo "ensure-tools: installing uv from PyPI into $tools/uv-venv" >&2
    python3 -m venv "$tools/uv-venv"
    "$tools/uv-venv/bin/pip" install --quiet "uv>=0.8,<0.14"
    uv_bin=$tools/uv-venv/bin/uv
fi

# --- redis-server -----------------------------------------------------------
if ! command -v redis-server >/dev/null 2>&1; then
    echo "ensure-tools: installing redis-server with apt-get" >&2
    apt_update_once
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi
redis_bin=$(command -v redis-server)

# --- kubectl from Debian's kubernetes-client --------------------------------
kubectl_bin=$tools/kubectl/usr/bin/kubectl
if [ ! -x "$kubectl_bin" ]; then
    echo "ensure-tools: unpacking Debian's kubernetes-client into $tools/kubectl" >&2
    download=$(mktemp -d)
    if ! (cd "$download" && apt-get download -qq kubernetes-client >/dev/null 2>&1); then
        apt_update_once
        (cd "$download" && apt-get download -qq kubernetes-client >/dev/null)
    fi
    rm -rf "$tools/kubectl"
    dpkg-deb -x "$download"/kubernetes-client_*.deb "$tools/kubectl"
    rm -rf "$download"
fi

# --- nginx from Debian's nginx package -----------------------------------------
# Unpacked, not installed: no service starts, and a machine's own nginx is never used.
nginx_bin=$tools/nginx/usr/sbin/nginx
if [ ! -x "$nginx_bin" ]; then
    echo "ensure-tools: unpacking Debian's nginx into $tools/nginx" >&2
    download=$(mktemp -d)
    if ! (cd "$download" && apt-get download -qq nginx >/dev/null 2>&1); then
        apt_update_once
        (cd "$download" && apt-get download -qq nginx >/dev/null)
    fi
    rm -rf "$tools/nginx"
    dpkg-deb -x "$download"/nginx_*.deb "$tools/nginx"
    rm -rf "$download"
fi

# --- chromium (for the dashboard's browser test) -----------------------------
chromium_bin=/usr/bin/chromium
if [ "${AKROS_WITH_BROWSER:-0}" = 1 ] && [ ! -x "$chromium_bin" ]; then
    echo "ensure-tools: installing chromium with apt-get" >&2
    apt_update_once
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

root=$(pwd)
abs() { case "$1" in /*) echo "$1" ;; *) echo "$root/$1" ;; esac; }
cat > "$tools/paths" <<PATHS
UV=$(abs "$uv_bin")
REDIS_SERVER=$(abs "$redis_bin")
KUBECTL=$(abs "$kubectl_bin")
NGINX=$(abs "$nginx_bin")
CHROMIUM=$chromium_bin
PATHS
