# shellcheck shell=bash
# scripts/stack.d/postgres.sh, sourced by scripts/stack: the service postgres. PostgreSQL 15 (or
# the highest Debian major version there is) on PG_PORT, ssl=on, with the stack's database, its
# owner and the TLS-only roles.

pg_bindir() {
	local d
	if [ -n "${REPLIQATE_PG_BINDIR:-}" ]; then
		printf '%s\n' "$REPLIQATE_PG_BINDIR"
		return 0
	fi
	if [ -x /usr/lib/postgresql/15/bin/initdb ]; then
		printf '%s\n' /usr/lib/postgresql/15/bin
		return 0
	fi
	# Another Debian major version, highest first.
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -rn); do
		if [ -x "$d/initdb" ]; then
			printf '%s\n' "$d"
			return 0
		fi
	done
	if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
		dirname "$(command -v initdb)"
		return 0
	fi
	return 1
}

require_pg() {
	PG_BIN=$(pg_bindir) || {
		apt_install postgresql postgresql-client || true
		PG_BIN=$(pg_bindir)
	} || die "cannot find PostgreSQL's initdb/pg_ctl (Debian package: postgresql); install PostgreSQL 15, put its bin directory in PATH or set REPLIQATE_PG_BINDIR"
	PSQL=$(require_prog postgresql-client -- psql)
	PG_ISREADY=$(find_prog pg_isready) || PG_ISREADY=$PG_BIN/pg_isready
	[ -x "$PG_ISREADY" ] || PG_ISREADY=$(require_prog postgresql-client -- pg_isready)
}

