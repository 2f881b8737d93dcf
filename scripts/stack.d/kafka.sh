# shellcheck shell=bash
# scripts/stack.d/kafka.sh, sourced by scripts/stack: the service kafka, the stack's broker. One
# broker+controller node on KAFKA_PORT with its secured listeners (SASL_SSL, SSL, SASL_PLAINTEXT,
# re-authenticating, SCRAM-SHA-512 only) and their users; nodes themselves are kafka-nodes.sh's.

# The stack's broker -------------------------------------------------------------------------
# Beside PLAINTEXT it has secured listeners, as far as the release allows (kafka_secure_listeners):
#   SASL_SSL        59094  SASL over TLS: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER
#   SSL             59095  TLS, a client certificate signed by the stack's CA required
#   SASL_PLAINTEXT  59096  SASL without TLS, the same four mechanisms
#   SASL_REAUTH     59097  SASL_PLAINTEXT whose sessions last KAFKA_REAUTH_MS: a client must
#                          re-authenticate (KIP-368) or the broker closes its connection
#   SCRAM512_ONLY   59098  SASL_SSL offering SCRAM-SHA-512 alone (error 33 for any other)
#   SASL_SSL_REAUTH 59099  SASL_SSL with a client certificate required and sessions of
#                          KAFKA_REAUTH_MS
# Users: PLAIN $KAFKA_PLAIN_USER (the listeners' JAAS lines); SCRAM-SHA-256 and SCRAM-SHA-512
# $KAFKA_SCRAM_USER (in the storage: KRaft's metadata log, written at format time with
# --add-scram, or ZooKeeper, written with kafka-configs before the broker starts); OAUTHBEARER:
# any unsigned JWT, checked by the broker's default OAuthBearerUnsecuredValidatorCallbackHandler
# (kafka_security_props says what it requires).

# The SASL mechanisms the stack's broker offers on this release: PLAIN everywhere; SCRAM with
# ZooKeeper and in KRaft from 3.5 (KIP-900: SCRAM credentials in the metadata log); OAUTHBEARER
# from 2.0 (KIP-255).
kafka_has_scram() { [ "$(kafka_mode)" = zk ] || kafka_at_least 3 5; }
kafka_sasl_mechanisms() {
	local m=(PLAIN)
	if kafka_has_scram; then m+=(SCRAM-SHA-256 SCRAM-SHA-512); fi
	if kafka_at_least 2 0; then m+=(OAUTHBEARER); fi
	(
		IFS=,
		echo "${m[*]}"
	)
}

# One line per secured listener this release can have: NAME PROTOCOL PORT MECHANISMS ('-': none).
# Re-authentication needs KIP-368 (2.2).
kafka_secure_listeners() {
	local mechs
	mechs=$(kafka_sasl_mechanisms)
	echo "SASL_SSL SASL_SSL $KAFKA_SASL_SSL_PORT $mechs"
	echo "SSL SSL $KAFKA_SSL_PORT -"
	echo "SASL_PLAINTEXT SASL_PLAINTEXT $KAFKA_SASL_PLAINTEXT_PORT $mechs"
	if kafka_at_least 2 2; then
		echo "SASL_REAUTH SASL_PLAINTEXT $KAFKA_SASL_REAUTH_PORT $mechs"
	fi
	if kafka_has_scram; then
		echo "SCRAM512_ONLY SASL_SSL $KAFKA_SCRAM512_PORT SCRAM-SHA-512"
	fi
	if kafka_at_least 2 2; then
		echo "SASL_SSL_REAUTH SASL_SSL $KAFKA_SASL_SSL_REAUTH_PORT $mechs"
	fi
}

