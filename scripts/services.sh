#!/usr/bin/env bash
# Makes sure PostgreSQL, Redis and RabbitMQ answer on 127.0.0.1 (starting any that is installed
# but stopped), and creates what the test suite needs in them: its own database and vhost, so a
# test run never touches other data. Also installs what the browser and compose tests need.
set -euo pipefail

DB=${HOPPER_TEST_DATABASE:-hopper_test}
VHOST=${HOPPER_TEST_VHOST:-hopper_test}
PGHOST=127.0.0.1
log() { printf 'services: %s\n' "$*" >&2; }

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local seconds=$1 what=$2; shift 2
  for _ in $(seq "$((seconds * 2))"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  log "$what did not come up within ${seconds}s"; return 1
}

postgres() {
  if ! pg_isready -h $PGHOST -q 2>/dev/null; then
    command -v pg_ctlcluster >/dev/null || { log "PostgreSQL is not installed"; exit 1; }
    log "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
    wait_for 60 PostgreSQL pg_isready -h $PGHOST -q
  fi
  if ! psql -h $PGHOST -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1; then
    log "creating database $DB"
    createdb -h $PGHOST -U postgres "$DB"
  fi
}

redis() {
  if ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
    command -v redis-server >/dev/null || { log "Redis is not installed"; exit 1; }
    log "starting Redis"
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log
    wait_for 30 Redis redis-cli -h 127.0.0.1 ping
  fi
}

rabbitmq() {
  if ! rabbitmqctl -q status >/dev/null 2>&1; then
    command -v rabbitmq-server >/dev/null || { log "RabbitMQ is not installed"; exit 1; }
    log "starting RabbitMQ"
    rabbitmq-server -detached
    wait_for 120 RabbitMQ rabbitmqctl -q await_startup
  fi
  # A fresh vhost each run: no message left from an earlier run reaches this one.
  rabbitmqctl -q delete_vhost "$VHOST" >/dev/null 2>&1 || true
  rabbitmqctl -q add_vhost "$VHOST"
  rabbitmqctl -q set_permissions -p "$VHOST" guest '.*' '.*' '.*'
}

debian_packages() {  # chromium for the docs-page test, docker-compose to validate the compose file,
  local missing=()    # wrk for the benchmark's load
  command -v chromium >/dev/null || missing+=(chromium)
  command -v docker-compose >/dev/null || missing+=(docker-compose)
  command -v wrk >/dev/null || missing+=(wrk)
  ((${#missing[@]})) || return 0
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

postgres
redis
rabbitmq
debian_packages
log "ready: database $DB, vhost $VHOST"
