# shellcheck shell=bash
# scripts/stack.d/common.sh, sourced by scripts/stack: what every service uses. Messages (log,
# die, show_log), the stack directory and its lock, finding and installing programs
# (require_prog), and processes: the pid a service recorded (live_pid), waiting until it is
# ready (wait_until), stopping it by that pid (stop_pid).

log() { printf 'stack: %s\n' "$*" >&2; }
die() {
	printf 'stack: error: %s\n' "$*" >&2
	exit 1
}

is_root() { [ "$(id -u)" -eq 0 ]; }

svc_dir() { printf '%s/%s' "$STACK_DIR" "$1"; }

check_service() {
	case ${1:-} in
	postgres | mariadb | mariadb-secure | redis | kafka | cluster) ;;
	'') die "missing SERVICE: expected one of ${ALL_SERVICES[*]}" ;;
	*) die "unknown service '$1': expected one of ${ALL_SERVICES[*]}" ;;
	esac
}

# Prints the last lines of a service's log, so a failed start explains itself.
show_log() {
	local file=$1
	if [ -s "$file" ]; then
		printf -- '--- last lines of %s ---\n' "$file" >&2
		tail -n 30 "$file" >&2 || true
		printf -- '--- end of %s ---\n' "$file" >&2
	else
		printf 'stack: (log %s is empty or missing)\n' "$file" >&2
	fi
}

# True if something accepts TCP connections on 127.0.0.1:PORT.
port_open() {
	(exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
}

# ---------------------------------------------------------------------------------------------
# Stack directory and lock
# ---------------------------------------------------------------------------------------------
ensure_stack_dir() {
	if [ -d "$STACK_DIR" ] && [ ! -e "$STACK_DIR/$MARKER" ] && [ -n "$(ls -A "$STACK_DIR")" ]; then
		die "$STACK_DIR exists, is not empty and was not created by scripts/stack; set REPLIQATE_STACK_DIR to another directory"
	fi
	mkdir -p "$STACK_DIR"
	# Other users (postgres) must be able to reach their own subdirectory.
	chmod 755 "$STACK_DIR"
	touch "$STACK_DIR/$MARKER"
}

# Serialises concurrent invocations (e.g. two test runs) that would otherwise race on pid files.
# The lock file sits beside the stack directory because 'down' deletes the directory. Servers are
# started with fd 9 closed: a daemon inheriting it would hold the lock forever.
take_lock() {
	command -v flock >/dev/null 2>&1 || return 0
	mkdir -p "$(dirname "$STACK_DIR")"
	exec 9>"$STACK_DIR.lock"
	if ! flock -w "$((TIMEOUT * 4))" 9; then
		die "another scripts/stack is still running (lock $STACK_DIR.lock)"
	fi
}

# ---------------------------------------------------------------------------------------------
# Packages
# ---------------------------------------------------------------------------------------------
APT_UPDATED=0
apt_install() {
	if ! is_root || ! command -v apt-get >/dev/null 2>&1; then
		return 1
	fi
	if [ "$APT_UPDATED" -eq 0 ]; then
		log "apt-get update"
		DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
		APT_UPDATED=1
	fi
	log "apt-get install $*"
	# The packages may try to start system services on their default ports (or be refused by
	# policy-rc.d in containers); neither matters, ours run on other ports.
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >&2 9>&-
}

# Looks a program up in PATH and in the sbin/libexec directories non-root PATHs often lack.
find_prog() {
	local name dir
	for name in "$@"; do
		if command -v "$name" >/dev/null 2>&1; then
			command -v "$name"
			return 0
		fi
		for dir in /usr/sbin /sbin /usr/local/sbin /usr/libexec; do
			if [ -x "$dir/$name" ]; then
				printf '%s\n' "$dir/$name"
				return 0
			fi
		done
	done
	return 1
}

# require_prog PACKAGES -- NAMES...: prints the path of the first of NAMES found, installing the
# Debian PACKAGES first if none is found and we may.
require_prog() {
	local pkgs=() path
	while [ "$1" != -- ]; do
		pkgs+=("$1")
		shift
	done
	shift
	if path=$(find_prog "$@"); then
		printf '%s\n' "$path"
		return 0
	fi
	if apt_install "${pkgs[@]}" && path=$(find_prog "$@"); then
		printf '%s\n' "$path"
		return 0
	fi
	die "cannot find $* (Debian packages: ${pkgs[*]}); install it, or run this script as root on Debian to have it installed"
}

# ---------------------------------------------------------------------------------------------
# Process helpers
# ---------------------------------------------------------------------------------------------

# Prints the pid recorded for a service if that process is alive and is the program we started
# (guards against a recycled pid).
live_pid() {
	local svc=$1 file pid expect
	case $svc in
	postgres)
		file=$(svc_dir postgres)/data/postmaster.pid
		expect="-p $PG_PORT"
		;;
	mariadb)
		file=$(svc_dir mariadb)/pid
		expect="--port=$MYSQL_PORT"
		;;
	mariadb-secure)
		file=$(svc_dir mariadb-secure)/pid
		expect="--port=$MYSQL_SECURE_PORT"
		;;
	redis)
		file=$(svc_dir redis)/pid
		expect=":$REDIS_PORT"
		;;
	*) die "live_pid: $svc is not a service with a pid file of its own" ;;
	esac
	[ -r "$file" ] || return 1
	pid=$(head -n 1 "$file" 2>/dev/null | tr -dc 0-9)
	[ -n "$pid" ] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	if [ -r "/proc/$pid/cmdline" ]; then
		tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$expect" || return 1
	fi
	printf '%s\n' "$pid"
}

# wait_until SERVICE LOG COMMAND...: runs COMMAND until it succeeds or the timeout passes.
wait_until() {
	local svc=$1 logfile=$2
	shift 2
	local deadline=$((SECONDS + TIMEOUT))
	while ! "$@" >/dev/null 2>&1; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			printf 'stack: error: %s did not become ready within %ss (check: %s)\n' "$svc" "$TIMEOUT" "$*" >&2
			show_log "$logfile"
			exit 1
		fi
		sleep 0.3
	done
}

# Sends SIGTERM to a pid and waits for it to go away, then SIGKILL as a last resort.
stop_pid() {
	local svc=$1 pid=$2
	kill -TERM "$pid" 2>/dev/null || return 0
	local deadline=$((SECONDS + TIMEOUT))
	while kill -0 "$pid" 2>/dev/null; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			log "$svc (pid $pid) ignored SIGTERM for ${TIMEOUT}s; sending SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
			sleep 0.5
			return 0
		fi
		sleep 0.2
	done
}

refuse_foreign_port() {
	local svc=$1 port=$2
	if port_open "$port"; then
		die "cannot start $svc: port $HOST:$port is already used by a process this script did not start (see: ss -ltnp 'sport = :$port')"
	fi
}
