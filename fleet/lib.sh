# shellcheck shell=bash
# Shared by the fleet/ scripts (sourced, not run). A fleet is a 3-node
# MariaDB Galera cluster, Apache nodes with mod_hello sharing one memcached
# as their read cache (HelloCache memcache:), and an Apache front balancer, all on loopback addresses, with its state under
# build/fleet/<name>/ in the checkout. See docs/architecture.md.
#
# As root the Galera nodes run as the mysql user, which may not be able to
# enter the checkout (a clone in /root or in a 0700 mktemp -d): their
# directories then go to a directory of the fleet's own under /var/tmp
# (FLEET_DB_ROOT, recorded in fleet.env), which fleet-down removes after
# copying the nodes' logs back to build/fleet/<name>/galeraN/.
#
# Settings (environment; fleet-up records them in build/fleet/<name>/fleet.env,
# which every later command reads back, so only FLEET_NAME matters then):
#   FLEET_NAME        main          the fleet's directory build/fleet/<name>
#   FLEET_DB_NET      127.0.10      Galera node N listens on FLEET_DB_NET.N
#   FLEET_WEB_NET     127.0.20      Apache node N listens on FLEET_WEB_NET.N
#   FLEET_WEB_NODES   2             how many Apache nodes (2 to 9)
#   FLEET_FRONT_ADDR  127.0.0.1     the front balancer's address
#   FLEET_PORT        8090          the front balancer's port
#   FLEET_WEB_PORT    8080          the Apache nodes' API port (wsrep_sync_wait=1)
#   FLEET_NOSYNC_PORT 8081          a second, measurement-only listener of each
#                                   Apache node whose pool does not set
#                                   wsrep_sync_wait (not in the balancer)
#   FLEET_DB_PORT     3306          SQL port of every Galera node (own address)
#   FLEET_GCOMM_PORT  4567          group communication
#   FLEET_IST_PORT    4568          incremental state transfer
#   FLEET_SST_PORT    4444          full state transfer (rsync)
#   FLEET_CACHE_ADDR  127.0.30.1    the memcached all Apache nodes share
#   FLEET_CACHE_PORT  11211
#   FLEET_CACHE_MB    64            its memory (memcached -m)
#   FLEET_RETRY_AUTOCOMMIT 0        wsrep_retry_autocommit (0: a certification
#                                   conflict reaches mod_hello, which retries)
#   FLEET_TIMEOUT     240           seconds any single wait may take
#   FLEET_MODULE      build/mod_hello.so
#   FLEET_SKIP_BUILD  0             1: fleet-up does not run `make module` first

FLEET_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FLEET_TOP="$FLEET_SRC/build/fleet"
# shellcheck disable=SC2034 # used by the scripts that source this file
FLEET_TEMPLATES="$FLEET_SRC/fleet/templates"
export PATH="/usr/sbin:/usr/bin:/sbin:/bin:$PATH"

fleet_log() { printf '%s: %s\n' "${FLEET_PROG:-fleet}" "$*" >&2; }
fleet_die() { fleet_log "$*"; exit 1; }

# Loads the settings: the recorded ones of an existing fleet, else the
# environment's, else the defaults.
fleet_settings() {
    FLEET_NAME=${FLEET_NAME:-main}
    case "$FLEET_NAME" in
    *[!A-Za-z0-9_-]*|"") fleet_die "FLEET_NAME must be letters, digits, - or _" ;;
    esac
    # Exported: fleet/fleetctl, run by the other scripts, must act on this fleet.
    export FLEET_NAME
    FLEET_DIR="$FLEET_TOP/$FLEET_NAME"
    if [ -f "$FLEET_DIR/fleet.env" ]; then
        # shellcheck disable=SC1091
        . "$FLEET_DIR/fleet.env"
    fi
    FLEET_DB_NET=${FLEET_DB_NET:-127.0.10}
    FLEET_WEB_NET=${FLEET_WEB_NET:-127.0.20}
    FLEET_WEB_NODES=${FLEET_WEB_NODES:-2}
    FLEET_DB_NODES=3
    FLEET_FRONT_ADDR=${FLEET_FRONT_ADDR:-127.0.0.1}
    FLEET_PORT=${FLEET_PORT:-8090}
    FLEET_WEB_PORT=${FLEET_WEB_PORT:-8080}
    FLEET_NOSYNC_PORT=${FLEET_NOSYNC_PORT:-8081}
    FLEET_DB_PORT=${FLEET_DB_PORT:-3306}
    FLEET_GCOMM_PORT=${FLEET_GCOMM_PORT:-4567}
    FLEET_IST_PORT=${FLEET_IST_PORT:-4568}
    FLEET_SST_PORT=${FLEET_SST_PORT:-4444}
    FLEET_CACHE_ADDR=${FLEET_CACHE_ADDR:-127.0.30.1}
    FLEET_CACHE_PORT=${FLEET_CACHE_PORT:-11211}
    FLEET_CACHE_MB=${FLEET_CACHE_MB:-64}
    FLEET_RETRY_AUTOCOMMIT=${FLEET_RETRY_AUTOCOMMIT:-0}
    FLEET_TIMEOUT=${FLEET_TIMEOUT:-240}
    FLEET_MODULE=${FLEET_MODULE:-$FLEET_SRC/build/mod_hello.so}
    FLEET_DBPASS=${FLEET_DBPASS:-}
    FLEET_DB_ROOT=${FLEET_DB_ROOT:-$FLEET_DIR}
    case "$FLEET_WEB_NODES" in [2-9]) ;; *) fleet_die "FLEET_WEB_NODES must be 2 to 9" ;; esac
    for net in "$FLEET_DB_NET" "$FLEET_WEB_NET"; do
        case "$net" in
        127.[0-9]*.[0-9]*) ;;
        *) fleet_die "addresses must stay on 127.0.0.0/8 (got $net)" ;;
        esac
    done
    case "$FLEET_FRONT_ADDR" in 127.*) ;; *) fleet_die "FLEET_FRONT_ADDR must be on 127.0.0.0/8" ;; esac
    case "$FLEET_CACHE_ADDR" in 127.*) ;; *) fleet_die "FLEET_CACHE_ADDR must be on 127.0.0.0/8" ;; esac
}

