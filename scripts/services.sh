#!/usr/bin/env bash
# Start the local MariaDB and RabbitMQ servers when they are down, enable the RabbitMQ
# management plugin (the sandbox reads broker definitions through its HTTP API), and
# wait until both answer. Idempotent: a running server is left as it is.
set -euo pipefail

wait_for() {  # name, seconds, command...
  local name=$1 seconds=$2; shift 2
  for _ in $(seq "$seconds"); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  echo "services: $name did not answer within ${seconds}s" >&2
  return 1
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if ! port_open 3306; then
  echo "services: starting MariaDB"
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
fi
wait_for MariaDB 60 port_open 3306

if ! port_open 5672; then
  echo "services: starting RabbitMQ"
  rabbitmq-server -detached
fi
wait_for RabbitMQ 90 port_open 5672

if command -v rabbitmq-plugins >/dev/null && ! port_open 15672; then
  rabbitmq-plugins enable --quiet rabbitmq_management >/dev/null
fi
if command -v rabbitmq-plugins >/dev/null; then
  wait_for "RabbitMQ management API" 60 port_open 15672
fi
