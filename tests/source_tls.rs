//! The sources over TLS, against the stack's servers: PostgreSQL with ssl=on (a role that may
//! log in only over TLS, one that logs in with its client certificate), MariaDB that requires
//! TLS (a user that also needs a client certificate), and the plaintext MariaDB.
//!
//! Every mode replicates (connect and fetch; one end-to-end run of the binary per database), and
//! the server's own view says whether TLS is in use (`pg_stat_ssl`; for MariaDB the server that
//! refuses plaintext). Refused at connect, not retriable, naming the host and the reason: a CA
//! we do not trust, a name that does not fit (through a forwarder on 127.0.0.2, an address the
//! certificate does not name), an expired certificate (a server of the test's own), a server
//! without TLS when TLS is required (no downgrade), a missing client certificate. The password
//! from `password_file` is read at each connection. No secret reaches stderr at -vvv.
#![cfg(all(feature = "postgres", feature = "mysql"))]

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use mysql::prelude::Queryable as _;
use repliqate::source::{Source, SourceError};
use repliqate::value::{Row, Value};

use common::daemon::{assert_exit, assert_refused_at_start_up, run, wait_for_position};
use common::db::{Db, TableGuard};
use common::env::{kafka_broker, stack_var, unique, TempDir};
use common::job::JobConfig;
use common::kafka::{create_topic, ids_in_topic};
use common::secure::{stack_tls, tls_server_after, TestCa};
use common::source::{connect, connect_err, s, spec};

const DB_PASSWORD: &str = "repliqate-secret";
const PG_TLS_PASSWORD: &str = "tls-secret";

/// `uri` with `params` as its query.
fn with(uri: &str, params: &[(&str, &str)]) -> String {
    let query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    if query.is_empty() {
        uri.to_string()
    } else {
        format!("{uri}?{}", query.join("&"))
    }
}

fn ca() -> String {
    stack_tls("ca.pem")
}

/// `uri` with its host:port replaced by `addr`.
fn via(uri: &str, host_port: &str, addr: &str) -> String {
    assert!(uri.contains(host_port), "{uri} has no {host_port}");
    uri.replace(host_port, addr)
}

/// The three rows every table here holds.
fn expected_rows() -> Vec<Row> {
    (1..=3)
        .map(|i| Row {
            id: i,
            values: vec![Value::Int(i as i64), s(&format!("row {i}"))],
        })
        .collect()
}

/// Connects to `uri` and reads `table`; panics with the error if either fails.
fn replicates(uri: &str, table: &str) -> Source {
    let mut src = connect(&spec(uri, table, "id", None));
    assert_eq!(src.fetch(0, 10).expect("fetch"), expected_rows(), "{uri}");
    src
}

/// Expects connecting to fail, not retriably, with a message naming `host` and holding
/// `reason`.
fn refused(uri: &str, table: &str, host: &str, reason: &str) -> SourceError {
    let e = connect_err(&spec(uri, table, "id", None));
    let msg = e.to_string();
    assert!(!e.is_retriable(), "{msg}: should not be retriable");
    assert!(
        msg.contains(host) && msg.contains(reason),
        "the error should name {host} and say {reason:?}: {msg}"
    );
    assert!(!msg.contains('\n'), "one line: {msg}");
    for secret in [DB_PASSWORD, PG_TLS_PASSWORD] {
        assert!(!msg.contains(secret), "a password in the error: {msg}");
    }
    e
}

/// A loopback listener on `ip` that forwards every connection to `to`. With `refuse_tls`, it
/// answers PostgreSQL's SSLRequest with 'N' itself (a server without TLS) before forwarding.
fn forwarder(ip: &str, to: &str, refuse_tls: bool) -> String {
    let listener = TcpListener::bind(format!("{ip}:0")).expect("binding a forwarder");
    let addr = listener.local_addr().unwrap().to_string();
    let to = to.to_string();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { return };
            let to = to.clone();
            std::thread::spawn(move || {
                let Ok(mut server) = TcpStream::connect(&to) else {
                    return;
                };
                if refuse_tls {
                    let mut first = [0u8; 8];
                    if client.read_exact(&mut first).is_err() {
                        return;
                    }
                    // Length 8, code 80877103: SSLRequest, refused. Anything else (a startup
                    // message in plaintext) goes to the server.
                    let answered = if first == [0, 0, 0, 8, 4, 210, 22, 47] {
                        client.write_all(b"N")
                    } else {
                        server.write_all(&first)
                    };
                    if answered.is_err() {
                        return;
                    }
                }
                let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let up = std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c2, &mut s2);
                    let _ = s2.shutdown(std::net::Shutdown::Write);
                });
                let (mut server, mut client) = (server, client);
                let _ = std::io::copy(&mut server, &mut client);
                let _ = client.shutdown(std::net::Shutdown::Write);
                let _ = up.join();
            });
        }
    });
    addr
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

