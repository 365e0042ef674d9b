#!/usr/bin/env bash
# A private PostgreSQL server (Debian's `postgresql`) for a test run, on a loopback port:
#   postgres.sh start DIR PORT [durable|tls]
#                                initdb into DIR (trust, user `wakehub`), start, wait
#                                (fsync off for tests; `durable` keeps it on, for benches;
#                                `tls`: TCP clients must use TLS, the server's certificate
#                                issued for 127.0.0.1 by a CA of its own, DIR/ca.pem)
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
    if [ "${4:-}" = tls ]; then
      openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=test-ca \
        -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
      openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
        -keyout "$dir/data/server.key" -out "$dir/server.csr" 2>/dev/null
      printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' > "$dir/ext"
      openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial -days 2 \
        -extfile "$dir/ext" -out "$dir/data/server.crt" 2>/dev/null
      chmod 600 "$dir/data/server.key"
      [ "$(id -u)" = 0 ] && chown postgres "$dir/data/server.key" "$dir/data/server.crt"
      echo "ssl = on" >> "$dir/data/postgresql.conf"
      # Plain TCP is refused; the Unix socket stays open to the harness.
      { echo "hostnossl all all 0.0.0.0/0 reject"; cat "$dir/data/pg_hba.conf"; } > "$dir/hba" && cat "$dir/hba" > "$dir/data/pg_hba.conf"
    fi
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
