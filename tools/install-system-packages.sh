#!/usr/bin/env bash
# Install the Debian packages nimbus's tests use, when they are missing.
#   qemu-utils: qemu-img, which the image format tests compare against
#     and the libvirt compute driver makes its disk overlays with.
#   libvirt-dev, pkg-config: to build libvirt-python (the tox test envs
#     install the nimbus-cloud[libvirt] extra).
#
# With --services (or NIMBUS_INSTALL_SERVICES=1; `make test` passes it under
# CI=true), also the servers the integration tests talk to, set up the way
# the tests expect them (nimbus/testing/services.py):
#   MariaDB     127.0.0.1:3306  user root without a password, a database "test"
#   PostgreSQL  127.0.0.1:5432  user postgres trusted from 127.0.0.1, a database "test"
#   RabbitMQ    127.0.0.1:5672  user guest, password guest
# A server that already answers on its port is not installed or started
# again; one that is installed but stopped is started (with systemctl where
# systemd runs, directly otherwise).  The user, trust rule and database are
# created only when missing.  Nothing is ever removed or restarted.
#
# With --virt (or NIMBUS_INSTALL_VIRT=1; `make test` passes it under
# CI=true), also what real guests need (reference/virt-lab.md): libvirtd,
# QEMU with software emulation, and busybox-static for the tests' tiny
# guest.  Where libvirtd does not answer on qemu:///system and systemd does
# not run, virtlogd and libvirtd are started as daemons (`-d`).
#
# Runs apt-get and the servers' tools as root, or through sudo when it is
# available; otherwise it says what to do and leaves it to the caller (the
# tests then skip, or fail under NIMBUS_REQUIRE_SERVICES=1).
set -euo pipefail

usage() {
    echo "usage: $0 [--services] [--virt]" >&2
    echo "  --services  also install, start and set up MariaDB, PostgreSQL and RabbitMQ" >&2
    echo "  --virt      also install and start libvirtd and QEMU for real guests" >&2
}

services=0
case "${NIMBUS_INSTALL_SERVICES:-}" in
    "" | 0 | false | no) ;;
    *) services=1 ;;
esac
virt=0
case "${NIMBUS_INSTALL_VIRT:-}" in
    "" | 0 | false | no) ;;
    *) virt=1 ;;
esac
for arg in "$@"; do
    case "$arg" in
        --services) services=1 ;;
        --virt) virt=1 ;;
        -h | --help) usage; exit 0 ;;
        *) usage; exit 2 ;;
    esac
done

say() { echo "nimbus: $*" >&2; }

if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    as_root=(false)  # no way to become root: every step that needs it is reported instead
fi
can_be_root() { [ "${as_root[0]:-}" != false ]; }

# Whether something accepts TCP connections on 127.0.0.1:$1.
answers() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

wait_for() {  # name port
    local tries
    for ((tries = 0; tries < 90; tries++)); do
        answers "$2" && return 0
        sleep 1
    done
    say "$1 was started but does not answer on 127.0.0.1:$2"
    return 1
}

# -- packages ------------------------------------------------------------------

newest_postgresql() { ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1; }