const PG_HOST: &str = "127.0.0.1:55432";

fn pg_tls_uri() -> String {
    stack_var("REPLIQATE_TEST_PG_TLS_URI")
}

fn pg_cert_uri() -> String {
    stack_var("REPLIQATE_TEST_PG_CERT_URI")
}

/// A PostgreSQL table of three rows that every role of the stack can read.
fn pg_table() -> (String, TableGuard) {
    let table = unique("tls");
    let guard = TableGuard::new(&Db::Postgres, &table);
    Db::Postgres.create_filled(&table, 3);
    (table, guard)
}

/// A superuser session over the stack's unix socket (`local all all trust`), which sees every
/// role's sessions and may end them.
fn pg_superuser() -> postgres::Client {
    let socket = std::path::Path::new(&stack_var("REPLIQATE_STACK_DIR")).join("postgres");
    postgres::Config::new()
        .host_path(&socket)
        .port(55432)
        .user("postgres")
        .dbname("repliqate")
        .connect(postgres::NoTls)
        .unwrap_or_else(|e| panic!("connecting as postgres through {}: {e}", socket.display()))
}

/// Whether the session whose application_name is `app` uses TLS, as the server sees it
/// (`pg_stat_ssl`); panics if there is no such session.
fn pg_session_ssl(app: &str) -> bool {
    let rows = pg_superuser()
        .query(
            "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
             WHERE a.application_name = $1",
            &[&app],
        )
        .expect("reading pg_stat_ssl");
    assert_eq!(rows.len(), 1, "one session named {app}");
    rows[0].get(0)
}

#[test]
fn pg_every_sslmode_replicates_and_uses_tls_as_it_says() {
    let (table, _guard) = pg_table();
    let ca = ca();
    // (parameters, TLS in use) for the role that may log in either way.
    let cases: [(&[(&str, &str)], bool); 8] = [
        (&[], true), // prefer, the default: the server offers TLS
        (&[("sslmode", "disable")], false),
        (&[("sslmode", "allow")], false),
        (&[("sslmode", "prefer")], true),
        (&[("sslmode", "require")], true),
        (&[("sslmode", "require"), ("sslrootcert", &ca)], true),
        (&[("sslmode", "verify-ca"), ("sslrootcert", &ca)], true),
        (&[("sslmode", "verify-full"), ("sslrootcert", &ca)], true),
    ];
    for (params, tls) in cases {
        let app = unique("rq");
        let mut all = params.to_vec();
        all.push(("application_name", &app));
        let uri = with(&Db::Postgres.uri(), &all);
        let _src = replicates(&uri, &table);
        assert_eq!(pg_session_ssl(&app), tls, "TLS in use with {params:?}");
    }
}

#[test]
fn pg_tls_only_role_logs_in_over_tls_and_allow_falls_forward_to_it() {
    let (table, _guard) = pg_table();
    let ca = ca();
    for params in [
        &[("sslmode", "verify-full"), ("sslrootcert", ca.as_str())][..],
        &[("sslmode", "require")],
        &[],
        // allow: plaintext first, which pg_hba refuses this role, then TLS.
        &[("sslmode", "allow")],
    ] {
        let app = unique("rq");
        let mut all = params.to_vec();
        all.push(("application_name", &app));
        let _src = replicates(&with(&pg_tls_uri(), &all), &table);
        assert!(pg_session_ssl(&app), "TLS in use with {params:?}");
    }
    refused(
        &with(&pg_tls_uri(), &[("sslmode", "disable")]),
        &table,
        PG_HOST,
        "authentication failed for user repliqate_tls",
    );
}

#[test]
fn pg_client_certificate_logs_in() {
    let (table, _guard) = pg_table();
    let (ca, cert, key) = (ca(), stack_tls("client.pem"), stack_tls("client.key"));
    let app = unique("rq");
    let uri = with(
        &pg_cert_uri(),
        &[
            ("sslmode", "verify-full"),
            ("sslrootcert", &ca),
            ("sslcert", &cert),
            ("sslkey", &key),
            ("application_name", &app),
        ],
    );
    let _src = replicates(&uri, &table);
    assert!(pg_session_ssl(&app));

    // Without one: the server says the role needs a certificate.
    let uri = with(
        &pg_cert_uri(),
        &[("sslmode", "verify-full"), ("sslrootcert", &ca)],
    );
    refused(&uri, &table, PG_HOST, "certificate");

    // One no server trusts: the handshake fails (the server's alert, or its refusal).
    let dir = TempDir::new("pg_rogue_client");
    let rogue = TestCa::new("rogue client CA").client("repliqate");
    let (cert, key) = (
        dir.write("client.pem", &rogue.cert),
        dir.write("client.key", &rogue.key),
    );
    let uri = with(
        &pg_cert_uri(),
        &[
            ("sslmode", "verify-full"),
            ("sslrootcert", &ca),
            ("sslcert", cert.to_str().unwrap()),
            ("sslkey", key.to_str().unwrap()),
        ],
    );
    refused(&uri, &table, PG_HOST, "client certificate");
}

