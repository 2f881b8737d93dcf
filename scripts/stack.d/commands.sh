# shellcheck shell=bash
# scripts/stack.d/commands.sh, sourced by scripts/stack: the commands over the services: up, down,
# start, stop, restart, status and env, and the reservation of the stack's ports. Each service's
# part defines start_SERVICE and stop_SERVICE (a '-' in the name becomes '_'), which these call by
# name.

# The stack's fixed ports lie inside Linux's ephemeral range (32768-60999 by default): while a
# broker is stopped, an outgoing connection of any process may be given its port as a local
# port, and the broker then cannot start again (BindException: Address already in use; seen in
# the failover tests). Run as root, the ports are reserved from the ephemeral range
# (net.ipv4.ip_local_reserved_ports, of this network namespace, added to what is there);
# otherwise a note says why a restart may fail.
STACK_PORT_RANGES="$MYSQL_PORT-$MYSQL_SECURE_PORT,$PG_PORT,$REDIS_PORT-$REDIS_TLS_PORT,$KAFKA_PORT-$((CLUSTER_BASE_PORT + 3))"
reserve_ports() {
	local file=/proc/sys/net/ipv4/ip_local_reserved_ports current
	[ -r "$file" ] || return 0
	current=$(cat "$file")
	case ",$current," in
	*",$STACK_PORT_RANGES,"*) return 0 ;;
	esac
	if is_root && printf '%s\n' "${current:+$current,}$STACK_PORT_RANGES" >"$file" 2>/dev/null; then
		log "reserved the stack's ports from the ephemeral range ($STACK_PORT_RANGES)"
	else
		log "note: the stack's ports ($STACK_PORT_RANGES) are not reserved from the ephemeral range; a stopped broker may find its port taken by an outgoing connection (as root: echo $STACK_PORT_RANGES > $file)"
	fi
}

cmd_up() {
	take_lock
	ensure_stack_dir
	reserve_ports
	local svc
	for svc in "${SERVICES[@]}"; do
		"start_${svc//-/_}"
	done
	log "all services ready; for the tests: eval \"\$($SELF env)\""
}

cmd_down() {
	take_lock
	local svc i
	for ((i = ${#ALL_SERVICES[@]} - 1; i >= 0; i--)); do
		svc=${ALL_SERVICES[i]}
		"stop_${svc//-/_}"
	done
	if [ -d "$STACK_DIR" ]; then
		if [ -e "$STACK_DIR/$MARKER" ]; then
			rm -rf "$STACK_DIR"
			log "removed $STACK_DIR"
		else
			log "not removing $STACK_DIR: it was not created by scripts/stack"
		fi
	fi
}

cmd_start() {
	check_service "${1:-}"
	take_lock
	ensure_stack_dir
	reserve_ports
	"start_${1//-/_}"
}

cmd_stop() {
	check_service "${1:-}"
	take_lock
	"stop_${1//-/_}"
}

cmd_restart() {
	check_service "${1:-}"
	take_lock
	ensure_stack_dir
	"stop_${1//-/_}"
	"start_${1//-/_}"
}

# The secured ports of a running service, for its status line: " +NAME:PORT...", or nothing.
status_secured() {
	local name proto port mechs out=''
	# shellcheck disable=SC2034 # PSQL is pg_ssl_on's (postgres.sh)
	case $1 in
	kafka)
		while read -r name proto port mechs; do
			port_open "$port" && out+=" $name:$port"
		done < <(kafka_secure_listeners)
		;;
	redis) port_open "$REDIS_TLS_PORT" && out=" TLS:$REDIS_TLS_PORT" ;;
	postgres) PSQL=$(find_prog psql) && pg_ssl_on && out=" ssl=on" ;;
	mariadb-secure) out=" TLS required" ;;
	esac
	[ -n "$out" ] && printf '  +%s' "$out"
	return 0
}

# One line per service; the cluster's line gives the state of each of its nodes.
cmd_status() {
	local svc pid port i
	for svc in "${ALL_SERVICES[@]}"; do
		case $svc in
		postgres) port=$PG_PORT ;;
		mariadb) port=$MYSQL_PORT ;;
		mariadb-secure) port=$MYSQL_SECURE_PORT ;;
		redis) port=$REDIS_PORT ;;
		kafka) port=$KAFKA_PORT ;;
		cluster)
			local states=()
			for i in controller 1 2 3; do
				if pid=$(node_pid "$(cluster_node_dir "$i")"); then
					if grep -q '^State:.*T' "/proc/$pid/status" 2>/dev/null; then
						states+=("$i:paused")
					else
						states+=("$i:running")
					fi
				else
					states+=("$i:stopped")
				fi
			done
			printf '%-14s %s  %s\n' cluster "${states[*]}" "$(cluster_brokers)"
			continue
			;;
		esac
		if { [ "$svc" = kafka ] && pid=$(node_pid "$(svc_dir kafka)"); } ||
			{ [ "$svc" != kafka ] && pid=$(live_pid "$svc"); }; then
			printf '%-14s running  pid %-8s %s:%s%s\n' "$svc" "$pid" "$HOST" "$port" "$(status_secured "$svc")"
		elif port_open "$port"; then
			printf '%-14s foreign  %s:%s is used by a process this script did not start\n' "$svc" "$HOST" "$port"
		else
			printf '%-14s stopped\n' "$svc"
		fi
	done
}

