#!/usr/bin/env bash
# Install the Debian packages nimbus's tests use, when they are missing.
#   qemu-utils: qemu-img, which the image format tests compare against.
# Runs apt-get as root, or through sudo when it is available; otherwise it
# says what to install and leaves it to the caller (the tests then skip,
# or fail under NIMBUS_REQUIRE_SERVICES=1).
set -euo pipefail

missing=()
command -v qemu-img >/dev/null 2>&1 || missing+=(qemu-utils)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
    apt_get=(apt-get)
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    apt_get=(sudo -n apt-get)
else
    echo "nimbus: please install these Debian packages: ${missing[*]}" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
"${apt_get[@]}" install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
    || { "${apt_get[@]}" update -q >/dev/null && \
         "${apt_get[@]}" install -y -q --no-install-recommends "${missing[@]}" >/dev/null; }