# Releases before PEM keystores (KIP-651, 2.7) read PKCS#12 stores: the keystore from openssl, the
# truststore from the JDK's keytool (a PKCS#12 file of certificates alone is empty to Java unless
# each is marked trusted, which OpenSSL 3.0 cannot do). Made once per set of certificates
# (ensure_tls deletes them with the rest).
kafka_pkcs12_stores() {
	local ks=$TLS_DIR/kafka-keystore.p12 ts=$TLS_DIR/kafka-truststore.p12 keytool
	[ -s "$ks" ] && [ -s "$ts" ] && return 0
	keytool=$(dirname "$(readlink -f "$JAVA")")/keytool
	[ -x "$keytool" ] || keytool=$(require_prog openjdk-17-jre-headless -- keytool)
	rm -f "$ks" "$ts"
	if ! openssl pkcs12 -export -in "$TLS_DIR/server.pem" -inkey "$TLS_DIR/server.key" \
		-certfile "$TLS_DIR/ca.pem" -name server -passout "pass:$TLS_KAFKA_KEY_PASSWORD" \
		-out "$ks" 2>/dev/null ||
		! "$keytool" -J-Xmx64m -importcert -noprompt -alias stack-ca -file "$TLS_DIR/ca.pem" \
			-keystore "$ts" -storetype PKCS12 -storepass "$TLS_KAFKA_KEY_PASSWORD" >/dev/null 2>&1; then
		rm -f "$ks" "$ts"
		die "making PKCS#12 stores for Apache Kafka $KAFKA_VERSION in $TLS_DIR failed (openssl pkcs12, $keytool)"
	fi
	chmod 600 "$ks"
	chmod 644 "$ts"
}

# Says which of the secured listeners (or mechanisms) this release goes without, and why.
kafka_log_limits() {
	local v="kafka: Apache Kafka $KAFKA_VERSION"
	kafka_at_least 2 7 ||
		log "$v has no PEM keystores (KIP-651, 2.7): its TLS listeners read PKCS#12 stores made from the same certificates"
	kafka_at_least 2 2 ||
		log "$v has no re-authentication (KIP-368, 2.2): no SASL_REAUTH listener ($KAFKA_SASL_REAUTH_PORT)"
	kafka_has_scram ||
		log "$v keeps no SCRAM credentials in KRaft (KIP-900, 3.5): SASL without SCRAM, no SCRAM512_ONLY listener"
	kafka_at_least 2 0 ||
		log "$v has no OAUTHBEARER (KIP-255, 2.0)"
	return 0
}

# The secured listeners' settings, one KEY=VALUE a line.
#  - Every SASL listener names its mechanisms (listener.name.L.sasl.enabled.mechanisms) and has a
#    JAAS line per mechanism (listener.name.L.MECHANISM.sasl.jaas.config). Checked on 4.4: an
#    enabled mechanism without its JAAS line stops the broker at start ("Could not find a
#    'KafkaServer' or 'l.KafkaServer' entry in the JAAS configuration"), and so does the default
#    sasl.enabled.mechanisms=GSSAPI where a listener does not name its own; the listener-level
#    lines alone suffice. The global one is set as well, to the listeners' common set. Brokers
#    and the controller talk PLAINTEXT, so sasl.mechanism.inter.broker.protocol and
#    sasl.mechanism.controller.protocol (default GSSAPI) are never used and are not set.
#  - PLAIN: the default server callback checks user_NAME="PASSWORD" options of the JAAS line.
#  - SCRAM: the broker's login module needs no options; credentials come from the storage.
#  - OAUTHBEARER: with no listener.name.L.oauthbearer.sasl.server.callback.handler.class the
#    broker validates with OAuthBearerUnsecuredValidatorCallbackHandler (still the default in
#    4.4, no system property needed: org.apache.kafka.sasl.oauthbearer.allowed.urls (default
#    empty from 4.0) and .allowed.files (4.1) only restrict the secured handler's JWKS and token
#    endpoints). It accepts a JWS compact serialization "BASE64URL(header).BASE64URL(claims)."
#    whose header has "alg":"none" and whose signature is empty; claims: "sub" a non-blank
#    string (the principal: unsecuredValidatorPrincipalClaimName), "exp" a number of seconds
#    after now (no clock skew allowed: unsecuredValidatorAllowableClockSkewMs=0), "iat"
#    optional but, if there, not in the future and before exp; "scope" is checked only against
#    unsecuredValidatorRequiredScope, not set here. The broker's own login (no
#    unsecuredLoginStringClaim_sub) makes no token: it only accepts.
#  - TLS: a PEM keystore with the key (encrypted: ensure_tls says why) and chain; the SSL
#    listener requires a client certificate and trusts the stack's CA alone.
#  - SASL_REAUTH: listener.name.sasl_reauth.connections.max.reauth.ms, for that listener only.
kafka_security_props() {
	local name proto port mechs l m
	echo "sasl.enabled.mechanisms=$(kafka_sasl_mechanisms)"
	while read -r name proto port mechs; do
		l=listener.name.${name,,}
		if { [ "$proto" = SSL ] || [ "$proto" = SASL_SSL ]; } && kafka_at_least 2 7; then
			echo "$l.ssl.keystore.type=PEM"
			echo "$l.ssl.keystore.location=$TLS_DIR/kafka-keystore.pem"
			echo "$l.ssl.key.password=$TLS_KAFKA_KEY_PASSWORD"
		elif [ "$proto" = SSL ] || [ "$proto" = SASL_SSL ]; then
			echo "$l.ssl.keystore.type=PKCS12"
			echo "$l.ssl.keystore.location=$TLS_DIR/kafka-keystore.p12"
			echo "$l.ssl.keystore.password=$TLS_KAFKA_KEY_PASSWORD"
			echo "$l.ssl.key.password=$TLS_KAFKA_KEY_PASSWORD"
		fi
		local client_auth=no
		{ [ "$proto" = SSL ] || [ "$name" = SASL_SSL_REAUTH ]; } && client_auth=yes
		if [ "$client_auth" = yes ] && kafka_at_least 2 7; then
			echo "$l.ssl.truststore.type=PEM"
			echo "$l.ssl.truststore.location=$TLS_DIR/ca.pem"
		elif [ "$client_auth" = yes ]; then
			echo "$l.ssl.truststore.type=PKCS12"
			echo "$l.ssl.truststore.location=$TLS_DIR/kafka-truststore.p12"
			echo "$l.ssl.truststore.password=$TLS_KAFKA_KEY_PASSWORD"
		fi
		if [ "$client_auth" = yes ]; then
			echo "$l.ssl.client.auth=required"
		fi
		[ "$mechs" = - ] && continue
		echo "$l.sasl.enabled.mechanisms=$mechs"
		for m in ${mechs//,/ }; do
			case $m in
			PLAIN)
				echo "$l.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$KAFKA_PLAIN_USER=\"$KAFKA_PLAIN_PASSWORD\";"
				;;
			SCRAM-*)
				echo "$l.${m,,}.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;"
				;;
			OAUTHBEARER)
				echo "$l.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;"
				;;
			esac
		done
		if [ "$name" = SASL_REAUTH ] || [ "$name" = SASL_SSL_REAUTH ]; then
			echo "$l.connections.max.reauth.ms=$KAFKA_REAUTH_MS"
		fi
	done < <(kafka_secure_listeners)
}

