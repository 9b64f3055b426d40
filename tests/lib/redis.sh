# tests/lib/redis.sh - a private redis-server for the shell test suites. Source it.
#
#   redis_start DIR [PORT]  start redis-server in DIR (made if missing), listening
#                           on the unix socket DIR/redis.sock (mode 700) and, with
#                           PORT, on 127.0.0.1:PORT too; no persistence (save "",
#                           appendonly no); its output in DIR/redis.log. Waits at
#                           most 5 s for PING. Sets REDIS_DIR, REDIS_SOCK,
#                           REDIS_PORT (0 without) and REDIS_PID. Non-zero and a
#                           message on stderr when it cannot (no redis-server is
#                           a failure, not a skip).
#   redis_stop              SIGTERM, wait at most 5 s, then SIGKILL. The socket
#                           goes; DIR and the log stay for the suite to remove.
#   redis_cli ARGS...       redis-cli on the socket.
#
# One server per suite at a time; call redis_stop from the suite's cleanup trap.
REDIS_DIR="" REDIS_SOCK="" REDIS_PORT=0 REDIS_PID=""

redis_start() {
	local dir=$1 port=${2:-0} i
	if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
		echo "redis_start: redis-server/redis-cli not found (apt-get install redis-server, or make deps)" >&2
		return 1
	fi
	if [ -n "$REDIS_PID" ]; then
		echo "redis_start: a server is running already (pid $REDIS_PID)" >&2
		return 1
	fi
	mkdir -p "$dir" || return 1
	REDIS_DIR=$(cd "$dir" && pwd)
	REDIS_SOCK=$REDIS_DIR/redis.sock
	REDIS_PORT=$port
	{
		echo "port $port"
		[ "$port" != 0 ] && echo "bind 127.0.0.1"
		echo "unixsocket $REDIS_SOCK"
		echo "unixsocketperm 700"
		echo 'save ""'
		echo "appendonly no"
		echo "daemonize no"
		echo "dir $REDIS_DIR"
		echo 'logfile ""'
	} > "$REDIS_DIR/redis.conf" || return 1
	redis-server "$REDIS_DIR/redis.conf" >> "$REDIS_DIR/redis.log" 2>&1 &
	REDIS_PID=$!
	for i in $(seq 50); do
		if ! kill -0 "$REDIS_PID" 2>/dev/null; then
			echo "redis_start: redis-server exited: $(tail -n 1 "$REDIS_DIR/redis.log")" >&2
			wait "$REDIS_PID" 2>/dev/null
			REDIS_PID=""
			return 1
		fi
		[ "$(redis-cli -s "$REDIS_SOCK" ping 2>/dev/null)" = PONG ] && return 0
		sleep 0.1
	done
	echo "redis_start: redis-server did not answer PING on $REDIS_SOCK within 5 s" >&2
	redis_stop
	return 1
}

redis_stop() {
	local i
	[ -n "$REDIS_PID" ] || return 0
	kill -TERM "$REDIS_PID" 2>/dev/null
	for i in $(seq 50); do
		kill -0 "$REDIS_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$REDIS_PID" 2>/dev/null
	wait "$REDIS_PID" 2>/dev/null
	REDIS_PID=""
	return 0
}

redis_cli() {
	redis-cli -s "$REDIS_SOCK" "$@"
}
