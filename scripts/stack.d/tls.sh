# shellcheck shell=bash
# scripts/stack.d/tls.sh, sourced by scripts/stack: the stack's CA and certificates (ensure_tls),
# which every secured listener presents or asks its clients for.
#
# One CA per stack directory, a server certificate that every TLS service presents and a client
# certificate, made with openssl when a service first needs them, and made again when a file is
# missing, a certificate expires within a day or no longer chains to the CA. They are shaped for
# rustls/webpki, which is stricter than OpenSSL: v3 leaves that are not CAs, the server's
# addresses in a subjectAltName (webpki has no CN fallback, and SNI carries no IP address, so
# 127.0.0.1 needs an IP SAN), serverAuth/clientAuth extendedKeyUsage, unencrypted PKCS#8 PEM keys.
# RSA 2048: every server here reads it, and ring signs with RSA keys of 2048 bits and more.
#   ca.pem ca.key           the stack's CA (ca.key: for tests that sign certificates of their own)
#   server.pem server.key   CN=localhost, SAN IP:127.0.0.1 DNS:localhost, serverAuth
#   client.pem client.key   CN=repliqate, clientAuth (Kafka's SSL listener, MariaDB's X509 user,
#                           PostgreSQL's cert role through the pg_ident map 'stack')
#   kafka-keystore.pem      the server key, encrypted with TLS_KAFKA_KEY_PASSWORD, server.pem and
#                           ca.pem in one file (ssl.keystore.type=PEM). Kafka reads unencrypted
#                           PEM keys only from 3.x on (2.8: "SSL PEM key store is specified, but key
#                           password is not specified"); PBE-SHA1-3DES is what every JDK decrypts.
#   kafka-*.p12             PKCS#12 stores for releases before PEM keystores (made when needed)
TLS_DIR=$STACK_DIR/tls
TLS_CLIENT_CN=repliqate
TLS_KAFKA_KEY_PASSWORD=stack-keystore

# True if every file is there, the leaves chain to the CA and none expires within a day.
tls_valid() {
	local f
	for f in ca.pem ca.key server.pem server.key client.pem client.key kafka-keystore.pem; do
		[ -s "$TLS_DIR/$f" ] || return 1
	done
	openssl verify -CAfile "$TLS_DIR/ca.pem" "$TLS_DIR/server.pem" "$TLS_DIR/client.pem" \
		>/dev/null 2>&1 || return 1
	for f in ca server client; do
		openssl x509 -in "$TLS_DIR/$f.pem" -noout -checkend 86400 >/dev/null 2>&1 || return 1
	done
}

# tls_leaf NAME CN PROFILE: NAME.key and NAME.pem, signed by the CA with the extensions of PROFILE.
tls_leaf() {
	local name=$1 cn=$2 profile=$3 d=$TLS_DIR
	openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$d/$name.key" 2>/dev/null &&
		openssl req -new -config "$d/openssl.cnf" -key "$d/$name.key" -subj "/CN=$cn" \
			-out "$d/$name.csr" 2>/dev/null &&
		openssl x509 -req -in "$d/$name.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
			-set_serial "0x$(openssl rand -hex 16)" -days 825 -sha256 \
			-extfile "$d/openssl.cnf" -extensions "$profile" -out "$d/$name.pem" 2>/dev/null &&
		rm -f "$d/$name.csr"
}

# Makes the certificates unless valid ones are there. Called by each service that uses them.
ensure_tls() {
	tls_valid && return 0
	require_prog openssl -- openssl >/dev/null
	log "tls: new CA, server and client certificates in $TLS_DIR"
	rm -rf "$TLS_DIR"
	mkdir -p "$TLS_DIR"
	chmod 755 "$TLS_DIR"
	# Our own profile: the system's openssl.cnf would add extensions of its own choosing.
	cat >"$TLS_DIR/openssl.cnf" <<'CNF'
# Written by scripts/stack: the extensions of the stack's certificates.
[req]
distinguished_name = dn
prompt = no
[dn]
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
CNF
	(
		umask 077
		openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$TLS_DIR/ca.key" 2>/dev/null &&
			openssl req -x509 -new -config "$TLS_DIR/openssl.cnf" -extensions ca \
				-key "$TLS_DIR/ca.key" -subj "/CN=repliqate stack CA" -days 3650 -sha256 \
				-out "$TLS_DIR/ca.pem" 2>/dev/null &&
			tls_leaf server localhost server &&
			tls_leaf client "$TLS_CLIENT_CN" client &&
			openssl pkcs8 -topk8 -v1 PBE-SHA1-3DES -in "$TLS_DIR/server.key" \
				-passout "pass:$TLS_KAFKA_KEY_PASSWORD" -out "$TLS_DIR/kafka-key.pem" &&
			cat "$TLS_DIR/kafka-key.pem" "$TLS_DIR/server.pem" "$TLS_DIR/ca.pem" \
				>"$TLS_DIR/kafka-keystore.pem" &&
			rm -f "$TLS_DIR/kafka-key.pem"
	) || die "making the stack's certificates with openssl in $TLS_DIR failed; run again, or delete $TLS_DIR"
	# Certificates are public; keys stay with their owner (the servers run as this user, except
	# PostgreSQL, which gets a copy of its own).
	chmod 644 "$TLS_DIR"/*.pem "$TLS_DIR/openssl.cnf"
	chmod 600 "$TLS_DIR"/*.key "$TLS_DIR/kafka-keystore.pem"
	tls_valid || die "the certificates made in $TLS_DIR do not verify (openssl verify -CAfile $TLS_DIR/ca.pem $TLS_DIR/server.pem)"
	local svc
	for svc in postgres mariadb-secure redis; do
		if live_pid "$svc" >/dev/null; then
			log "tls: $svc still presents the old certificate: $SELF restart $svc"
		fi
	done
	if node_pid "$(svc_dir kafka)" >/dev/null; then
		log "tls: kafka still presents the old certificate: $SELF restart kafka"
	fi
}
