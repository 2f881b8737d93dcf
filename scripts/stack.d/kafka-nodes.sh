# shellcheck shell=bash
# scripts/stack.d/kafka-nodes.sh, sourced by scripts/stack: Apache Kafka nodes, whichever service
# runs them (Apache Kafka from Maven Central, run on the JDK). The release's jars (kafka_libs), the
# JVM (kafka_java), server.properties, storage, starting, waiting for and stopping one node, and
# ZooKeeper for releases before KRaft. kafka.sh, cluster.sh and tools.sh build on it.
#
# The broker's jars are resolved once per version with Maven into $CACHE_DIR/kafka-VERSION/libs
# (a throwaway pom naming the broker and its tools) and run with `java -cp`. Kafka 3.3 and later
# run in KRaft mode (no ZooKeeper); older releases run beside a ZooKeeper from the same jars.
#
# Three kinds of nodes, all on loopback, each in a directory of its own holding server.properties,
# its data, its log and its pid:
#   kafka      the stack's broker: one combined broker+controller node
#   cluster    three brokers (ids 1-3) and a controller (id 100) apart from them, replication
#              factor 3 and min.insync.replicas=2, for failover tests: brokers can die while the
#              quorum keeps the metadata
#   private    a combined node in a directory the caller names, on ports it names, advertising an
#              address it names (a test's proxy), that the caller may break as it likes

