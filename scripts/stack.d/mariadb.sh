# shellcheck shell=bash
# scripts/stack.d/mariadb.sh, sourced by scripts/stack: the services mariadb (plaintext, on
# MYSQL_PORT) and mariadb-secure (TLS required, on MYSQL_SECURE_PORT), two instances started by
# one function (mariadb_start) with the same database and users.

require_mariadb() {
	MARIADBD=$(require_prog mariadb-server -- mariadbd mysqld)
	MARIADB_INSTALL_DB=$(require_prog mariadb-server -- mariadb-install-db mysql_install_db)
	MARIADB=$(require_prog mariadb-client -- mariadb mysql)
	MARIADB_ADMIN=$(require_prog mariadb-client -- mariadb-admin mysqladmin)
}

# mariadb_root SERVICE ARGS...: the client as root over the instance's Unix socket (which
# require_secure_transport counts as secure).
mariadb_root() {
	local svc=$1
	shift
	"$MARIADB" --no-defaults --protocol=socket -S "$(svc_dir "$svc")/sock" -u root "$@"
}

mariadb_ready_tcp() {
	"$MARIADB" --no-defaults --protocol=tcp -h "$HOST" -P "$MYSQL_PORT" -u "$DB_USER" \
		"-p$DB_PASSWORD" --connect-timeout=3 -e 'select 1' "$DB_NAME" >/dev/null 2>&1
}

# Over TLS, verifying the server certificate and its address.
mariadb_secure_ready_tcp() {
	"$MARIADB" --no-defaults --protocol=tcp -h "$HOST" -P "$MYSQL_SECURE_PORT" -u "$DB_USER" \
		"-p$DB_PASSWORD" --ssl --ssl-ca="$TLS_DIR/ca.pem" --ssl-verify-server-cert \
		--connect-timeout=3 -e 'select 1' "$DB_NAME" >/dev/null 2>&1
}

# mariadb_start SERVICE PORT READY [SERVER_OPTION...]: one MariaDB instance in the service's
# directory (data, socket, pid, log), provisioned with the stack's database and users (idempotent,
# so a half-finished earlier start is repaired), ready when READY succeeds.
mariadb_start() {
	local svc=$1 port=$2 ready=$3 dir data logfile pid user_args=()
	shift 3
	dir=$(svc_dir "$svc")
	data=$dir/data
	logfile=$dir/log
	if pid=$(live_pid "$svc"); then
		log "$svc already running (pid $pid)"
		return 0
	fi
	require_mariadb
	refuse_foreign_port "$svc" "$port"
	mkdir -p "$dir"
	# mariadbd refuses to run as root unless told to.
	is_root && user_args=(--user=root)
	if [ ! -d "$data/mysql" ]; then
		log "$svc: install-db in $data"
		rm -rf "$data"
		if ! "$MARIADB_INSTALL_DB" --no-defaults --datadir="$data" "${user_args[@]}" \
			--auth-root-authentication-method=normal --skip-test-db >"$dir/install-db.log" 2>&1; then
			printf 'stack: error: %s: mariadb-install-db failed\n' "$svc" >&2
			show_log "$dir/install-db.log"
			exit 1
		fi
	fi
	log "$svc: starting on $HOST:$port"
	rm -f "$dir/pid"
	setsid "$MARIADBD" --no-defaults --datadir="$data" "${user_args[@]}" --port="$port" \
		--bind-address="$HOST" --socket="$dir/sock" --pid-file="$dir/pid" --skip-log-bin \
		--skip-name-resolve "$@" </dev/null >>"$logfile" 2>&1 9>&- &
	local launcher=$!
	local deadline=$((SECONDS + TIMEOUT))
	until "$MARIADB_ADMIN" --no-defaults --protocol=socket -S "$dir/sock" -u root \
		--connect-timeout=2 ping >/dev/null 2>&1; do
		if ! kill -0 "$launcher" 2>/dev/null; then
			printf 'stack: error: %s exited during startup\n' "$svc" >&2
			show_log "$logfile"
			exit 1
		fi
		if [ "$SECONDS" -ge "$deadline" ]; then
			printf 'stack: error: %s did not become ready within %ss\n' "$svc" "$TIMEOUT" >&2
			show_log "$logfile"
			exit 1
		fi
		sleep 0.3
	done
	if ! {
		mariadb_provision_sql
		if [ "$svc" = mariadb-secure ]; then mariadb_x509_sql; fi
	} | mariadb_root "$svc" >"$dir/provision.log" 2>&1; then
		printf 'stack: error: %s: creating user/database failed\n' "$svc" >&2
		show_log "$dir/provision.log"
		exit 1
	fi
	wait_until "$svc" "$logfile" "$ready"
	log "$svc ready (pid $(live_pid "$svc" || echo '?'))"
}