fleet_write_env() {
    umask 077
    cat >"$FLEET_DIR/fleet.env" <<ENV
# Written by fleet/fleet-up; read by the other fleet/ scripts and tests/fleet.
FLEET_NAME=$FLEET_NAME
FLEET_DIR=$FLEET_DIR
FLEET_SRC=$FLEET_SRC
FLEET_DB_NET=$FLEET_DB_NET
FLEET_WEB_NET=$FLEET_WEB_NET
FLEET_WEB_NODES=$FLEET_WEB_NODES
FLEET_DB_NODES=$FLEET_DB_NODES
FLEET_FRONT_ADDR=$FLEET_FRONT_ADDR
FLEET_PORT=$FLEET_PORT
FLEET_WEB_PORT=$FLEET_WEB_PORT
FLEET_NOSYNC_PORT=$FLEET_NOSYNC_PORT
FLEET_DB_PORT=$FLEET_DB_PORT
FLEET_GCOMM_PORT=$FLEET_GCOMM_PORT
FLEET_IST_PORT=$FLEET_IST_PORT
FLEET_SST_PORT=$FLEET_SST_PORT
FLEET_CACHE_ADDR=$FLEET_CACHE_ADDR
FLEET_CACHE_PORT=$FLEET_CACHE_PORT
FLEET_CACHE_MB=$FLEET_CACHE_MB
FLEET_RETRY_AUTOCOMMIT=$FLEET_RETRY_AUTOCOMMIT
FLEET_TIMEOUT=$FLEET_TIMEOUT
FLEET_MODULE=$FLEET_MODULE
FLEET_DBPASS=$FLEET_DBPASS
FLEET_DB_ROOT=$FLEET_DB_ROOT
ENV
    umask 022
}

# ---- names and places -------------------------------------------------------

db_addr() { echo "$FLEET_DB_NET.$1"; }
db_dir() { echo "$FLEET_DB_ROOT/galera$1"; }
web_addr() { echo "$FLEET_WEB_NET.$1"; }
web_dir() { echo "$FLEET_DIR/web$1"; }
front_dir() { echo "$FLEET_DIR/front"; }
cache_dir() { echo "$FLEET_DIR/cache"; }
# Apache node N uses Galera node ((N-1) mod 3) + 1: each its own.
web_db() { echo $(( ($1 - 1) % FLEET_DB_NODES + 1 )); }
front_url() { echo "http://$FLEET_FRONT_ADDR:$FLEET_PORT"; }
web_url() { echo "http://$(web_addr "$1"):$FLEET_WEB_PORT"; }

gcomm_list() {
    local i list=""
    for i in $(seq 1 "$FLEET_DB_NODES"); do
        list="$list${list:+,}$(db_addr "$i"):$FLEET_GCOMM_PORT"
    done
    echo "$list"
}

# ---- processes --------------------------------------------------------------

pid_of() {  # pid_of PIDFILE -> the pid if that process is alive (not a zombie)
    local pid
    [ -f "$1" ] || return 1
    pid=$(cat "$1" 2>/dev/null) || return 1
    case "$pid" in ''|*[!0-9]*) return 1 ;; esac
    [ -r "/proc/$pid/stat" ] || return 1
    [ "$(sed 's/.*) //' "/proc/$pid/stat" | cut -d' ' -f1)" != Z ] || return 1
    echo "$pid"
}