# Runs a command as the PostgreSQL server's owner (root may not run PostgreSQL).
as_pg() {
	if is_root; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

pg_ready_tcp() {
	PGPASSWORD=$DB_PASSWORD PGCONNECT_TIMEOUT=3 "$PSQL" -X -q -w \
		-h "$HOST" -p "$PG_PORT" -U "$DB_USER" -d "$DB_NAME" -c 'select 1' >/dev/null 2>&1
}

# As the TLS-only role, verifying the server certificate and its address.
pg_ready_tls() {
	PGPASSWORD=$PG_TLS_PASSWORD PGCONNECT_TIMEOUT=3 "$PSQL" -X -q -w \
		"host=$HOST port=$PG_PORT user=$PG_TLS_USER dbname=$DB_NAME sslmode=verify-full sslrootcert=$TLS_DIR/ca.pem" \
		-c 'select 1' >/dev/null 2>&1
}

# True if the running server has TLS on (one started by an older scripts/stack has not).
pg_ssl_on() {
	[ "$("$PSQL" -X -q -t -A -h "$(svc_dir postgres)" -p "$PG_PORT" -U postgres -d postgres \
		-c 'show ssl' 2>/dev/null)" = on ]
}

# TLS: the server reads its certificate, key and CA from copies of its own in DIR/tls (it runs
# as 'postgres' and wants its key 0600 and its own), remade at every start. Client authentication
# comes from pg_hba.conf and pg_ident.conf that this script writes at every start (hba_file,
# ident_file), so they do not depend on what initdb wrote: initdb's rules, with the TLS-only
# roles' before them. 'cert' checks the client certificate against ssl_ca_file and maps its CN
# through the map 'stack'.
pg_write_auth() {
	local dir=$1 f
	mkdir -p "$dir/tls"
	for f in server.pem server.key ca.pem; do
		cp "$TLS_DIR/$f" "$dir/tls/$f"
	done
	chmod 700 "$dir/tls"
	chmod 600 "$dir/tls/server.key"
	cat >"$dir/pg_hba.conf" <<HBA
# Written by scripts/stack at every start (hba_file).
# TYPE    DATABASE     USER            ADDRESS        METHOD
local     all          all                            trust
hostssl   all          $PG_TLS_USER   $HOST/32   scram-sha-256
hostnossl all          $PG_TLS_USER   $HOST/32   reject
hostssl   all          $PG_CERT_USER  $HOST/32   cert map=stack
hostnossl all          $PG_CERT_USER  $HOST/32   reject
host      all          all             127.0.0.1/32   scram-sha-256
host      all          all             ::1/128        scram-sha-256
local     replication  all                            trust
host      replication  all             127.0.0.1/32   scram-sha-256
host      replication  all             ::1/128        scram-sha-256
HBA
	cat >"$dir/pg_ident.conf" <<IDENT
# Written by scripts/stack at every start (ident_file): certificate CN -> role.
# MAPNAME  SYSTEM-USERNAME   PG-USERNAME
stack      $TLS_CLIENT_CN         $PG_CERT_USER
stack      $PG_CERT_USER    $PG_CERT_USER
IDENT
	if is_root; then
		chown -R postgres: "$dir/tls" "$dir/pg_hba.conf" "$dir/pg_ident.conf"
	fi
}

start_postgres() {
	local dir data logfile pid
	dir=$(svc_dir postgres)
	data=$dir/data
	logfile=$dir/log
	if pid=$(live_pid postgres); then
		require_pg
		if pg_ssl_on; then
			log "postgres already running (pid $pid)"
			return 0
		fi
		log "postgres: running (pid $pid) without TLS (an older scripts/stack started it); restarting it"
		stop_postgres
	fi
	require_pg
	ensure_tls
	refuse_foreign_port postgres "$PG_PORT"
	mkdir -p "$dir"
	if is_root; then
		id postgres >/dev/null 2>&1 || die "user 'postgres' does not exist (PostgreSQL refuses to run as root); install the postgresql package or create the user"
		chown postgres: "$dir"
		if ! runuser -u postgres -- test -w "$dir"; then
			die "user 'postgres' cannot write $dir; put the stack under a directory it can reach, e.g. REPLIQATE_STACK_DIR=/tmp/repliqate-stack"
		fi
	fi
	if [ ! -s "$data/PG_VERSION" ]; then
		log "postgres: initdb in $data"
		rm -rf "$data"
		if ! as_pg "$PG_BIN/initdb" -D "$data" -U postgres -E UTF8 --locale=C \
			--auth-local=trust --auth-host=scram-sha-256 >"$dir/initdb.log" 2>&1; then
			printf 'stack: error: postgres initdb failed\n' >&2
			show_log "$dir/initdb.log"
			exit 1
		fi
	fi
	pg_write_auth "$dir"
	log "postgres: starting on $HOST:$PG_PORT (ssl=on)"
	: >>"$logfile"
	is_root && chown postgres: "$logfile"
	if ! as_pg "$PG_BIN/pg_ctl" -D "$data" -l "$logfile" -w -t "$TIMEOUT" \
		-o "-p $PG_PORT -k $dir -c listen_addresses=$HOST -c ssl=on -c ssl_cert_file=$dir/tls/server.pem -c ssl_key_file=$dir/tls/server.key -c ssl_ca_file=$dir/tls/ca.pem -c hba_file=$dir/pg_hba.conf -c ident_file=$dir/pg_ident.conf" \
		start >/dev/null 2>&1 9>&-; then
		printf 'stack: error: postgres failed to start\n' >&2
		show_log "$logfile"
		exit 1
	fi
	wait_until postgres "$logfile" "$PG_ISREADY" -q -h "$HOST" -p "$PG_PORT"
	# Role and database: idempotent, so a half-finished earlier start is repaired.
	if ! "$PSQL" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$PG_PORT" -U postgres -d postgres \
		>"$dir/provision.log" 2>&1 <<SQL; then
DO \$\$
BEGIN
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = '$DB_USER') THEN
    ALTER ROLE $DB_USER LOGIN PASSWORD '$DB_PASSWORD';
  ELSE
    CREATE ROLE $DB_USER LOGIN PASSWORD '$DB_PASSWORD';
  END IF;
END
\$\$;
SELECT 'CREATE DATABASE $DB_NAME OWNER $DB_USER'
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$DB_NAME') \gexec
-- The TLS-only roles act as $DB_USER (its member, inheriting): the database's owner, so they
-- create and read tables in schema public as it does.
DO \$\$
BEGIN
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_TLS_USER') THEN
    ALTER ROLE $PG_TLS_USER LOGIN INHERIT PASSWORD '$PG_TLS_PASSWORD';
  ELSE
    CREATE ROLE $PG_TLS_USER LOGIN INHERIT PASSWORD '$PG_TLS_PASSWORD';
  END IF;
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_CERT_USER') THEN
    ALTER ROLE $PG_CERT_USER LOGIN INHERIT PASSWORD NULL;
  ELSE
    CREATE ROLE $PG_CERT_USER LOGIN INHERIT;
  END IF;
END
\$\$;
SELECT format('GRANT %I TO %I', '$DB_USER', r) FROM unnest(ARRAY['$PG_TLS_USER', '$PG_CERT_USER']) AS r
  WHERE NOT pg_has_role(r, '$DB_USER', 'MEMBER') \gexec
SQL
		printf 'stack: error: postgres: creating role/database failed\n' >&2
		show_log "$dir/provision.log"
		exit 1
	fi
	wait_until postgres "$logfile" pg_ready_tcp
	wait_until postgres "$logfile" pg_ready_tls
	log "postgres ready (pid $(live_pid postgres || echo '?'))"
}

stop_postgres() {
	local dir pid
	dir=$(svc_dir postgres)
	if ! pid=$(live_pid postgres); then
		return 0
	fi
	log "postgres: stopping (pid $pid)"
	if PG_BIN=$(pg_bindir) && [ -x "$PG_BIN/pg_ctl" ]; then
		as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w -t "$TIMEOUT" stop >/dev/null 2>&1 || true
	fi
	if kill -0 "$pid" 2>/dev/null; then
		stop_pid postgres "$pid"
	fi
}