# Which mode a version runs in: kraft from 3.3 (KRaft's first production-ready release), zk below.
kafka_mode() {
	local major minor
	major=${KAFKA_VERSION%%.*}
	minor=${KAFKA_VERSION#*.}
	minor=${minor%%.*}
	if [ "$major" -gt 3 ] || { [ "$major" -eq 3 ] && [ "$minor" -ge 3 ]; }; then
		echo kraft
	else
		echo zk
	fi
}

kafka_major() { echo "${KAFKA_VERSION%%.*}"; }

# kafka_at_least MAJOR MINOR: true if $KAFKA_VERSION is MAJOR.MINOR or later.
kafka_at_least() {
	local major minor
	major=$(kafka_major)
	minor=${KAFKA_VERSION#*.}
	minor=${minor%%.*}
	[ "$major" -gt "$1" ] || { [ "$major" -eq "$1" ] && [ "$minor" -ge "$2" ]; }
}

# The broker's artifact: built for Scala 2.13 from 2.4 on, for 2.12 before.
kafka_artifact() {
	local minor=${KAFKA_VERSION#*.}
	minor=${minor%%.*}
	if [ "$(kafka_major)" -le 2 ] && [ "$minor" -lt 4 ]; then
		echo kafka_2.12
	else
		echo kafka_2.13
	fi
}

require_java() {
	JAVA=$(require_prog openjdk-17-jre-headless -- java)
	"$JAVA" -version >/dev/null 2>&1 || die "$JAVA does not run; install a JDK 17 (Debian: openjdk-17-jre-headless)"
}

# Prints the directory holding the jars of $KAFKA_VERSION, resolving them with Maven once.
kafka_libs() {
	local home=$CACHE_DIR/kafka-$KAFKA_VERSION libs mvn pom
	libs=$home/libs
	# The broker's pom leaves the slf4j binding to the distribution in Kafka 4 (log4j2) and
	# before 2.8 (log4j 1); the releases between bring one with them. Without a binding a
	# node logs nothing, not even that it started.
	local binding='' minor=${KAFKA_VERSION#*.}
	minor=${minor%%.*}
	if [ "$(kafka_major)" -ge 4 ]; then
		binding='<dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>2.24.3</version></dependency>'
	elif [ "$(kafka_major)" -le 2 ] && [ "$minor" -lt 8 ]; then
		binding='<dependency><groupId>org.slf4j</groupId><artifactId>slf4j-log4j12</artifactId><version>1.7.25</version></dependency>'
	fi
	# kafka-tools (DumpLogSegments and TopicCommand moved there) exists from 2.8 on.
	local tools=''
	if [ "$(kafka_major)" -ge 3 ] || [ "$minor" -ge 8 ]; then
		tools="<dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$KAFKA_VERSION</version></dependency>"
	fi
	# Kafka before 2.6 brings a ZooKeeper client (3.4.x, 3.5.7) that cannot connect on JDK 17
	# (UnresolvedAddressException, ZOOKEEPER-3779, fixed in 3.5.8): those releases get the
	# 3.5.9 that Kafka 2.8 ships, client and server. The broker's own code is unchanged.
	local zookeeper=''
	if [ "$(kafka_major)" -le 2 ] && [ "$minor" -lt 6 ]; then
		zookeeper='<dependencyManagement><dependencies><dependency><groupId>org.apache.zookeeper</groupId><artifactId>zookeeper</artifactId><version>3.5.9</version></dependency></dependencies></dependencyManagement>'
	fi
	pom=$(
		cat <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <!-- Written by scripts/stack: resolves Apache Kafka $KAFKA_VERSION's jars into libs/. -->
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.repliqate.stack</groupId>
  <artifactId>kafka-$KAFKA_VERSION</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  $zookeeper
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>$(kafka_artifact)</artifactId><version>$KAFKA_VERSION</version></dependency>
    $tools
    $binding
  </dependencies>
</project>
POM
	)
	# Resolved once per release, and again when what this script asks for changes.
	if [ -e "$home/.complete" ] && [ "$(cat "$home/pom.xml" 2>/dev/null)" = "$pom" ]; then
		printf '%s\n' "$libs"
		return 0
	fi
	mvn=$(require_prog maven -- mvn)
	mkdir -p "$home"
	rm -f "$home/.complete"
	printf '%s\n' "$pom" >"$home/pom.xml"
	log "kafka: resolving Apache Kafka $KAFKA_VERSION's jars with Maven into $libs (once)"
	rm -rf "$libs"
	if ! "$mvn" -q -B -f "$home/pom.xml" dependency:copy-dependencies \
		-DoutputDirectory="$libs" -DincludeScope=runtime >"$home/mvn.log" 2>&1 9>&-; then
		show_log "$home/mvn.log"
		die "resolving org.apache.kafka:$(kafka_artifact):$KAFKA_VERSION with Maven failed (is the version published? set REPLIQATE_KAFKA_VERSION)"
	fi
	[ -e "$libs/$(kafka_artifact)-$KAFKA_VERSION.jar" ] ||
		die "Maven finished but $libs has no $(kafka_artifact)-$KAFKA_VERSION.jar"
	touch "$home/.complete"
	printf '%s\n' "$libs"
}

# java -cp LIBS/* with a bounded heap and a console logger at WARN (INFO for kafka.server, which
# logs the start line), so that every node's log is its stdout. With KAFKA_CMD_ONLY=1 it only
# sets KAFKA_CMD, for a caller that needs the JVM's own pid.
kafka_java() {
	local libs=$1 dir=$2
	shift 2
	# 1g, as Kafka's own kafka-server-start.sh. At 512m the log cleaner's 128 MB dedupe buffer
	# (on the heap, for life) and ~1 MB produce requests (humongous in G1) kept G1 marking
	# without pause: 672 concurrent cycles in 15 minutes of `make bench`, and 2.2-2.6 broker
	# CPU s per 1M rows against 0.6-1.0 at 1g (22 cycles), which starved whichever client ran.
	local heap=${REPLIQATE_KAFKA_HEAP:-1g}
	cat >"$dir/log4j2.properties" <<L4J2
status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.out.ref = out
logger.server.name = kafka.server
logger.server.level = INFO
logger.zk.name = org.apache.zookeeper
logger.zk.level = WARN
L4J2
	cat >"$dir/log4j.properties" <<L4J1
log4j.rootLogger=WARN, out
log4j.appender.out=org.apache.log4j.ConsoleAppender
log4j.appender.out.layout=org.apache.log4j.PatternLayout
log4j.appender.out.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.server=INFO
L4J1
	KAFKA_CMD=("$JAVA" "-Xms64m" "-Xmx$heap" -XX:+UseG1GC -XX:MaxGCPauseMillis=20
		-Djava.awt.headless=true "-Dlog4j2.configurationFile=$dir/log4j2.properties"
		"-Dlog4j.configuration=file:$dir/log4j.properties" -cp "$libs/*" "$@")
	[ "${KAFKA_CMD_ONLY:-0}" = 1 ] || "${KAFKA_CMD[@]}"
}

# kafka_write_config DIR NODE_ID ROLES CLIENT_PORT CONTROLLER_PORT VOTERS ADVERTISED [KEY=VALUE...]
# ROLES: broker,controller | broker | controller. CLIENT_PORT or CONTROLLER_PORT may be '-' for
# a node without that listener. VOTERS: id@host:port,... (KRaft) or the ZooKeeper address (zk).
#
# KAFKA_EXTRA_LISTENERS (NAME:PROTOCOL:PORT each; start_kafka sets it for the stack's broker, the
# cluster's and private nodes have none) adds listeners on HOST, advertised as they are; their
# settings come in the KEY=VALUEs. Brokers and controllers talk PLAINTEXT among themselves.
KAFKA_EXTRA_LISTENERS=()
kafka_write_config() {
	local dir=$1 id=$2 roles=$3 port=$4 cport=$5 voters=$6 advertised=$7
	shift 7
	local listeners=() advertised_listeners=() map=() file=$dir/server.properties extra
	[ "$port" != - ] && listeners+=("PLAINTEXT://$HOST:$port")
	[ "$port" != - ] && advertised_listeners+=("PLAINTEXT://$advertised")
	for extra in "${KAFKA_EXTRA_LISTENERS[@]}"; do
		listeners+=("${extra%%:*}://$HOST:${extra##*:}")
		advertised_listeners+=("${extra%%:*}://$HOST:${extra##*:}")
		extra=${extra%:*}
		map+=("${extra%%:*}:${extra#*:}")
	done
	{
		echo "# Written by scripts/stack."
		if [ "$(kafka_mode)" = kraft ]; then
			[ "$cport" != - ] && listeners+=("CONTROLLER://$HOST:$cport")
			echo "process.roles=$roles"
			echo "node.id=$id"
			echo "controller.quorum.voters=$voters"
			echo "controller.listener.names=CONTROLLER"
			echo "listener.security.protocol.map=$(
				IFS=,
				echo "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT${map[*]:+,${map[*]}}"
			)"
		else
			echo "broker.id=$id"
			echo "zookeeper.connect=$voters"
			echo "zookeeper.connection.timeout.ms=30000"
			# ZooKeeper mode maps only the four standard names by default.
			if [ ${#map[@]} -gt 0 ]; then
				echo "listener.security.protocol.map=$(
					IFS=,
					echo "PLAINTEXT:PLAINTEXT,${map[*]}"
				)"
			fi
		fi
		echo "listeners=$(
			IFS=,
			echo "${listeners[*]}"
		)"
		if [ "$port" != - ]; then
			echo "advertised.listeners=$(
				IFS=,
				echo "${advertised_listeners[*]}"
			)"
			echo "inter.broker.listener.name=PLAINTEXT"
		fi
		echo "log.dirs=$dir/data"
		echo "num.partitions=3"
		echo "auto.create.topics.enable=false"
		echo "delete.topic.enable=true"
		echo "group.initial.rebalance.delay.ms=0"
		echo "num.network.threads=2"
		echo "num.io.threads=4"
		echo "log.segment.bytes=1073741824"
		# A deleted topic's files go at once, not a minute later: make bench writes ~500 MB per
		# run and deletes the topic after it, and a minute of runs left GBs of dirty pages whose
		# writeback slowed the broker for the runs after them.
		echo "log.segment.delete.delay.ms=1000"
		echo "offsets.topic.num.partitions=3"
		local kv
		for kv in "$@"; do echo "$kv"; done
	} >"$file"
}

single_node_props() {
	echo offsets.topic.replication.factor=1
	echo transaction.state.log.replication.factor=1
	echo transaction.state.log.min.isr=1
	echo default.replication.factor=1
	echo min.insync.replicas=1
}

cluster_props() {
	echo offsets.topic.replication.factor=3
	echo transaction.state.log.replication.factor=3
	echo transaction.state.log.min.isr=2
	echo default.replication.factor=3
	echo min.insync.replicas=2
	# Leaders move back to the preferred replica soon after a broker returns.
	echo leader.imbalance.check.interval.seconds=5
}

# kafka_format DIR CLUSTER_ID [ARGS...]: formats a KRaft node's storage once (no-op in zk mode);
# ARGS go to StorageTool format (e.g. --add-scram).
kafka_format() {
	local dir=$1 cluster_id=$2 libs
	shift 2
	[ "$(kafka_mode)" = kraft ] || return 0
	[ -e "$dir/data/meta.properties" ] && return 0
	libs=$(kafka_libs)
	if ! kafka_java "$libs" "$dir" kafka.tools.StorageTool format -t "$cluster_id" \
		-c "$dir/server.properties" --ignore-formatted "$@" >"$dir/format.log" 2>&1 9>&-; then
		show_log "$dir/format.log"
		die "formatting Kafka storage in $dir failed"
	fi
}

kafka_cluster_id() {
	local file=$1 libs
	if [ ! -s "$file" ]; then
		libs=$(kafka_libs)
		kafka_java "$libs" "$(dirname "$file")" kafka.tools.StorageTool random-uuid 2>/dev/null |
			tail -n 1 >"$file"
	fi
	cat "$file"
}

# Prints the pid in DIR/pid if that process is alive and is a node started from DIR.
node_pid() {
	local dir=$1 pid
	[ -r "$dir/pid" ] || return 1
	pid=$(tr -dc 0-9 <"$dir/pid")
	[ -n "$pid" ] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	if [ -r "/proc/$pid/cmdline" ]; then
		tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$dir/" || return 1
	fi
	printf '%s\n' "$pid"
}

# kafka_launch DIR MAIN_CLASS CONFIG: starts a node in the background (setsid: it outlives make).
kafka_launch() {
	local dir=$1 main=$2 config=$3 libs
	libs=$(kafka_libs)
	: >>"$dir/log"
	printf '\n=== %s start\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >>"$dir/log"
	KAFKA_CMD_ONLY=1 kafka_java "$libs" "$dir" "$main" "$config"
	# A simple command in the background: $! is the JVM itself.
	"${KAFKA_CMD[@]}" </dev/null >>"$dir/log" 2>&1 9>&- &
	printf '%s\n' "$!" >"$dir/pid"
}

# kafka_wait DIR PORT: until the node logs that it started and, for a broker, listens on PORT.
kafka_wait() {
	local dir=$1 port=$2 pid deadline=$((SECONDS + TIMEOUT * 2))
	pid=$(tr -dc 0-9 <"$dir/pid")
	# The start line of this run: KafkaRaftServer (KRaft), KafkaServer (zk), QuorumPeerMain.
	until tail -n +"$(grep -n '^=== ' "$dir/log" | tail -n 1 | cut -d: -f1)" "$dir/log" |
		grep -qE 'Kafka Server started|\] started \(kafka\.server\.KafkaServer\)' &&
		{ [ "$port" = - ] || port_open "$port"; }; do
		if ! kill -0 "$pid" 2>/dev/null; then
			printf 'stack: error: the Kafka node in %s exited during startup\n' "$dir" >&2
			show_log "$dir/log"
			exit 1
		fi
		if [ "$SECONDS" -ge "$deadline" ]; then
			printf 'stack: error: the Kafka node in %s did not start within %ss\n' "$dir" "$((TIMEOUT * 2))" >&2
			show_log "$dir/log"
			kill -KILL "$pid" 2>/dev/null || true
			exit 1
		fi
		sleep 0.3
	done
}

# kafka_node_start DIR PORT: starts an already configured (and formatted) node if it is not running.
kafka_node_start() {
	local dir=$1 port=$2 pid
	if pid=$(node_pid "$dir"); then
		return 0
	fi
	[ "$port" != - ] && refuse_foreign_port "kafka node $dir" "$port"
	kafka_launch "$dir" kafka.Kafka "$dir/server.properties"
}

kafka_node_stop() {
	local dir=$1 pid
	if pid=$(node_pid "$dir"); then
		# A paused node cannot act on SIGTERM.
		kill -CONT "$pid" 2>/dev/null || true
		stop_pid "kafka node $dir" "$pid"
	fi
	rm -f "$dir/pid"
}

# zk_start DIR PORT: a standalone ZooKeeper for brokers older than KRaft.
zk_start() {
	local dir=$1 port=$2
	mkdir -p "$dir/data"
	node_pid "$dir" >/dev/null && return 0
	refuse_foreign_port zookeeper "$port"
	cat >"$dir/zookeeper.properties" <<ZK
dataDir=$dir/data
clientPort=$port
clientPortAddress=$HOST
maxClientCnxns=0
admin.enableServer=false
4lw.commands.whitelist=ruok
ZK
	kafka_launch "$dir" org.apache.zookeeper.server.quorum.QuorumPeerMain "$dir/zookeeper.properties"
	wait_until zookeeper "$dir/log" port_open "$port"
}
