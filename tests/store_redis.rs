//! The Redis position store against a real Redis (REPLIQATE_TEST_REDIS): the key and value are
//! checked with raw RESP commands over a plain socket, independent of the `redis` crate the store
//! uses.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::env::{redis_addr, stack_var, unique, TempDir};
use common::job::position_key;
use common::position::lease_key;
use repliqate::store::{PositionStoreConfig, Store, StoreError};

/// Sends one command in RESP and returns the reply: `Some(bytes)` for a bulk or simple string,
/// `None` for a nil bulk string.
fn raw(args: &[&str]) -> Option<String> {
    let addr = redis_addr();
    let mut sock = TcpStream::connect(&addr)
        .unwrap_or_else(|e| panic!("connecting to redis at {addr} (REPLIQATE_TEST_REDIS): {e}"));
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    sock.write_all(req.as_bytes()).expect("send");
    let mut reader = BufReader::new(sock);
    let mut line = String::new();
    reader.read_line(&mut line).expect("reply");
    let line = line.trim_end();
    match line.as_bytes().first() {
        Some(b'+') | Some(b':') => Some(line[1..].to_owned()),
        Some(b'$') if line == "$-1" => None,
        Some(b'$') => {
            let len: usize = line[1..].parse().expect("bulk length");
            let mut buf = vec![0; len + 2];
            std::io::Read::read_exact(&mut reader, &mut buf).expect("bulk body");
            buf.truncate(len);
            Some(String::from_utf8(buf).expect("utf-8 reply"))
        }
        _ => panic!("unexpected reply {line:?}"),
    }
}

fn open(addr: &str, name: &str) -> Store {
    let cfg = PositionStoreConfig::Redis {
        addr: addr.into(),
        timeout: Duration::from_secs(2),
        tls: None,
        password: None,
    };
    Store::open(&cfg, name, "events", "topic.events").unwrap_or_else(|e| panic!("{e}"))
}

