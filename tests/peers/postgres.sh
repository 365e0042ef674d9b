#!/usr/bin/env bash
# A private PostgreSQL server (Debian's `postgresql`) for a test run, on a loopback port:
#   postgres.sh start DIR PORT [durable]
#                                initdb into DIR (trust, user `wakehub`), start, wait
#                                (fsync off for tests; `durable` keeps it on, for benches)
#   postgres.sh restart DIR      stop it outright (as a crash would) and start it again
#   postgres.sh stop DIR         stop it (immediately) and remove DIR
# It refuses to run as root: as root, it runs as the `postgres` user.
set -euo pipefail
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -n "$bin" ] || { echo "PostgreSQL is missing: apt-get install -y postgresql" >&2; exit 1; }
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
case "${1:-}" in
  start)
    dir=$2 port=$3 fsync=off
    [ "${4:-}" = durable ] && fsync=on
    rm -rf "$dir" && mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    (cd "$dir" && as_owner "$bin/initdb" -D "$dir/data" -A trust -U wakehub --no-sync -E UTF8 --locale=C >/dev/null)
    (cd "$dir" && as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
      -o "-k $dir -p $port -c listen_addresses=127.0.0.1 -c fsync=$fsync -c max_connections=200" start >/dev/null)
    ;;
  restart)
    dir=$2
    (cd "$dir" && as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -m immediate -w restart >/dev/null)
    ;;
  stop)
    dir=$2
    [ -d "$dir/data" ] && (cd "$dir" && as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true)
    rm -rf "$dir"
    ;;
  *) echo "usage: $0 start DIR PORT | restart DIR | stop DIR" >&2; exit 2 ;;
esac