mariadb_provision_sql() {
	cat <<SQL
CREATE DATABASE IF NOT EXISTS \`$DB_NAME\`;
CREATE USER IF NOT EXISTS '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$DB_PASSWORD';
CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASSWORD';
ALTER USER '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$DB_PASSWORD';
ALTER USER '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASSWORD';
GRANT ALL ON \`$DB_NAME\`.* TO '$DB_USER'@'127.0.0.1';
GRANT ALL ON \`$DB_NAME\`.* TO '$DB_USER'@'localhost';
GRANT PROCESS ON *.* TO '$DB_USER'@'127.0.0.1';
GRANT PROCESS ON *.* TO '$DB_USER'@'localhost';
FLUSH PRIVILEGES;
SQL
}

# The secure instance's user that must also present a client certificate signed by the CA.
mariadb_x509_sql() {
	cat <<SQL
CREATE USER IF NOT EXISTS '$MYSQL_X509_USER'@'127.0.0.1' IDENTIFIED BY '$DB_PASSWORD' REQUIRE X509;
CREATE USER IF NOT EXISTS '$MYSQL_X509_USER'@'localhost' IDENTIFIED BY '$DB_PASSWORD' REQUIRE X509;
ALTER USER '$MYSQL_X509_USER'@'127.0.0.1' IDENTIFIED BY '$DB_PASSWORD' REQUIRE X509;
ALTER USER '$MYSQL_X509_USER'@'localhost' IDENTIFIED BY '$DB_PASSWORD' REQUIRE X509;
GRANT ALL ON \`$DB_NAME\`.* TO '$MYSQL_X509_USER'@'127.0.0.1';
GRANT ALL ON \`$DB_NAME\`.* TO '$MYSQL_X509_USER'@'localhost';
GRANT PROCESS ON *.* TO '$MYSQL_X509_USER'@'127.0.0.1';
GRANT PROCESS ON *.* TO '$MYSQL_X509_USER'@'localhost';
FLUSH PRIVILEGES;
SQL
}

# The plaintext instance, as before.
start_mariadb() {
	mariadb_start mariadb "$MYSQL_PORT" mariadb_ready_tcp
}

stop_mariadb() {
	local pid
	if pid=$(live_pid mariadb); then
		log "mariadb: stopping (pid $pid)"
		stop_pid mariadb "$pid"
	fi
}

# The TLS-only instance: the stack's server certificate, CA and key (mariadbd runs as this
# script's user, who owns them), require_secure_transport: a TCP client without TLS is refused
# ("Connections using insecure transport are prohibited"). Same database and users as the
# plaintext one, plus MYSQL_X509_USER.
start_mariadb_secure() {
	ensure_tls
	mariadb_start mariadb-secure "$MYSQL_SECURE_PORT" mariadb_secure_ready_tcp \
		--ssl-ca="$TLS_DIR/ca.pem" --ssl-cert="$TLS_DIR/server.pem" \
		--ssl-key="$TLS_DIR/server.key" --require-secure-transport=ON
}

stop_mariadb_secure() {
	local pid
	if pid=$(live_pid mariadb-secure); then
		log "mariadb-secure: stopping (pid $pid)"
		stop_pid mariadb-secure "$pid"
	fi
}