# What the storage must hold for this script's listeners: written to DIR/security when it does.
# Storage without it (made by a scripts/stack from before the secured listeners, or with other
# SCRAM users) is made afresh, as for another release: SCRAM users can only be added at format
# time in KRaft without the admin API and a running broker, and a reformat keeps one code path.
kafka_storage_security() {
	if kafka_has_scram; then
		echo "scram-sha-256,scram-sha-512 $KAFKA_SCRAM_USER $KAFKA_SCRAM_PASSWORD"
	else
		echo none
	fi
}

# True if the running broker in DIR has what this script gives it: the storage's users and every
# secured listener. A broker from an older scripts/stack does not, and is restarted.
kafka_secure_current() {
	local dir=$1 name proto port mechs
	[ "$(cat "$dir/security" 2>/dev/null)" = "$(kafka_storage_security)" ] || return 1
	while read -r name proto port mechs; do
		port_open "$port" || return 1
		# The same listener on that port (the running broker's config is the one it was started
		# with: start_kafka rewrites it only before a start).
		grep -q "^listeners=.*$name://$HOST:$port" "$dir/server.properties" 2>/dev/null || return 1
	done < <(kafka_secure_listeners)
}

# ZooKeeper mode: the SCRAM users go into ZooKeeper, before the broker starts.
kafka_zk_add_scram() {
	local dir=$1 out
	log "kafka: SCRAM-SHA-256/512 user $KAFKA_SCRAM_USER into ZooKeeper"
	if ! out=$(REPLIQATE_KAFKA_HEAP=256m kafka_tool_class ConfigCommand \
		--zookeeper "$HOST:$KAFKA_CONTROLLER_PORT" --alter --entity-type users \
		--entity-name "$KAFKA_SCRAM_USER" \
		--add-config "SCRAM-SHA-256=[password=$KAFKA_SCRAM_PASSWORD],SCRAM-SHA-512=[password=$KAFKA_SCRAM_PASSWORD]" \
		2>&1 9>&-); then
		printf '%s\n' "$out" >&2
		die "kafka: adding the SCRAM user $KAFKA_SCRAM_USER to ZooKeeper failed; try: $SELF restart kafka"
	fi
}