missing=()
command -v qemu-img >/dev/null 2>&1 || missing+=(qemu-utils)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
pkg-config --exists libvirt 2>/dev/null || missing+=(libvirt-dev)
if [ "$virt" -eq 1 ]; then
    [ -x /usr/sbin/libvirtd ] || missing+=(libvirt-daemon-system)
    command -v qemu-system-x86_64 >/dev/null 2>&1 || missing+=(qemu-system-x86)
    [ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -qx cpio || missing+=(busybox-static)
fi
if [ "$services" -eq 1 ]; then
    answers 3306 || [ -x /usr/sbin/mariadbd ] || missing+=(mariadb-server)
    answers 5432 || [ -n "$(newest_postgresql)" ] || missing+=(postgresql)
    answers 5672 || [ -x /usr/sbin/rabbitmq-server ] || missing+=(rabbitmq-server)
fi

if [ ${#missing[@]} -gt 0 ]; then
    if ! can_be_root; then
        say "please install these Debian packages: ${missing[*]}"
        [ "$services" -eq 1 ] || [ "$virt" -eq 1 ] || exit 0
    else
        export DEBIAN_FRONTEND=noninteractive
        "${as_root[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
            || { "${as_root[@]}" apt-get update -q >/dev/null && \
                 "${as_root[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; }
    fi
fi
# -- libvirtd ------------------------------------------------------------------

virt_failed=0
# Without udev, /dev/kvm stays root's only: libvirt then finds the KVM it
# probed unavailable at each call and probes QEMU again (about a minute per
# domain definition).  Debian's udev rules give it to the group kvm.
if [ "$virt" -eq 1 ] && can_be_root && [ -c /dev/kvm ] && getent group kvm >/dev/null \
    && [ "$(stat -c %G /dev/kvm)" != kvm ]; then
    say "giving /dev/kvm to the group kvm, as udev would"
    "${as_root[@]}" chgrp kvm /dev/kvm
    "${as_root[@]}" chmod 0660 /dev/kvm
fi
libvirt_answers() { timeout 10 virsh -q -c qemu:///system version >/dev/null 2>&1; }
if [ "$virt" -eq 1 ] && ! libvirt_answers; then
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
        "${as_root[@]}" systemctl start virtlogd libvirtd || true
    elif can_be_root && [ -x /usr/sbin/libvirtd ]; then
        say "starting virtlogd and libvirtd"
        [ -e /run/virtlogd.pid ] && kill -0 "$(cat /run/virtlogd.pid)" 2>/dev/null \
            || "${as_root[@]}" /usr/sbin/virtlogd -d
        "${as_root[@]}" /usr/sbin/libvirtd -d
    fi
    for ((tries = 0; tries < 30; tries++)); do
        libvirt_answers && break
        sleep 1
    done
    libvirt_answers || { say "libvirtd does not answer on qemu:///system"; virt_failed=1; }
fi

[ "$services" -eq 1 ] || exit "$virt_failed"

# -- servers -------------------------------------------------------------------

with_systemd() { [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; }

start_mariadb() {
    if with_systemd; then
        "${as_root[@]}" systemctl start mariadb
    else
        # mariadbd makes its socket there, and nothing else may have made it.
        "${as_root[@]}" install -d -o mysql -g mysql -m 0755 /run/mysqld
        "${as_root[@]}" start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
    fi
}

start_postgresql() {
    if with_systemd; then
        "${as_root[@]}" systemctl start postgresql
    else
        "${as_root[@]}" pg_ctlcluster --skip-systemctl-redirect "$(newest_postgresql)" main start
    fi
}

start_rabbitmq() {
    if with_systemd; then
        "${as_root[@]}" systemctl start rabbitmq-server
    else
        "${as_root[@]}" rabbitmq-server -detached
    fi
}

failed=0
ensure_running() {  # name port start-function installed-test...
    local name=$1 port=$2 start=$3
    shift 3
    answers "$port" && return 0
    if ! "$@"; then
        say "$name is not installed and does not answer on 127.0.0.1:$port"
        failed=1
        return 1
    fi
    if ! can_be_root; then
        say "$name is stopped; please start it (as root)"
        failed=1
        return 1
    fi
    say "starting $name"
    "$start" && wait_for "$name" "$port" || { failed=1; return 1; }
}

# -- what the tests expect of each --------------------------------------------

mariadb_client() {
    command -v mariadb 2>/dev/null || command -v mysql 2>/dev/null || return 1
}

setup_mariadb() {
    local client
    client=$(mariadb_client) || { say "no mariadb client: cannot check MariaDB's root and test database"; return 0; }
    local tcp=("$client" --protocol=tcp -h 127.0.0.1 -P 3306 -u root --skip-password -N -B)
    if ! "${tcp[@]}" -e 'SELECT 1' >/dev/null 2>&1; then
        if ! can_be_root; then
            say "MariaDB's root needs a password over TCP; the tests log in without one"
            failed=1
            return 0
        fi
        # Debian's root logs in through the unix socket only; keep that and
        # allow an empty password too, as the tests log in.
        say "letting MariaDB's root log in without a password from 127.0.0.1"
        "${as_root[@]}" "$client" -u root -e "ALTER USER 'root'@'localhost'
            IDENTIFIED VIA mysql_native_password USING PASSWORD('') OR unix_socket"
    fi
    if [ -z "$("${tcp[@]}" -e "SHOW DATABASES LIKE 'test'")" ]; then
        say "creating the MariaDB database test"
        "${tcp[@]}" -e 'CREATE DATABASE test'
    fi
}

setup_postgresql() {
    command -v psql >/dev/null 2>&1 \
        || { say "no psql: cannot check PostgreSQL's trust rule and test database"; return 0; }
    local psql=(psql -h 127.0.0.1 -p 5432 -U postgres -w -X -q -t -A)
    if ! "${psql[@]}" -d postgres -c 'SELECT 1' >/dev/null 2>&1; then
        local version hba
        version=$(newest_postgresql)
        hba=/etc/postgresql/$version/main/pg_hba.conf
        if ! can_be_root || [ -z "$version" ] || [ ! -f "$hba" ]; then
            say "PostgreSQL does not trust user postgres from 127.0.0.1; the tests log in without a password"
            failed=1
            return 0
        fi
        # The first matching rule wins: put the test rule before the others.
        say "trusting PostgreSQL's user postgres from 127.0.0.1 (in $hba)"
        "${as_root[@]}" sed -i '1i host all postgres 127.0.0.1/32 trust  # added by nimbus tools/install-system-packages.sh' "$hba"
        "${as_root[@]}" pg_ctlcluster --skip-systemctl-redirect "$version" main reload
        sleep 1
    fi
    if [ -z "$("${psql[@]}" -d postgres -c "SELECT 1 FROM pg_database WHERE datname = 'test'")" ]; then
        say "creating the PostgreSQL database test"
        "${psql[@]}" -d postgres -c 'CREATE DATABASE test'
    fi
}

setup_rabbitmq() {
    if ! can_be_root || ! command -v rabbitmqctl >/dev/null 2>&1; then
        return 0  # rabbitmqctl needs root's Erlang cookie; guest/guest is RabbitMQ's default
    fi
    "${as_root[@]}" rabbitmqctl -q authenticate_user guest guest >/dev/null 2>&1 && return 0
    say "setting up RabbitMQ's user guest with password guest"
    if "${as_root[@]}" rabbitmqctl -q list_users 2>/dev/null | awk '{print $1}' | grep -qx guest; then
        "${as_root[@]}" rabbitmqctl -q change_password guest guest
    else
        "${as_root[@]}" rabbitmqctl -q add_user guest guest
    fi
    "${as_root[@]}" rabbitmqctl -q set_permissions -p / guest '.*' '.*' '.*'
}

# In an "if" condition errors do not stop the script, so the set-up steps,
# which must stop it when they fail, run in the branch.
if ensure_running MariaDB 3306 start_mariadb test -x /usr/sbin/mariadbd; then
    setup_mariadb
fi
if ensure_running PostgreSQL 5432 start_postgresql test -n "$(newest_postgresql)"; then
    setup_postgresql
fi
if ensure_running RabbitMQ 5672 start_rabbitmq test -x /usr/sbin/rabbitmq-server; then
    setup_rabbitmq
fi
[ "$virt_failed" -eq 0 ] || failed=1
exit "$failed"