wait_gone() {  # wait_gone PID SECONDS
    local i=0 n=$(( $2 * 10 ))
    while [ -r "/proc/$1/stat" ] && [ "$(sed 's/.*) //' "/proc/$1/stat" | cut -d' ' -f1)" != Z ]; do
        i=$((i + 1))
        [ $i -le $n ] || return 1
        sleep 0.1
    done
}

# Processes whose command line names this fleet's directory and that are not
# this script or its callers: leftovers of killed nodes (an SST's rsync, an
# orphaned httpd child). Prints their pids.
fleet_leftovers() {
    local dir=${1:-$FLEET_DIR} dbdir=${2:-$FLEET_DB_ROOT} p cmd self=$$
    for p in /proc/[0-9]*; do
        p=${p#/proc/}
        [ "$p" != "$self" ] || continue
        cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline") || continue
        case "$cmd" in
        *"$dir/"* | *"$dbdir/"*) ;;
        *) continue ;;
        esac
        case "$cmd" in
        *fleet-down*|*fleet-up*|*fleetctl*|*pytest*|*fleet-deploy*) continue ;;
        esac
        echo "$p"
    done
}

# ---- SQL on a Galera node (root, over its socket) ------------------------------

db_sql() {  # db_sql N [mariadb args...]
    local n=$1
    shift
    mariadb --no-defaults --protocol=socket --socket="$(db_dir "$n")/mysqld.sock" -uroot \
        --connect-timeout=3 "$@"
}

db_status() {  # db_status N VARIABLE -> its value, or nothing
    db_sql "$1" -N -B -e "SHOW GLOBAL STATUS LIKE '$2'" 2>/dev/null | cut -f2
}

db_synced() {  # Synced, ready, and a member of a primary component
    [ "$(db_status "$1" wsrep_local_state_comment)" = Synced ] &&
        [ "$(db_status "$1" wsrep_ready)" = ON ] &&
        [ "$(db_status "$1" wsrep_cluster_status)" = Primary ]
}

# ---- templates ----------------------------------------------------------------

render() {  # render TEMPLATE OUT KEY=VALUE...: replaces @KEY@ markers
    local tmpl=$1 out=$2 kv key val text
    shift 2
    text=$(cat "$tmpl")
    for kv in "$@"; do
        key=${kv%%=*}
        val=${kv#*=}
        text=${text//"@$key@"/"$val"}
    done
    if printf '%s\n' "$text" | grep -v '^[[:space:]]*#' | grep -q '@[A-Z_]*@'; then
        fleet_die "unfilled markers in $tmpl: $(printf '%s\n' "$text" | grep -v '^[[:space:]]*#' |
            grep -o '@[A-Z_]*@' | sort -u | tr '\n' ' ')"
    fi
    printf '%s\n' "$text" >"$out"
}

# Who mariadbd runs as. Not root even when we are: as root, the rsync daemon
# that receives an SST (wsrep_sst_rsync) drops to the user "nobody" and
# cannot write into the joiner's datadir. As the mysql user it stays that
# user, as in a packaged install. Prints the option (nothing if not root).
db_user() { [ "$(id -u)" -ne 0 ] || echo "mysql"; }
# shellcheck disable=SC2034 # used by the scripts that source this file
if [ "$(id -u)" -eq 0 ]; then DB_USER_OPT=(--user=mysql); else DB_USER_OPT=(); fi
db_own() {  # db_own DIR: gives the node's directory to that user
    [ -z "$(db_user)" ] || chown -R "$(db_user):" "$1"
}

# memcached will not run as root: as root it drops to its package's user.
cache_user_opt() { [ "$(id -u)" -ne 0 ] || echo "-u memcache"; }

# cache_cmd COMMAND: one memcached text-protocol command, its answer printed
# up to END (or the one line other commands answer); fails when nothing answers.
cache_cmd() {
    (
        exec 3<>"/dev/tcp/$FLEET_CACHE_ADDR/$FLEET_CACHE_PORT" || exit 1
        printf '%s\r\n' "$1" >&3
        while IFS= read -r -t 2 line <&3; do
            line=${line%$'\r'}
            printf '%s\n' "$line"
            case "$line" in END | VERSION* | OK | ERROR* | CLIENT_ERROR* | SERVER_ERROR*) exit 0 ;; esac
        done
        exit 1
    ) 2>/dev/null
}

apache_user() {
    if [ "$(id -u)" -eq 0 ]; then printf 'User www-data\nGroup www-data'; fi
}
