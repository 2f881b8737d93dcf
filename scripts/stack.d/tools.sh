# shellcheck shell=bash
# scripts/stack.d/tools.sh, sourced by scripts/stack: Apache Kafka's own tools on the release's
# jars (kafka_tool, kafka_tool_class; kafka.sh uses them too, for SCRAM users in ZooKeeper) and
# the commands built on them: consume, dump-log and topic.

# The broker's tools, with the jars of the running version.
kafka_tool() {
	local libs dir
	require_java
	libs=$(kafka_libs)
	dir=$(mktemp -d)
	local rc=0
	kafka_java "$libs" "$dir" "$@" || rc=$?
	rm -rf "$dir"
	return $rc
}

# kafka_tool_class NAME ARGS...: runs the tool NAME, which moved from kafka.tools or kafka.admin
# (Scala, in the broker's jar) to org.apache.kafka.tools (kafka-tools) over the 3.x releases.
kafka_tool_class() {
	local name=$1 libs class jar
	shift
	require_java
	libs=$(kafka_libs)
	for class in "org.apache.kafka.tools.$name" "org.apache.kafka.tools.consumer.$name" \
		"kafka.tools.$name" "kafka.admin.$name"; do
		for jar in "$libs"/kafka-tools-*.jar "$libs"/kafka_2.1[23]-*.jar; do
			[ -e "$jar" ] || continue
			# Entry names are stored uncompressed in a jar's directory: no unzip needed.
			if LC_ALL=C grep -qa "${class//.//}.class" "$jar"; then
				kafka_tool "$class" "$@"
				return
			fi
		done
	done
	die "no $name in Apache Kafka $KAFKA_VERSION's jars ($libs)"
}

# scripts/stack consume TOPIC [COUNT]: the first COUNT messages of TOPIC on the stack's broker as
# Apache Kafka's own console consumer reads them: partition, key and value.
cmd_consume() {
	local topic=${1:-} count=${2:-5}
	[ -n "$topic" ] || die "usage: scripts/stack consume TOPIC [COUNT]"
	port_open "$KAFKA_PORT" || die "kafka is not running; start it with: $SELF up"
	local prop=--property
	[ "$(kafka_major)" -ge 4 ] && prop=--formatter-property
	REPLIQATE_KAFKA_HEAP=256m kafka_tool_class ConsoleConsumer --bootstrap-server "$HOST:$KAFKA_PORT" \
		--topic "$topic" --from-beginning --max-messages "$count" --timeout-ms 30000 \
		"$prop" print.partition=true "$prop" print.key=true 2> >(grep -v KIP-848 >&2)
}

# scripts/stack dump-log [--batches] FILE...: kafka-dump-log --deep-iteration --print-data-log.
# With --batches: batch lines only (Kafka 2.1 prints none with --deep-iteration, only records).
cmd_dump_log() {
	local deep=(--deep-iteration --print-data-log) files
	if [ "${1:-}" = --batches ]; then
		deep=()
		shift
	fi
	[ $# -gt 0 ] || die "usage: scripts/stack dump-log [--batches] SEGMENT.log..."
	files=$(
		IFS=,
		echo "$*"
	)
	REPLIQATE_KAFKA_HEAP=256m kafka_tool_class DumpLogSegments "${deep[@]}" --files "$files"
}

# Creates a topic on the stack's broker with the broker's own kafka-topics.
cmd_topic() {
	local name=${1:-} partitions=${2:-3} out
	[ -n "$name" ] || die "usage: scripts/stack topic NAME [PARTITIONS]"
	case $partitions in
	'' | *[!0-9]* | 0) die "PARTITIONS must be a positive integer, got '$partitions'" ;;
	esac
	node_pid "$(svc_dir kafka)" >/dev/null || die "kafka is not running; start it with: $SELF up"
	if out=$(REPLIQATE_KAFKA_HEAP=256m kafka_tool_class TopicCommand \
		--bootstrap-server "$HOST:$KAFKA_PORT" --create --if-not-exists --topic "$name" \
		--partitions "$partitions" --replication-factor 1 2>&1); then
		log "topic $name: $partitions partitions (an existing topic is left as it is)"
	else
		printf '%s\n' "$out" >&2
		die "creating topic $name failed"
	fi
}
