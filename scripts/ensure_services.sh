#!/usr/bin/env bash
# Make sure PostgreSQL and Redis answer on 127.0.0.1 for the test suite; start them if installed and stopped.
set -u

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null || (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }
redis_up() { (exec 3<>/dev/tcp/127.0.0.1/6379 && printf 'PING\r\n' >&3 && head -c 5 <&3 | grep -q PONG) 2>/dev/null; }

wait_for() {  # wait_for NAME CHECK
  for _ in $(seq 1 30); do "$2" && return 0; sleep 1; done
  echo "ensure_services: $1 did not come up on 127.0.0.1" >&2
  return 1
}

if ! pg_up; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    echo "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || true
  else
    echo "ensure_services: PostgreSQL is not running on 127.0.0.1:5432 and is not installed here." >&2
    echo "Install it (apt-get install postgresql) or set TEST_DATABASE_URL to a reachable server." >&2
    exit 1
  fi
  wait_for PostgreSQL pg_up || exit 1
fi

if ! redis_up; then
  if command -v redis-server >/dev/null 2>&1; then
    echo "starting Redis"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  else
    echo "ensure_services: Redis is not running on 127.0.0.1:6379 and is not installed here." >&2
    echo "Install it (apt-get install redis-server) or set TEST_REDIS_URL to a reachable server." >&2
    exit 1
  fi
  wait_for Redis redis_up || exit 1
fi
echo "PostgreSQL and Redis are up"