#[test]
fn pg_certificates_we_do_not_trust_are_refused_naming_the_host() {
    let (table, _guard) = pg_table();
    let dir = TempDir::new("pg_trust");
    let rogue = TestCa::new("rogue CA");
    let rogue_ca = dir.write("rogue-ca.pem", &rogue.pem);
    let rogue_ca = rogue_ca.to_str().unwrap();
    for mode in ["verify-full", "verify-ca", "require", "prefer"] {
        // libpq: a root certificate given is used in every mode that encrypts.
        let uri = with(
            &Db::Postgres.uri(),
            &[("sslmode", mode), ("sslrootcert", rogue_ca)],
        );
        refused(&uri, &table, PG_HOST, "not signed by a trusted CA");
    }

    // A name the certificate does not hold: 127.0.0.2, forwarded to the server.
    let other = forwarder("127.0.0.2", PG_HOST, false);
    let ca = ca();
    let uri = via(
        &with(
            &Db::Postgres.uri(),
            &[("sslmode", "verify-full"), ("sslrootcert", &ca)],
        ),
        PG_HOST,
        &other,
    );
    refused(&uri, &table, &other, "not 127.0.0.2");
    // verify-ca checks the chain only.
    let uri = via(
        &with(
            &Db::Postgres.uri(),
            &[("sslmode", "verify-ca"), ("sslrootcert", &ca)],
        ),
        PG_HOST,
        &other,
    );
    replicates(&uri, &table);

    // An expired certificate, from a server of the test's own that accepts the SSLRequest.
    let expired = tls_server_after(&rogue.server(&["127.0.0.1"], true), |stream| {
        let mut request = [0u8; 8];
        if stream.read_exact(&mut request).is_ok() {
            let _ = stream.write_all(b"S");
        }
    });
    let uri = via(
        &with(
            &Db::Postgres.uri(),
            &[("sslmode", "verify-full"), ("sslrootcert", rogue_ca)],
        ),
        PG_HOST,
        &expired,
    );
    refused(&uri, &table, &expired, "expired");

    // A CA file that is not there names the parameter and the file.
    let uri = with(
        &Db::Postgres.uri(),
        &[
            ("sslmode", "verify-full"),
            ("sslrootcert", "/nonexistent/ca.pem"),
        ],
    );
    refused(&uri, &table, PG_HOST, "sslrootcert /nonexistent/ca.pem");
}

#[test]
fn pg_require_against_a_plaintext_server_fails_and_prefer_connects_in_plaintext() {
    let (table, _guard) = pg_table();
    // A server without TLS: the forwarder answers the SSLRequest with 'N'.
    let plaintext = forwarder("127.0.0.1", PG_HOST, true);
    let ca = ca();
    for params in [
        &[("sslmode", "require")][..],
        &[("sslmode", "verify-full"), ("sslrootcert", ca.as_str())],
    ] {
        let uri = via(&with(&Db::Postgres.uri(), params), PG_HOST, &plaintext);
        refused(&uri, &table, &plaintext, "the server does not offer TLS");
    }
    for mode in ["prefer", "allow"] {
        let app = unique("rq");
        let uri = via(
            &with(
                &Db::Postgres.uri(),
                &[("sslmode", mode), ("application_name", &app)],
            ),
            PG_HOST,
            &plaintext,
        );
        let _src = replicates(&uri, &table);
        assert!(!pg_session_ssl(&app), "{mode}: plaintext");
    }
}