start_kafka() {
	local dir pid
	dir=$(svc_dir kafka)
	if pid=$(node_pid "$dir"); then
		if kafka_secure_current "$dir"; then
			log "kafka already running (pid $pid)"
			return 0
		fi
		log "kafka: running (pid $pid) without this script's secured listeners or SCRAM users; restarting it"
		stop_kafka
	fi
	require_java
	kafka_libs >/dev/null
	ensure_tls
	# Another release's storage is not this one's to read: start afresh.
	if [ -s "$dir/version" ] && [ "$(cat "$dir/version")" != "$KAFKA_VERSION" ]; then
		log "kafka: the stack's broker ran $(cat "$dir/version") before; new storage for $KAFKA_VERSION"
		kafka_node_stop "$dir/zookeeper"
		rm -rf "$dir"
	fi
	# Storage without the SCRAM users (kafka_storage_security): start afresh too.
	if [ -d "$dir/data" ] && [ "$(cat "$dir/security" 2>/dev/null)" != "$(kafka_storage_security)" ]; then
		log "kafka: its storage predates the SCRAM users of this script; new storage"
		kafka_node_stop "$dir/zookeeper"
		rm -rf "$dir"
	fi
	mkdir -p "$dir"
	# The release owns the storage from now on, even if this start fails: a failed start must not
	# leave storage that the next release takes for its own.
	printf '%s\n' "$KAFKA_VERSION" >"$dir/version"
	local voters=1@$HOST:$KAFKA_CONTROLLER_PORT
	if [ "$(kafka_mode)" = zk ]; then
		zk_start "$dir/zookeeper" "$KAFKA_CONTROLLER_PORT"
		voters=$HOST:$KAFKA_CONTROLLER_PORT
	fi
	kafka_log_limits
	kafka_at_least 2 7 || kafka_pkcs12_stores
	local props secure=() shown=() name proto port mechs scram=()
	while read -r name proto port mechs; do
		secure+=("$name:$proto:$port")
		shown+=("$name:$port")
	done < <(kafka_secure_listeners)
	# Read line by line: JAAS values hold spaces.
	mapfile -t props < <(single_node_props && kafka_security_props)
	# Seen by kafka_write_config (dynamic scope), by no other node.
	# shellcheck disable=SC2034 # read in kafka-nodes.sh
	local KAFKA_EXTRA_LISTENERS=("${secure[@]}")
	kafka_write_config "$dir" 1 broker,controller \
		"$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT" "$voters" "$HOST:$KAFKA_PORT" "${props[@]}"
	if [ "$(kafka_mode)" = kraft ] && kafka_has_scram; then
		scram=(--add-scram "SCRAM-SHA-256=[name=$KAFKA_SCRAM_USER,password=$KAFKA_SCRAM_PASSWORD]"
			--add-scram "SCRAM-SHA-512=[name=$KAFKA_SCRAM_USER,password=$KAFKA_SCRAM_PASSWORD]")
	fi
	kafka_format "$dir" "$(kafka_cluster_id "$dir/cluster-id")" "${scram[@]}"
	if [ "$(kafka_mode)" = zk ] && [ "$(cat "$dir/security" 2>/dev/null)" != "$(kafka_storage_security)" ]; then
		kafka_zk_add_scram "$dir"
	fi
	kafka_storage_security >"$dir/security"
	log "kafka: starting Apache Kafka $KAFKA_VERSION ($(kafka_mode)) on $HOST:$KAFKA_PORT, secured: ${shown[*]}"
	kafka_node_start "$dir" "$KAFKA_PORT"
	kafka_wait "$dir" "$KAFKA_PORT"
	for port in "${secure[@]}"; do
		wait_until kafka "$dir/log" port_open "${port##*:}"
	done
	printf '%s\n' "$KAFKA_VERSION" >"$dir/version"
	log "kafka ready (pid $(node_pid "$dir"))"
}

stop_kafka() {
	local dir
	dir=$(svc_dir kafka)
	if node_pid "$dir" >/dev/null; then
		log "kafka: stopping (pid $(node_pid "$dir"))"
	fi
	kafka_node_stop "$dir"
	kafka_node_stop "$dir/zookeeper"
}