/// Writes the way the daemon does: as the holder of the job's lease, fenced.
fn write(store: &mut repliqate::store::Store, pos: i128) {
    let ttl = Duration::from_secs(5);
    store
        .hold_lease("owner", ttl)
        .unwrap_or_else(|e| panic!("{e}"));
    store
        .write_fenced(pos, None, "owner", ttl)
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn writes_the_old_tools_key_and_decimal_value() {
    let name = unique("store_test_key");
    let key = position_key(&name, "events", "topic.events");
    raw(&["DEL", &key]);
    let mut store = open(&redis_addr(), &name);
    assert_eq!(store.read().unwrap_or_else(|e| panic!("{e}")), None);

    let big = i64::MAX as i128 + 10; // BIGINT UNSIGNED positions exceed i64
    write(&mut store, big);
    assert_eq!(raw(&["GET", &key]).as_deref(), Some("9223372036854775817"));
    assert_eq!(store.read().unwrap_or_else(|e| panic!("{e}")), Some(big));

    // A value written by the old tool is read back.
    raw(&["SET", &key, "123456"]);
    assert_eq!(store.read().unwrap_or_else(|e| panic!("{e}")), Some(123456));
    raw(&["DEL", &key]);
}

#[test]
fn a_redis_uri_is_accepted() {
    let name = unique("store_test_uri");
    let key = position_key(&name, "events", "topic.events");
    let mut store = open(&format!("redis://{}/0", redis_addr()), &name);
    write(&mut store, 7);
    assert_eq!(raw(&["GET", &key]).as_deref(), Some("7"));
    raw(&["DEL", &key]);
}

#[test]
fn a_non_integer_value_is_corrupt_not_zero() {
    let name = unique("store_test_corrupt");
    let key = position_key(&name, "events", "topic.events");
    raw(&["SET", &key, "12x"]);
    let mut store = open(&redis_addr(), &name);
    let err = store.read().expect_err("a corrupt value must be an error");
    raw(&["DEL", &key]);
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert!(!err.is_retriable());
    let msg = err.to_string();
    assert!(msg.contains(&key) && msg.contains("\"12x\""), "{msg}");
}

#[test]
fn unreachable_redis_is_a_retriable_error_within_the_timeout() {
    let mut store = open("127.0.0.1:1", &unique("store_test_down"));
    let started = Instant::now();
    let err = store.read().expect_err("nothing listens on port 1");
    assert!(err.is_retriable(), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(err.to_string().contains("127.0.0.1:1"), "{err}");
    // And again: the store reconnects on each call rather than giving up.
    assert!(store
        .write_fenced(1, None, "owner", Duration::from_secs(5))
        .expect_err("still down")
        .is_retriable());
}

#[test]
fn a_silent_server_times_out_as_retriable() {
    // Accepts connections but never answers, like a stuck Redis.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let (done, wait) = std::sync::mpsc::channel::<()>();
    let hold = std::thread::spawn(move || {
        let conn = listener.accept();
        let _ = wait.recv(); // keep the connection open, silent, until the test is done
        drop(conn);
    });
    let cfg = PositionStoreConfig::Redis {
        addr,
        timeout: Duration::from_millis(500),
        tls: None,
        password: None,
    };
    let mut store =
        Store::open(&cfg, &unique("store_test_silent"), "t", "x").unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    let err = store.read().expect_err("the server never answers");
    assert!(err.is_retriable(), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    done.send(()).expect("signal listener");
    hold.join().expect("listener thread");
}

/// A Kafka call that outlives the lease must not cost a republished batch when nobody else
/// wanted the job: a lapsed lease is taken again by the write if the position is still the one
/// the writer last saw (or missing with the lease: an emptied Redis), and refused if anyone moved
/// it meanwhile.
#[test]
fn a_lapsed_lease_is_retaken_by_the_write_only_if_the_position_did_not_move() {
    use repliqate::store::{StoreError, Written};
    let name = unique("store_test_retake");
    let mut store = open(&redis_addr(), &name);
    let key = position_key(&name, "events", "topic.events");
    let lease = lease_key(&key);
    let short = Duration::from_millis(200);
    store.hold_lease("a", short).unwrap();
    assert_eq!(
        store.write_fenced(10, None, "a", short).unwrap(),
        Written::Held
    );
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(raw(&["GET", &lease]), None, "the lease should have lapsed");
    // Nobody moved it: taken again, written.
    assert_eq!(
        store.write_fenced(20, Some(10), "a", short).unwrap(),
        Written::LeaseRetaken
    );
    assert_eq!(raw(&["GET", &key]).as_deref(), Some("20"));
    assert_eq!(raw(&["GET", &lease]).as_deref(), Some("a"));
    // Lapsed again, and another instance moved the position meanwhile (it held the lease and
    // let it lapse too): fenced, the newer position stays.
    std::thread::sleep(Duration::from_millis(400));
    raw(&["SET", &key, "30"]);
    let err = store.write_fenced(25, Some(20), "a", short).unwrap_err();
    assert!(matches!(err, StoreError::Fenced { .. }), "{err}");
    assert_eq!(raw(&["GET", &key]).as_deref(), Some("30"));
    assert_eq!(
        raw(&["GET", &lease]),
        None,
        "a refused write takes no lease"
    );
    // Held by someone else: fenced whatever the position.
    raw(&["SET", &lease, "b", "PX", "5000"]);
    let err = store.write_fenced(40, Some(30), "a", short).unwrap_err();
    assert!(matches!(err, StoreError::Fenced { .. }), "{err}");
    assert_eq!(raw(&["GET", &key]).as_deref(), Some("30"));
    // Redis came back empty (no lease, no position) while a batch was being committed: nobody
    // wrote since, so the acknowledged position is written and the lease taken, rather than
    // the batch republished.
    raw(&["DEL", &key]);
    raw(&["DEL", &lease]);
    assert_eq!(
        store.write_fenced(50, Some(30), "a", short).unwrap(),
        Written::LeaseRetaken
    );
    assert_eq!(raw(&["GET", &key]).as_deref(), Some("50"));
    assert_eq!(raw(&["GET", &lease]).as_deref(), Some("a"));
    raw(&["DEL", &key]);
    raw(&["DEL", &lease]);
}

// ---------------------------------------------------------------------------------------------
// TLS (`rediss://`, `redis_tls`) and ACL users, against the stack Redis's tls-port.

fn tls_file(setting: &str, name: &str) -> repliqate::tls::TlsFile {
    repliqate::tls::TlsFile {
        setting: setting.into(),
        path: std::path::Path::new(&stack_var("REPLIQATE_TLS_DIR")).join(name),
    }
}

/// The stack's CA, and with `client`, the stack's client certificate.
fn stack_tls(client: bool) -> repliqate::tls::TlsSettings {
    repliqate::tls::TlsSettings {
        ca: Some(repliqate::tls::Trust::Pem(repliqate::tls::Pem::File(
            tls_file("repliqate.redis_tls.ca_file", "ca.pem"),
        ))),
        client: client.then(|| {
            repliqate::tls::ClientCert::pem_files(
                tls_file("repliqate.redis_tls.cert_file", "client.pem"),
                tls_file("repliqate.redis_tls.key_file", "client.key"),
            )
        }),
        verify_hostname: true,
        verify_certificate: true,
    }
}

/// `rediss://USER:PASSWORD@` the stack's TLS port, with the ACL user's name and, unless
/// `password` is given, its password in the URL.
fn rediss_url(password: Option<&str>) -> String {
    let user = stack_var("REPLIQATE_TEST_REDIS_ACL_USER");
    let password = password.map_or_else(
        || stack_var("REPLIQATE_TEST_REDIS_ACL_PASSWORD"),
        String::from,
    );
    format!(
        "rediss://{user}:{password}@{}/0",
        stack_var("REPLIQATE_TEST_REDIS_TLS")
    )
}

fn open_with(
    addr: &str,
    tls: Option<repliqate::tls::TlsSettings>,
    password: Option<repliqate::secret::Secret>,
    name: &str,
) -> Result<Store, StoreError> {
    let cfg = PositionStoreConfig::Redis {
        addr: addr.into(),
        timeout: Duration::from_secs(3),
        tls,
        password,
    };
    Store::open(&cfg, name, "events", "topic.events")
}

#[test]
fn rediss_with_a_private_ca_and_an_acl_user_keeps_the_position() {
    for client in [false, true] {
        let name = unique(&format!("store_test_tls_{client}"));
        let key = position_key(&name, "events", "topic.events");
        raw(&["DEL", &key]);
        let mut store = open_with(&rediss_url(None), Some(stack_tls(client)), None, &name)
            .unwrap_or_else(|e| panic!("{e}"));
        write(&mut store, 4242);
        assert_eq!(store.read().unwrap(), Some(4242));
        // Read back over the plaintext port with raw RESP: the same Redis, the same key.
        assert_eq!(raw(&["GET", &key]).as_deref(), Some("4242"));
        raw(&["DEL", &key]);
    }
}

#[test]
fn the_password_file_is_read_at_each_connection() {
    let dir = TempDir::new("redis-pw");
    let file = dir.path().join("password");
    std::fs::write(&file, "wrong-password\n").unwrap();
    let user = stack_var("REPLIQATE_TEST_REDIS_ACL_USER");
    let url = format!(
        "rediss://{user}@{}/0",
        stack_var("REPLIQATE_TEST_REDIS_TLS")
    );
    let name = unique("store_test_pwfile");
    let mut store = open_with(
        &url,
        Some(stack_tls(false)),
        Some(repliqate::secret::Secret::File(file.clone())),
        &name,
    )
    .unwrap();
    let e = store.read().unwrap_err();
    assert!(!e.is_retriable(), "a wrong password is not retriable: {e}");
    assert!(!e.to_string().contains("wrong-password"), "{e}");
    // Rotated: the next connection uses the new file, without a new store.
    std::fs::write(&file, stack_var("REPLIQATE_TEST_REDIS_ACL_PASSWORD")).unwrap();
    assert_eq!(store.read().unwrap_or_else(|e| panic!("{e}")), None);
}

#[test]
fn tls_problems_with_redis_are_not_retriable_and_say_why() {
    // A CA that did not sign the server's certificate.
    let dir = TempDir::new("redis-ca");
    let rogue = dir.path().join("rogue.pem");
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    std::fs::write(&rogue, params.self_signed(&key).unwrap().pem()).unwrap();
    let mut tls = stack_tls(false);
    tls.ca = Some(repliqate::tls::Trust::Pem(repliqate::tls::Pem::File(
        repliqate::tls::TlsFile {
            setting: "repliqate.redis_tls.ca_file".into(),
            path: rogue,
        },
    )));
    let mut store = open_with(
        &rediss_url(None),
        Some(tls),
        None,
        &unique("store_test_rogue"),
    )
    .unwrap();
    let e = store.read().unwrap_err();
    assert!(!e.is_retriable(), "{e}");
    assert!(e.to_string().contains("not signed by a trusted CA"), "{e}");

    // TLS against the plaintext port: refused, never a plaintext fallback.
    let user = stack_var("REPLIQATE_TEST_REDIS_ACL_USER");
    let plain = format!("rediss://{user}:x@{}/0", redis_addr());
    let mut store = open_with(
        &plain,
        Some(stack_tls(false)),
        None,
        &unique("store_test_downgrade"),
    )
    .unwrap();
    let e = store.read().unwrap_err();
    assert!(e.to_string().contains(&redis_addr()), "{e}");

    // A wrong ACL password: refused, and not printed.
    let mut store = open_with(
        &rediss_url(Some("not-the-password")),
        Some(stack_tls(false)),
        None,
        &unique("store_test_acl"),
    )
    .unwrap();
    let e = store.read().unwrap_err();
    assert!(!e.is_retriable(), "{e}");
    assert!(!e.to_string().contains("not-the-password"), "{e}");
}
