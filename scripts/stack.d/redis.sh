# shellcheck shell=bash
# scripts/stack.d/redis.sh, sourced by scripts/stack: the service redis. One server, plaintext on
# REDIS_PORT and TLS on REDIS_TLS_PORT, with an ACL user beside 'default'.

require_redis() {
	REDIS_SERVER=$(require_prog redis-server -- redis-server)
	REDIS_CLI=$(require_prog redis-tools -- redis-cli)
}

redis_ready() {
	[ "$("$REDIS_CLI" -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]
}

# The TLS port, verifying the server certificate, as the ACL user.
redis_tls_ready() {
	[ "$("$REDIS_CLI" --tls --cacert "$TLS_DIR/ca.pem" -h "$HOST" -p "$REDIS_TLS_PORT" \
		--user "$REDIS_ACL_USER" --pass "$REDIS_ACL_PASSWORD" --no-auth-warning ping 2>/dev/null)" = PONG ]
}

# Redis serves plaintext on REDIS_PORT and TLS on REDIS_TLS_PORT (Debian builds it with TLS),
# presenting the stack's server certificate; a client certificate is verified against the stack's
# CA if one is sent, and not required (--tls-auth-clients optional). ACL: the user REDIS_ACL_USER
# with every right, beside the untouched 'default' user the plaintext tests use.
start_redis() {
	local dir logfile pid
	dir=$(svc_dir redis)
	logfile=$dir/log
	if pid=$(live_pid redis); then
		if port_open "$REDIS_TLS_PORT"; then
			log "redis already running (pid $pid)"
			return 0
		fi
		log "redis: running (pid $pid) without its TLS port $REDIS_TLS_PORT (an older scripts/stack started it); restarting it"
		stop_redis
	fi
	require_redis
	ensure_tls
	refuse_foreign_port redis "$REDIS_PORT"
	refuse_foreign_port redis "$REDIS_TLS_PORT"
	mkdir -p "$dir"
	rm -f "$dir/pid"
	log "redis: starting on $HOST:$REDIS_PORT, TLS on $HOST:$REDIS_TLS_PORT"
	if ! "$REDIS_SERVER" --port "$REDIS_PORT" --bind "$HOST" --save "" --appendonly no \
		--tls-port "$REDIS_TLS_PORT" --tls-cert-file "$TLS_DIR/server.pem" \
		--tls-key-file "$TLS_DIR/server.key" --tls-ca-cert-file "$TLS_DIR/ca.pem" \
		--tls-auth-clients optional \
		--user "$REDIS_ACL_USER" on ">$REDIS_ACL_PASSWORD" '~*' '&*' '+@all' \
		--daemonize yes --pidfile "$dir/pid" --logfile "$logfile" --dir "$dir" \
		</dev/null >>"$logfile" 2>&1 9>&-; then
		printf 'stack: error: redis-server failed to start\n' >&2
		show_log "$logfile"
		exit 1
	fi
	wait_until redis "$logfile" redis_ready
	wait_until redis "$logfile" redis_tls_ready
	wait_until redis "$logfile" live_pid redis
	log "redis ready (pid $(live_pid redis || echo '?'))"
}

stop_redis() {
	local pid
	if pid=$(live_pid redis); then
		log "redis: stopping (pid $pid)"
		stop_pid redis "$pid"
	fi
}
