#!/bin/sh
# Installs the Debian packages mod_hello needs to build, run and test.
# Idempotent: does nothing when every package is already installed.
# Usage: scripts/install-deps.sh [build|run|test|bench|package|docs|all]   (default: test)
set -eu

what=${1:-test}

build="apache2 apache2-dev libaprutil1-dbd-mysql libjansson-dev pkg-config make gcc"
run="$build mariadb-server mariadb-client"
test="$run memcached libcmocka-dev python3-pytest python3-requests python3-jsonschema python3-yaml
      cppcheck clang clang-tidy clang-format libclang-rt-14-dev valgrind wrk curl
      galera-4 rsync libaprutil1-dbd-sqlite3"
bench="$run wrk libapache2-mod-php php-mysql curl valgrind"
docs="graphviz"
package="$build build-essential debhelper dpkg-dev libaprutil1-dbd-sqlite3 sqlite3 curl"

case "$what" in
  build) pkgs=$build ;;
  run)   pkgs=$run ;;
  test)  pkgs=$test ;;
  bench) pkgs=$bench ;;
  package) pkgs=$package ;;
  docs)  pkgs=$docs ;;
  all)   pkgs="$test $bench $package" ;;
  *) echo "usage: $0 [build|run|test|bench|package|docs|all]" >&2; exit 2 ;;
esac

missing=""
for p in $pkgs; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed'; then
    missing="$missing $p"
  fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing Debian packages:$missing" >&2
  echo "install-deps: run as root (or: sudo apt-get install$missing)" >&2
  exit 1
fi

echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# --no-install-recommends keeps the machine lean; policy-rc.d stops Debian from
# starting the system apache2/mariadb services that the project does not use.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get install -y -q --no-install-recommends $missing
