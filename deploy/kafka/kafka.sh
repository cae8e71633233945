#!/usr/bin/env bash
# A single-node Apache Kafka (KRaft) on 127.0.0.1:9092, run from the jars pom.xml fetches.
#
#   kafka.sh start    fetch jars if needed, format storage once, start, wait until topics list
#   kafka.sh stop     TERM, then KILL after KAFKA_STOP_TIMEOUT seconds
#   kafka.sh status   "running pid N" and exit 0, else exit 3
#
# Environment: KAFKA_HEAP [1g] maximum heap; KAFKA_DIR [deploy/kafka/run] data, logs, pid file;
# KAFKA_START_TIMEOUT [90] and KAFKA_STOP_TIMEOUT [30] seconds.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LIBS="$HERE/target/libs"
RUN_DIR="${KAFKA_DIR:-$HERE/run}"
HEAP="${KAFKA_HEAP:-1g}"
START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"
BOOTSTRAP_HOST=127.0.0.1
BOOTSTRAP_PORT=9092
CONTROLLER_PORT=9093

mkdir -p "$RUN_DIR"
# Absolute, because the broker resolves log.dirs against its own working directory.
RUN_DIR="$(cd "$RUN_DIR" && pwd)"
PID_FILE="$RUN_DIR/kafka.pid"
LOG_DIR="$RUN_DIR/logs"
DATA_DIR="$RUN_DIR/data"
CONFIG="$RUN_DIR/server.properties"

log() { printf 'kafka: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# The pid file alone is not proof: after a reboot or a crash the pid may belong to another process.
running_pid() {
  [[ -f "$PID_FILE" ]] || return 1
  local pid
  pid="$(<"$PID_FILE")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [[ -r "/proc/$pid/cmdline" ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'kafka\.Kafka' || return 1
  printf '%s' "$pid"
}

port_open() {
  (exec 3<>"/dev/tcp/$BOOTSTRAP_HOST/$1") 2>/dev/null
}

heap_mib() {
  [[ "$HEAP" =~ ^([0-9]+)([kKmMgG])$ ]] || die "KAFKA_HEAP must look like 512m or 1g, got '$HEAP'"
  local n="${BASH_REMATCH[1]}"
  case "${BASH_REMATCH[2]}" in
    k | K) echo $((n / 1024)) ;;
    m | M) echo "$n" ;;
    g | G) echo $((n * 1024)) ;;
  esac
}

fetch_libs() {
  # A changed pom.xml refetches from scratch: copy-dependencies never deletes a jar it no longer wants.
  if [[ -f "$LIBS/.fetched" && ! "$HERE/pom.xml" -nt "$LIBS/.fetched" ]]; then
    return
  fi
  command -v mvn >/dev/null || die "mvn not found: Maven 3.8+ fetches the broker jars"
  log "fetching broker jars with Maven"
  mkdir -p "$LOG_DIR"
  rm -rf "$LIBS"
  if ! mvn -B -f "$HERE/pom.xml" dependency:copy-dependencies >"$LOG_DIR/maven.log" 2>&1; then
    tail -n 30 "$LOG_DIR/maven.log" >&2
    die "Maven could not fetch the jars, see $LOG_DIR/maven.log"
  fi
  touch "$LIBS/.fetched"
}

tool() {
  java -Xmx256m -XX:+UseSerialGC -Dlog4j.configuration="file:$HERE/tools-log4j.properties" \
    -cp "$LIBS/*" "$@"
}

# Kafka's own cluster ids are 16 random bytes in unpadded base64url; one that starts with '-'
# would read as an option on the command line, which Kafka's generator avoids too.
new_cluster_id() {
  local id
  while :; do
    id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
    [[ "$id" != -* ]] && break
  done
  printf '%s' "$id"
}

write_config() {
  { cat "$HERE/server.properties"; printf '\n# Written by kafka.sh: the run directory in use.\nlog.dirs=%s\n' "$DATA_DIR"; } >"$CONFIG"
}