#[test]
fn pg_password_file_is_read_at_each_connection() {
    let (table, _guard) = pg_table();
    let dir = TempDir::new("pg_pw");
    let file = dir.write("password", &format!("{PG_TLS_PASSWORD}\n"));
    let app = unique("rq");
    let uri = with(
        &pg_tls_uri().replace(&format!(":{PG_TLS_PASSWORD}@"), "@"),
        &[
            ("sslmode", "verify-full"),
            ("sslrootcert", &ca()),
            ("application_name", &app),
        ],
    );
    let mut spec = spec(&uri, &table, "id", None);
    spec.password = Some(repliqate::secret::Secret::File(file.clone()));
    let mut src = connect(&spec);
    assert_eq!(src.fetch(0, 10).unwrap(), expected_rows());

    // Rotated to a wrong one, then the session ends: the next connection reads the file.
    dir.write("password", "not-the-password\n");
    let kill = |app: &str| {
        pg_superuser()
            .execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE application_name = $1",
                &[&app],
            )
            .unwrap();
    };
    kill(&app);
    let first = src.fetch(0, 10).expect_err("the session was ended");
    assert!(first.is_retriable(), "{first}");
    let e = src.fetch(0, 10).expect_err("a wrong password now");
    assert!(
        e.to_string()
            .contains("authentication failed for user repliqate_tls")
            && !e.is_retriable(),
        "{e}"
    );
    assert!(!e.to_string().contains("not-the-password"), "{e}");
    dir.write("password", PG_TLS_PASSWORD);
    assert_eq!(src.fetch(0, 10).unwrap(), expected_rows());

    // A password in the uri as well is refused; a missing file names the setting.
    let mut both = spec.clone();
    both.uri = pg_tls_uri();
    let e = connect_err(&both).to_string();
    assert!(e.contains("give it in one place"), "{e}");
    let mut missing = spec.clone();
    missing.password = Some(repliqate::secret::Secret::File(dir.path().join("nope")));
    let e = connect_err(&missing).to_string();
    assert!(e.contains("sql_source.password_file: cannot read"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// MySQL / MariaDB

const MY_SECURE_HOST: &str = "127.0.0.1:53307";
const MY_PLAIN_HOST: &str = "127.0.0.1:53306";

fn my_secure_uri() -> String {
    stack_var("REPLIQATE_TEST_MYSQL_SECURE_URI")
}

fn my_x509_uri() -> String {
    stack_var("REPLIQATE_TEST_MYSQL_X509_URI")
}

/// A session with the TLS-only MariaDB, as its admin user, over TLS checked against the stack's
/// CA.
fn my_secure_conn() -> mysql::Conn {
    let opts = mysql::Opts::from_url(&my_secure_uri()).expect("REPLIQATE_TEST_MYSQL_SECURE_URI");
    let ssl = mysql::SslOpts::default().with_root_cert_path(Some(std::path::PathBuf::from(ca())));
    mysql::Conn::new(mysql::OptsBuilder::from_opts(opts).ssl_opts(Some(ssl)))
        .unwrap_or_else(|e| panic!("connecting to the stack's mariadb-secure: {e}"))
}

/// Drops a table of the TLS-only MariaDB when dropped.
struct SecureTable(String);

impl Drop for SecureTable {
    fn drop(&mut self) {
        let _ = my_secure_conn().query_drop(format!("DROP TABLE IF EXISTS {}", self.0));
    }
}

/// A table of three rows on the TLS-only MariaDB.
fn my_secure_table() -> (String, SecureTable) {
    let table = unique("tls");
    let mut conn = my_secure_conn();
    conn.query_drop(format!(
        "CREATE TABLE {table} (id BIGINT PRIMARY KEY, v VARCHAR(20) NOT NULL); \
         INSERT INTO {table} VALUES (1, 'row 1'), (2, 'row 2'), (3, 'row 3')"
    ))
    .expect("creating a table on mariadb-secure");
    (table.clone(), SecureTable(table))
}

/// A table of three rows on the plaintext MariaDB.
fn my_plain_table() -> (String, TableGuard) {
    let table = unique("tls");
    let guard = TableGuard::new(&Db::MariaDb, &table);
    Db::MariaDb.create_filled(&table, 3);
    (table, guard)
}

#[test]
fn mysql_every_ssl_mode_replicates_from_a_server_that_requires_tls() {
    let (table, _guard) = my_secure_table();
    let ca = ca();
    // The server refuses plaintext (require_secure_transport), so each of these is TLS.
    for params in [
        &[][..],
        &[("ssl-mode", "PREFERRED")],
        &[("ssl-mode", "REQUIRED")],
        &[("ssl-mode", "VERIFY_CA"), ("ssl-ca", ca.as_str())],
        &[("ssl-mode", "verify_identity"), ("ssl-ca", ca.as_str())],
        // SQLAlchemy's spellings (PyMySQL, mysqlclient).
        &[("ssl_ca", ca.as_str())],
        &[("ssl_ca", ca.as_str()), ("ssl_check_hostname", "false")],
        &[("ssl_mode", "REQUIRED")],
    ] {
        replicates(&with(&my_secure_uri(), params), &table);
    }
    // And plaintext is refused by the server, not retriably (MariaDB says "access denied").
    refused(
        &with(&my_secure_uri(), &[("ssl-mode", "DISABLED")]),
        &table,
        MY_SECURE_HOST,
        "the connection was plaintext, ssl-mode=DISABLED: a server that requires TLS refuses",
    );
}

#[test]
fn mysql_client_certificate_logs_in() {
    let (table, _guard) = my_secure_table();
    let (ca, cert, key) = (ca(), stack_tls("client.pem"), stack_tls("client.key"));
    for (c, k) in [("ssl-cert", "ssl-key"), ("ssl_cert", "ssl_key")] {
        let uri = with(
            &my_x509_uri(),
            &[
                ("ssl-mode", "VERIFY_IDENTITY"),
                ("ssl-ca", &ca),
                (c, &cert),
                (k, &key),
            ],
        );
        replicates(&uri, &table);
    }
    // REQUIRE X509 without a certificate: access denied.
    let uri = with(
        &my_x509_uri(),
        &[("ssl-mode", "VERIFY_IDENTITY"), ("ssl-ca", &ca)],
    );
    refused(
        &uri,
        &table,
        MY_SECURE_HOST,
        "authentication failed for user repliqate_x509",
    );
}

#[test]
fn mysql_certificates_we_do_not_trust_are_refused_naming_the_host() {
    let (table, _guard) = my_secure_table();
    let dir = TempDir::new("my_trust");
    let rogue = TestCa::new("rogue CA");
    let rogue_ca = dir.write("rogue-ca.pem", &rogue.pem);
    let rogue_ca = rogue_ca.to_str().unwrap();
    for mode in ["VERIFY_IDENTITY", "VERIFY_CA"] {
        let uri = with(
            &my_secure_uri(),
            &[("ssl-mode", mode), ("ssl-ca", rogue_ca)],
        );
        refused(&uri, &table, MY_SECURE_HOST, "not signed by a trusted CA");
    }
    // Without a CA the driver's built-in (Mozilla) roots decide, which lack the stack's CA.
    let uri = with(&my_secure_uri(), &[("ssl-mode", "VERIFY_IDENTITY")]);
    refused(&uri, &table, MY_SECURE_HOST, "not signed by a trusted CA");

    // A name the certificate does not hold.
    let other = forwarder("127.0.0.2", MY_SECURE_HOST, false);
    let ca = ca();
    let uri = via(
        &with(
            &my_secure_uri(),
            &[("ssl-mode", "VERIFY_IDENTITY"), ("ssl-ca", &ca)],
        ),
        MY_SECURE_HOST,
        &other,
    );
    refused(&uri, &table, &other, "not 127.0.0.2");
    // VERIFY_CA checks the chain only (mysql 26 checked the name anyway).
    let uri = via(
        &with(
            &my_secure_uri(),
            &[("ssl-mode", "VERIFY_CA"), ("ssl-ca", &ca)],
        ),
        MY_SECURE_HOST,
        &other,
    );
    replicates(&uri, &table);

    // An expired certificate, from a server of the test's own that greets like MariaDB.
    let expired = tls_server_after(&rogue.server(&["127.0.0.1"], true), mysql_greeting);
    let uri = via(
        &with(
            &my_secure_uri(),
            &[("ssl-mode", "VERIFY_IDENTITY"), ("ssl-ca", rogue_ca)],
        ),
        MY_SECURE_HOST,
        &expired,
    );
    refused(&uri, &table, &expired, "expired");

    let uri = with(
        &my_secure_uri(),
        &[("ssl-mode", "VERIFY_CA"), ("ssl-ca", "/nonexistent/ca.pem")],
    );
    refused(&uri, &table, MY_SECURE_HOST, "ssl-ca /nonexistent/ca.pem");
}

/// The server's greeting of the MySQL protocol (HandshakeV10, offering TLS), then the client's
/// SSL request read: what comes before the TLS handshake.
fn mysql_greeting(stream: &mut TcpStream) {
    // CLIENT_PROTOCOL_41 | CLIENT_SSL | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH
    let caps: u32 = 0x0200 | 0x0800 | 0x8000 | 0x0008_0000;
    let mut payload = vec![10u8];
    payload.extend_from_slice(b"5.5.5-10.11.0-MariaDB-test\0");
    payload.extend_from_slice(&1u32.to_le_bytes());
    payload.extend_from_slice(b"abcdefgh\0");
    payload.extend_from_slice(&(caps as u16).to_le_bytes());
    payload.push(45); // utf8mb4_general_ci
    payload.extend_from_slice(&2u16.to_le_bytes()); // SERVER_STATUS_AUTOCOMMIT
    payload.extend_from_slice(&((caps >> 16) as u16).to_le_bytes());
    payload.push(21);
    payload.extend_from_slice(&[0u8; 10]);
    payload.extend_from_slice(b"ijklmnopqrst\0");
    payload.extend_from_slice(b"mysql_native_password\0");
    let mut packet = (payload.len() as u32).to_le_bytes()[..3].to_vec();
    packet.push(0);
    packet.extend_from_slice(&payload);
    if stream.write_all(&packet).is_err() {
        return;
    }
    // The SSL request: a 4-byte header and 32 bytes.
    let mut request = [0u8; 36];
    let _ = stream.read_exact(&mut request);
}

#[test]
fn mysql_required_against_a_plaintext_server_fails_and_preferred_connects_in_plaintext() {
    let (table, _guard) = my_plain_table();
    let ca = ca();
    for params in [
        &[("ssl-mode", "REQUIRED")][..],
        &[("ssl-mode", "VERIFY_IDENTITY"), ("ssl-ca", ca.as_str())],
        &[("ssl_ca", ca.as_str())],
    ] {
        refused(
            &with(&Db::MariaDb.uri(), params),
            &table,
            MY_PLAIN_HOST,
            "the server does not offer TLS",
        );
    }
    // The stack's plaintext MariaDB has no TLS at all: PREFERRED (the default) connects in
    // plaintext, DISABLED too.
    for params in [
        &[][..],
        &[("ssl-mode", "PREFERRED")],
        &[("ssl-mode", "DISABLED")],
    ] {
        replicates(&with(&Db::MariaDb.uri(), params), &table);
    }
}

#[test]
fn mysql_password_file_is_read_at_each_connection() {
    let (table, _guard) = my_secure_table();
    let dir = TempDir::new("my_pw");
    let file = dir.write("password", &format!("{DB_PASSWORD}\n"));
    let uri = with(
        &my_secure_uri().replace(&format!(":{DB_PASSWORD}@"), "@"),
        &[("ssl-mode", "VERIFY_IDENTITY"), ("ssl-ca", &ca())],
    );
    let mut spec = spec(&uri, &table, "id", None);
    spec.password = Some(repliqate::secret::Secret::File(file));
    let mut src = connect(&spec);
    assert_eq!(src.fetch(0, 10).unwrap(), expected_rows());
    dir.write("password", "not-the-password");
    let e = connect_err(&spec);
    assert!(
        e.to_string()
            .contains("authentication failed for user repliqate")
            && !e.is_retriable(),
        "{e}"
    );
    assert!(!e.to_string().contains("not-the-password"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// The binary, end to end and refused at start-up

/// Replicates `table` at `uri` with `repliqate --once`, its password (if any) from `password`
/// through `password_file`, to a new topic on the stack's plaintext broker, and checks the ids.
fn end_to_end(what: &str, uri: &str, table: &str, password: Option<&str>) {
    let dir = TempDir::new(what);
    let topic = unique(what);
    create_topic(&kafka_broker(), &topic, 1);
    let mut job = JobConfig::new(&unique(&format!("job_{what}")), uri, table, &topic)
        .state_file(dir.path().join("position"))
        .brokers(&kafka_broker());
    if let Some(password) = password {
        let file = dir.write("db-password", password);
        job = job.set(
            "replication.sql_source.password_file",
            file.display().to_string(),
        );
    }
    let config = dir.write("config.yaml", &job.yaml());
    let output = run(
        &["--config", config.to_str().unwrap(), "--once", "-vvv"],
        Duration::from_secs(120),
    );
    assert_exit(&output, 0, what);
    let stderr = String::from_utf8_lossy(&output.stderr);
    for secret in [DB_PASSWORD, PG_TLS_PASSWORD] {
        assert!(
            !stderr.contains(secret),
            "{what}: a password in stderr:\n{stderr}"
        );
    }
    let ids = ids_in_topic(&kafka_broker(), &topic, 1, 3);
    let mut seen: Vec<i64> = ids.keys().copied().collect();
    seen.sort();
    assert_eq!(seen, [1, 2, 3], "{what}");
    assert!(ids.values().all(|n| *n == 1), "{what}: duplicates {ids:?}");
}

#[test]
fn pg_over_verified_tls_replicates_end_to_end_with_a_password_file() {
    let (table, _guard) = pg_table();
    let uri = with(
        &pg_tls_uri().replace(&format!(":{PG_TLS_PASSWORD}@"), "@"),
        &[("sslmode", "verify-full"), ("sslrootcert", &ca())],
    );
    end_to_end("tls_pg_e2e", &uri, &table, Some(PG_TLS_PASSWORD));
}

#[test]
fn mysql_over_verified_tls_with_a_client_certificate_replicates_end_to_end() {
    let (table, _guard) = my_secure_table();
    let uri = with(
        &my_x509_uri(),
        &[
            ("ssl-mode", "VERIFY_IDENTITY"),
            ("ssl-ca", &ca()),
            ("ssl-cert", &stack_tls("client.pem")),
            ("ssl-key", &stack_tls("client.key")),
        ],
    );
    end_to_end("tls_my_e2e", &uri, &table, None);
}

/// `repliqate --once -vvv` against `uri` exits with 2 and one last line naming `host` and
/// saying `reason`, no password anywhere in its output.
fn refused_at_start_up(what: &str, uri: &str, table: &str, host: &str, reason: &str) {
    let dir = TempDir::new(what);
    let job = JobConfig::new(&unique(&format!("job_{what}")), uri, table, &unique(what))
        .state_file(dir.path().join("position"))
        .brokers(&kafka_broker());
    let config = dir.write("config.yaml", &job.yaml());
    assert_refused_at_start_up(what, &config, host, reason, &[DB_PASSWORD, PG_TLS_PASSWORD]);
}

#[test]
fn tls_failures_are_refused_at_start_up_with_exit_code_2_and_no_secret() {
    let (pg, _pg_guard) = pg_table();
    let (my, _my_guard) = my_plain_table();
    let dir = TempDir::new("tls_refused");
    let rogue = dir.write("rogue-ca.pem", &TestCa::new("rogue CA").pem);
    refused_at_start_up(
        "tls_pg_rogue",
        &with(
            &pg_tls_uri(),
            &[
                ("sslmode", "verify-full"),
                ("sslrootcert", rogue.to_str().unwrap()),
            ],
        ),
        &pg,
        PG_HOST,
        "not signed by a trusted CA",
    );
    refused_at_start_up(
        "tls_my_plain",
        &with(&Db::MariaDb.uri(), &[("ssl-mode", "REQUIRED")]),
        &my,
        MY_PLAIN_HOST,
        "the server does not offer TLS",
    );
}

/// While running, a database password that stops working (rotated on one side only, then the
/// session ends) is one incident: logged once, retried with backoff, never a storm and never
/// the end of the run; the password file put right is used at the next connection and the rows
/// inserted meanwhile are published.
#[test]
fn pg_a_password_that_stops_working_while_running_is_one_incident_retried_with_backoff() {
    let table = unique("tls_incident");
    let _guard = TableGuard::new(&Db::Postgres, &table);
    Db::Postgres.create_filled(&table, 3);
    let dir = TempDir::new("pg_incident");
    let file = dir.write("password", PG_TLS_PASSWORD);
    let app = unique("rq");
    let uri = with(
        &pg_tls_uri().replace(&format!(":{PG_TLS_PASSWORD}@"), "@"),
        &[
            ("sslmode", "verify-full"),
            ("sslrootcert", &ca()),
            ("application_name", &app),
        ],
    );
    let topic = unique("tls_incident");
    common::kafka::create_topic(&common::kafka::broker(), &topic, 1);
    let job = common::job::JobConfig::new(&unique("job_tls_incident"), &uri, &table, &topic)
        .state_file(dir.path().join("position"))
        .brokers(&common::kafka::broker())
        .poll_interval(Duration::from_millis(200))
        .set(
            "replication.sql_source.password_file",
            file.display().to_string(),
        )
        .set("replication.retry_backoff_max_sec", 2);
    let config = dir.write("config.yaml", &job.yaml());
    let mut daemon = common::daemon::Daemon::start(&config, &["-vvv"], dir.path().join("log"));
    let position = dir.path().join("position");
    wait_for_position(&daemon, &position, 3, Duration::from_secs(30));

    dir.write("password", "not-the-password");
    pg_superuser()
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            &[&app],
        )
        .unwrap();
    Db::Postgres.exec(&format!(
        "INSERT INTO {table} (v) VALUES ('row 4'), ('row 5')"
    ));
    std::thread::sleep(Duration::from_secs(12));
    assert!(daemon.alive(), "the run ended:\n{}", daemon.log_text());
    let reported: Vec<String> = daemon
        .lines_with("authentication failed for user repliqate_tls")
        .into_iter()
        .filter(|l| l.contains("ERROR"))
        .collect();
    assert_eq!(
        reported.len(),
        1,
        "logged {} times:\n{}",
        reported.len(),
        daemon.log_text()
    );
    let retries = daemon.lines_with("still failing").len();
    assert!(
        (2..=20).contains(&retries),
        "{retries} retries in 12 s:\n{}",
        daemon.log_text()
    );
    assert!(!daemon.log_text().contains("not-the-password"));

    dir.write("password", PG_TLS_PASSWORD);
    wait_for_position(&daemon, &position, 5, Duration::from_secs(30));
    daemon.terminate(Duration::from_secs(30));
}

/// libpq's forms of client material: an X.509 v1 certificate (PostgreSQL's OpenSSL takes it),
/// and an encrypted PKCS#8 `sslkey` opened with `sslpassword`; both log in as the role the
/// certificate maps to. A wrong `sslpassword` is refused naming `sslkey`'s file and
/// `sslpassword`, not the password.
#[test]
fn pg_client_certificate_logs_in_with_a_v1_certificate_and_an_encrypted_key() {
    let (table, _guard) = pg_table();
    let dir = TempDir::new("pg_forms");
    let forms = common::secure::Forms::make(dir.path());
    let ca = ca();
    let cert = stack_tls("client.pem");
    let (v1, v1_key, encrypted) = (
        forms.path("v1.pem"),
        forms.path("v1.key"),
        forms.path("encrypted.key"),
    );
    for (what, params) in [
        (
            "v1",
            vec![("sslcert", v1.as_str()), ("sslkey", v1_key.as_str())],
        ),
        (
            "encrypted",
            vec![
                ("sslcert", cert.as_str()),
                ("sslkey", encrypted.as_str()),
                ("sslpassword", common::secure::Forms::PASSWORD),
            ],
        ),
    ] {
        let app = unique(&format!("rq_{what}"));
        let mut all = vec![
            ("sslmode", "verify-full"),
            ("sslrootcert", ca.as_str()),
            ("application_name", app.as_str()),
        ];
        all.extend(params);
        let _src = replicates(&with(&pg_cert_uri(), &all), &table);
        assert!(pg_session_ssl(&app), "{what}");
    }
    let uri = with(
        &pg_cert_uri(),
        &[
            ("sslmode", "verify-full"),
            ("sslrootcert", &ca),
            ("sslcert", &cert),
            ("sslkey", &encrypted),
            ("sslpassword", "wrong-pw-41d"),
        ],
    );
    let e = refused(
        &uri,
        &table,
        PG_HOST,
        &format!("sslkey {encrypted}: cannot decrypt the key with sslpassword: wrong password?"),
    );
    assert!(!e.to_string().contains("wrong-pw-41d"), "{e}");

    // The password from a file instead (`sql_source.sslpassword_file`), read at each connection.
    let password_file = dir.write(
        "sslpassword",
        &format!("{}\n", common::secure::Forms::PASSWORD),
    );
    let uri = with(
        &pg_cert_uri(),
        &[
            ("sslmode", "verify-full"),
            ("sslrootcert", &ca),
            ("sslcert", &cert),
            ("sslkey", &encrypted),
        ],
    );
    let mut with_file = spec(&uri, &table, "id", None);
    with_file.ssl_key_password = Some(repliqate::secret::Secret::File(password_file.clone()));
    let mut src = connect(&with_file);
    assert_eq!(src.fetch(0, 10).expect("fetch"), expected_rows());
    std::fs::write(&password_file, "wrong-pw-41d\n").unwrap();
    drop(src);
    let e = connect_err(&with_file).to_string();
    assert!(
        e.contains("cannot decrypt the key with sql_source.sslpassword_file: wrong password?")
            && !e.contains("wrong-pw-41d"),
        "{e}"
    );
}

/// The MySQL driver reads the client certificate and key from their files itself and loads
/// them through rustls's own check, so what it cannot take is refused before it tries, naming
/// the file and the way out: an X.509 v1 certificate (webpki reads v3 only), and an encrypted
/// key (the `mysql` client has no password option for one).
#[test]
fn mysql_client_material_the_driver_cannot_load_is_refused_saying_why() {
    let (table, _guard) = my_secure_table();
    let dir = TempDir::new("my_forms");
    let forms = common::secure::Forms::make(dir.path());
    let ca = ca();
    let (v1, v1_key) = (forms.path("v1.pem"), forms.path("v1.key"));
    let uri = with(
        &my_x509_uri(),
        &[
            ("ssl-mode", "VERIFY_IDENTITY"),
            ("ssl-ca", &ca),
            ("ssl-cert", &v1),
            ("ssl-key", &v1_key),
        ],
    );
    refused(
        &uri,
        &table,
        MY_SECURE_HOST,
        &format!("ssl-cert {v1}: is an X.509 v1 certificate, which the MySQL driver"),
    );
    let (cert, encrypted) = (stack_tls("client.pem"), forms.path("encrypted.key"));
    let uri = with(
        &my_x509_uri(),
        &[
            ("ssl-mode", "VERIFY_IDENTITY"),
            ("ssl-ca", &ca),
            ("ssl-cert", &cert),
            ("ssl-key", &encrypted),
        ],
    );
    refused(
        &uri,
        &table,
        MY_SECURE_HOST,
        "the MySQL driver reads unencrypted keys only",
    );
}
