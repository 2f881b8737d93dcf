# shellcheck shell=bash
# scripts/stack.d/cluster.sh, sourced by scripts/stack: the service cluster, three brokers and a
# controller apart from them on CLUSTER_BASE_PORT and the three ports after it, for the failover
# tests; `broker N ACTION`, what those tests do to one of its brokers; and `private`, a node of a
# test's own in a directory and on ports the test names.

# The three-broker cluster -------------------------------------------------------------------
cluster_broker_port() { echo $((CLUSTER_BASE_PORT + $1)); }
cluster_node_dir() { printf '%s/node-%s' "$(svc_dir cluster)" "$1"; }
cluster_brokers() {
	local i list=()
	for i in 1 2 3; do list+=("$HOST:$(cluster_broker_port "$i")"); done
	(
		IFS=,
		echo "${list[*]}"
	)
}

start_cluster() {
	local dir controller id i voters
	dir=$(svc_dir cluster)
	require_java
	kafka_libs >/dev/null
	if [ -s "$dir/version" ] && [ "$(cat "$dir/version")" != "$KAFKA_VERSION" ]; then
		log "cluster: it ran $(cat "$dir/version") before; new storage for $KAFKA_VERSION"
		stop_cluster
		rm -rf "$dir"
	fi
	mkdir -p "$dir"
	printf '%s\n' "$KAFKA_VERSION" >"$dir/version"
	controller=$(cluster_node_dir controller)
	mkdir -p "$controller"
	if [ "$(kafka_mode)" = kraft ]; then
		voters=100@$HOST:$CLUSTER_BASE_PORT
		id=$(kafka_cluster_id "$dir/cluster-id")
		kafka_write_config "$controller" 100 controller - "$CLUSTER_BASE_PORT" "$voters" - \
			$(cluster_props)
		kafka_format "$controller" "$id"
		if ! node_pid "$controller" >/dev/null; then
			log "cluster: starting the controller on $HOST:$CLUSTER_BASE_PORT"
			kafka_node_start "$controller" -
			kafka_wait "$controller" "$CLUSTER_BASE_PORT"
		fi
	else
		voters=$HOST:$CLUSTER_BASE_PORT
		zk_start "$controller" "$CLUSTER_BASE_PORT"
	fi
	for i in 1 2 3; do
		local node port
		node=$(cluster_node_dir "$i")
		port=$(cluster_broker_port "$i")
		mkdir -p "$node"
		if [ "$(kafka_mode)" = kraft ]; then
			kafka_write_config "$node" "$i" broker "$port" - "$voters" "$HOST:$port" $(cluster_props)
			kafka_format "$node" "$id"
		else
			kafka_write_config "$node" "$i" - "$port" - "$voters" "$HOST:$port" $(cluster_props)
		fi
		if ! node_pid "$node" >/dev/null; then
			log "cluster: starting broker $i on $HOST:$port"
			kafka_node_start "$node" "$port"
		fi
	done
	for i in 1 2 3; do
		kafka_wait "$(cluster_node_dir "$i")" "$(cluster_broker_port "$i")"
	done
	log "cluster ready: brokers $(cluster_brokers)"
}

stop_cluster() {
	local i
	[ -d "$(svc_dir cluster)" ] || return 0
	for i in 1 2 3 controller; do
		if node_pid "$(cluster_node_dir "$i")" >/dev/null; then
			log "cluster: stopping node $i"
		fi
		kafka_node_stop "$(cluster_node_dir "$i")"
	done
}

# scripts/stack broker N ACTION: what the failover tests do to broker N (1-3) of the cluster.
cmd_broker() {
	local n=${1:-} action=${2:-} node pid
	case $n in
	1 | 2 | 3) ;;
	*) die "usage: scripts/stack broker 1|2|3 kill|pause|resume|stop|start|pid" ;;
	esac
	node=$(cluster_node_dir "$n")
	[ -d "$node" ] || die "the cluster was never started; start it with: $SELF start cluster"
	case $action in
	kill)
		pid=$(node_pid "$node") || die "broker $n is not running"
		kill -KILL "$pid"
		while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
		;;
	pause)
		pid=$(node_pid "$node") || die "broker $n is not running"
		kill -STOP "$pid"
		;;
	resume)
		pid=$(node_pid "$node") || die "broker $n is not running"
		kill -CONT "$pid"
		;;
	stop)
		take_lock
		kafka_node_stop "$node"
		;;
	start)
		take_lock
		require_java
		kafka_node_start "$node" "$(cluster_broker_port "$n")"
		kafka_wait "$node" "$(cluster_broker_port "$n")"
		;;
	pid) node_pid "$node" || die "broker $n is not running" ;;
	*) die "unknown broker action '$action': expected kill, pause, resume, stop, start or pid" ;;
	esac
}

# scripts/stack private start DIR PORT CONTROLLER_PORT ADVERTISED | private stop DIR
cmd_private() {
	local action=${1:-} dir=${2:-}
	[ -n "$dir" ] || die "usage: scripts/stack private start DIR PORT CONTROLLER_PORT ADVERTISED | private stop DIR"
	case $dir in
	/*) ;;
	*) dir=$PWD/$dir ;;
	esac
	case $action in
	start)
		local port=${3:?PORT} cport=${4:?CONTROLLER_PORT} advertised=${5:?ADVERTISED} voters
		require_java
		mkdir -p "$dir"
		voters=1@$HOST:$cport
		if [ "$(kafka_mode)" = zk ]; then
			zk_start "$dir/zookeeper" "$cport"
			voters=$HOST:$cport
		fi
		kafka_write_config "$dir" 1 broker,controller "$port" "$cport" "$voters" "$advertised" \
			$(single_node_props)
		kafka_format "$dir" "$(kafka_cluster_id "$dir/cluster-id")"
		kafka_node_start "$dir" "$port"
		kafka_wait "$dir" "$port"
		node_pid "$dir"
		;;
	stop)
		kafka_node_stop "$dir"
		kafka_node_stop "$dir/zookeeper"
		;;
	*) die "unknown private action '$action': expected start or stop" ;;
	esac
}