format_storage_once() {
  [[ -f "$DATA_DIR/meta.properties" ]] && return
  [[ -s "$RUN_DIR/cluster-id" ]] || new_cluster_id >"$RUN_DIR/cluster-id"
  log "formatting $DATA_DIR (cluster id $(<"$RUN_DIR/cluster-id"))"
  tool kafka.tools.StorageTool format --ignore-formatted \
    --cluster-id "$(<"$RUN_DIR/cluster-id")" --config "$CONFIG" >>"$LOG_DIR/storage-format.log" 2>&1 ||
    die "storage format failed, see $LOG_DIR/storage-format.log"
}

topics_listable() {
  timeout 30 java -Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -Dlog4j.configuration="file:$HERE/tools-log4j.properties" -cp "$LIBS/*" \
    org.apache.kafka.tools.TopicCommand --bootstrap-server "$BOOTSTRAP_HOST:$BOOTSTRAP_PORT" --list \
    >/dev/null 2>&1
}

start() {
  local pid
  # Two test runs may call start at once; the second waits here and then finds the broker running.
  exec 9>>"$RUN_DIR/kafka.lock"
  flock -w "$((START_TIMEOUT + 120))" 9 || die "another 'kafka.sh start' holds $RUN_DIR/kafka.lock"
  if pid="$(running_pid)"; then
    echo "already running pid $pid"
    return 0
  fi
  rm -f "$PID_FILE"
  command -v java >/dev/null || die "java not found: the broker needs Java 17"
  if port_open "$BOOTSTRAP_PORT"; then
    # A broker this script did not start (another checkout's, or an installed one) already
    # answers there: use it, and leave it to whoever started it.
    fetch_libs
    topics_listable && { echo "already running (not started here) on $BOOTSTRAP_HOST:$BOOTSTRAP_PORT"; return 0; }
    die "port $BOOTSTRAP_PORT is taken by something that is not a Kafka broker; not starting"
  fi
  port_open "$CONTROLLER_PORT" && die "port $CONTROLLER_PORT is taken by another process; not starting"

  local began=$SECONDS heap xms
  heap="$(heap_mib)" || exit 1
  mkdir -p "$LOG_DIR" "$DATA_DIR"
  fetch_libs
  write_config
  format_storage_once

  xms=$((heap < 256 ? heap : 256))
  # G1 with a short pause goal is what Kafka's own scripts use; with a heap this small it stays
  # cheap on two cores, and the broker never needs more than a few hundred MB here.
  # setsid: a Ctrl-C in the terminal that ran `start` must not reach the broker.
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$PID_FILE" \
    java "-Xmx$HEAP" "-Xms${xms}m" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent \
    -Djava.awt.headless=true -Dkafka.logs.dir="$LOG_DIR" \
    -Dlog4j.configuration="file:$HERE/log4j.properties" \
    -cp "$LIBS/*" kafka.Kafka "$CONFIG" \
    </dev/null >>"$LOG_DIR/kafka.out" 2>&1 9>&- &

  local deadline=$((SECONDS + START_TIMEOUT))
  while ((SECONDS < deadline)); do
    if ! pid="$(running_pid)"; then
      # The pid file may not be written yet in the first instant; a dead launcher is final.
      if ! kill -0 $! 2>/dev/null; then
        tail -n 20 "$LOG_DIR/kafka.out" "$LOG_DIR/server.log" 2>/dev/null >&2 || true
        rm -f "$PID_FILE"
        die "broker exited during startup, logs in $LOG_DIR"
      fi
    elif port_open "$BOOTSTRAP_PORT" && topics_listable; then
      echo "started pid $pid in $((SECONDS - began))s"
      return 0
    fi
    sleep 0.5
  done
  die "broker not ready after ${START_TIMEOUT}s (still starting? see $LOG_DIR); 'kafka.sh stop' ends it"
}

stop() {
  local pid
  if ! pid="$(running_pid)"; then
    rm -f "$PID_FILE"
    echo "not running"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "pid $pid still alive after ${STOP_TIMEOUT}s, sending KILL"
    kill -KILL "$pid" 2>/dev/null || true
    deadline=$((SECONDS + 10))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
  fi
  rm -f "$PID_FILE"
  echo "stopped pid $pid"
}

status() {
  local pid
  if pid="$(running_pid)"; then
    echo "running pid $pid"
    return 0
  fi
  echo "not running"
  return 3
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