cmd_env() {
	printf 'export %s=%q\n' \
		REPLIQATE_TEST_PG_URI "postgresql://$DB_USER:$DB_PASSWORD@$HOST:$PG_PORT/$DB_NAME" \
		REPLIQATE_TEST_PG_TLS_URI "postgresql://$PG_TLS_USER:$PG_TLS_PASSWORD@$HOST:$PG_PORT/$DB_NAME" \
		REPLIQATE_TEST_PG_CERT_URI "postgresql://$PG_CERT_USER@$HOST:$PG_PORT/$DB_NAME" \
		REPLIQATE_TEST_MYSQL_URI "mysql://$DB_USER:$DB_PASSWORD@$HOST:$MYSQL_PORT/$DB_NAME" \
		REPLIQATE_TEST_MYSQL_SECURE_URI "mysql://$DB_USER:$DB_PASSWORD@$HOST:$MYSQL_SECURE_PORT/$DB_NAME" \
		REPLIQATE_TEST_MYSQL_X509_URI "mysql://$MYSQL_X509_USER:$DB_PASSWORD@$HOST:$MYSQL_SECURE_PORT/$DB_NAME" \
		REPLIQATE_TEST_REDIS "$HOST:$REDIS_PORT" \
		REPLIQATE_TEST_REDIS_TLS "$HOST:$REDIS_TLS_PORT" \
		REPLIQATE_TEST_REDIS_ACL_USER "$REDIS_ACL_USER" \
		REPLIQATE_TEST_REDIS_ACL_PASSWORD "$REDIS_ACL_PASSWORD" \
		REPLIQATE_TEST_KAFKA "$HOST:$KAFKA_PORT" \
		REPLIQATE_TEST_KAFKA_DATA "$(svc_dir kafka)/data" \
		REPLIQATE_TEST_KAFKA_CLUSTER "$(cluster_brokers)" \
		REPLIQATE_KAFKA_VERSION "$KAFKA_VERSION" \
		REPLIQATE_KAFKA_LIBS "$CACHE_DIR/kafka-$KAFKA_VERSION/libs" \
		REPLIQATE_STACK "$SELF" \
		REPLIQATE_STACK_DIR "$STACK_DIR" \
		REPLIQATE_TLS_DIR "$TLS_DIR" \
		REPLIQATE_TEST_KAFKA_SASL_MECHANISMS "$(kafka_sasl_mechanisms)" \
		REPLIQATE_TEST_KAFKA_PLAIN_USER "$KAFKA_PLAIN_USER" \
		REPLIQATE_TEST_KAFKA_PLAIN_PASSWORD "$KAFKA_PLAIN_PASSWORD" \
		REPLIQATE_TEST_KAFKA_SCRAM_USER "$KAFKA_SCRAM_USER" \
		REPLIQATE_TEST_KAFKA_SCRAM_PASSWORD "$KAFKA_SCRAM_PASSWORD" \
		REPLIQATE_TEST_KAFKA_REAUTH_MS "$KAFKA_REAUTH_MS"
	# REPLIQATE_TEST_KAFKA_<LISTENER> for each secured listener of this release; unset for one it
	# goes without, which would otherwise survive from an earlier eval (make compat evals the
	# default release's env, then each older release's on top).
	local all=(SASL_SSL SSL SASL_PLAINTEXT SASL_REAUTH SCRAM512_ONLY SASL_SSL_REAUTH) have=() name proto port mechs
	# shellcheck disable=SC2034 # proto and mechs: read to get past them
	while read -r name proto port mechs; do
		printf 'export %s=%q\n' "REPLIQATE_TEST_KAFKA_$name" "$HOST:$port"
		have+=("$name")
	done < <(kafka_secure_listeners)
	for name in "${all[@]}"; do
		case " ${have[*]} " in
		*" $name "*) ;;
		*) printf 'unset %s\n' "REPLIQATE_TEST_KAFKA_$name" ;;
		esac
	done
}
