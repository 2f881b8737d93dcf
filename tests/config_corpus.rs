//! The config corpus: every broken file in tests/configs/bad must give a one-line error that names
//! the file and contains the text in its `.expected` companion; every file in tests/configs/good
//! must load. Plus a seeded mutation test: no edit of a good file makes the parser panic.

use std::path::{Path, PathBuf};
use std::time::Duration;

use repliqate::config::{self, Acks, Compression, KeyMode, LogFormat, PositionStoreConfig};

fn corpus_dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/configs")
        .join(kind)
}

fn yaml_files(kind: &str) -> Vec<PathBuf> {
    let dir = corpus_dir(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

/// Checks the shape every config error must have and returns its text.
fn one_line_error(path: &Path, result: Result<config::Config, config::ConfigError>) -> String {
    let err = match result {
        Ok(c) => panic!("{} parsed but must not: {c:?}", path.display()),
        Err(e) => e.to_string(),
    };
    assert!(
        !err.contains('\n'),
        "{}: error spans lines: {err:?}",
        path.display()
    );
    assert!(
        err.contains(&path.display().to_string()),
        "error does not name the file {}: {err}",
        path.display()
    );
    assert!(!err.contains("hunter2"), "error leaks a password: {err}");
    err
}

#[test]
fn every_bad_config_gives_its_expected_one_line_error() {
    let files = yaml_files("bad");
    assert!(
        files.len() >= 40,
        "the corpus has only {} files",
        files.len()
    );
    let mut failures = Vec::new();
    for path in &files {
        let err = one_line_error(path, config::load(path));
        let expected_path = path.with_extension("expected");
        let expected = match std::fs::read_to_string(&expected_path) {
            Ok(s) => s.trim_end_matches('\n').to_owned(),
            Err(e) => {
                failures.push(format!(
                    "{}: {e}; the error was: {err}",
                    expected_path.display()
                ));
                continue;
            }
        };
        assert!(!expected.is_empty(), "{} is empty", expected_path.display());
        if !err.contains(&expected) {
            failures.push(format!(
                "{}:\n  expected to contain: {expected}\n  got: {err}",
                path.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_ten_megabyte_file_is_refused_by_its_size() {
    let dir = std::env::temp_dir().join(format!("repliqate-config-corpus-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("huge.yaml");
    let mut text = String::from("repliqate:\n  name: huge\n");
    while text.len() < 10 * 1024 * 1024 {
        text.push_str("# padding padding padding padding padding padding padding padding\n");
    }
    std::fs::write(&path, &text).expect("write huge file");
    let result = config::load(&path);
    std::fs::remove_dir_all(&dir).expect("remove temp dir");
    let err = one_line_error(&path, result);
    assert!(
        err.contains("a config file may be at most 1048576 bytes"),
        "{err}"
    );
}

#[test]
fn a_missing_file_names_the_path() {
    let path = corpus_dir("bad").join("does-not-exist.yaml");
    let err = one_line_error(&path, config::load(&path));
    assert!(err.starts_with("reading config file "), "{err}");
}

#[test]
fn the_compat_example_parses_unchanged() {
    let path = corpus_dir("good").join("01-compat-example.yaml");
    let c = config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.name, "processes");
    assert_eq!(c.statsd_addr.as_deref(), Some("localhost:8125"));
    assert_eq!(
        c.position_store,
        PositionStoreConfig::Redis {
            addr: "localhost:6379".into(),
            timeout: Duration::from_secs(5),
            tls: None,
            password: None,
        }
    );
    assert_eq!(c.poll_interval, Duration::from_secs(10));
    assert_eq!(c.source.spec.uri, "sqlite:////var/lib/app/metrics.db");
    assert_eq!(c.source.spec.table, "processes");
    assert_eq!(c.source.spec.primary_key, "id");
    assert_eq!(c.source.limit, 100);
    assert_eq!(
        c.source.spec.fields.as_deref(),
        Some(&["pid", "name", "user", "command"].map(String::from)[..])
    );
    assert_eq!(c.kafka.topic, "repliqate-processes");
    assert_eq!(c.kafka.producer.bootstrap, vec!["127.0.0.1:9092"]);
}

#[test]
fn a_config_using_every_option_parses() {
    std::env::set_var("REPLIQATE_CORPUS_PASSWORD", "pa ss");
    let path = corpus_dir("good").join("03-every-option.yaml");
    let c = config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.statsd_addr.as_deref(), Some("[::1]:8125"));
    assert_eq!(
        c.position_store,
        PositionStoreConfig::File {
            path: corpus_dir("good").join("state/orders.offset")
        }
    );
    assert_eq!(c.poll_interval, Duration::from_millis(2500));
    assert_eq!(c.retry_backoff_max, Duration::from_secs(60));
    assert_eq!(
        c.source.spec.uri,
        "postgresql://repliqate:pa ss@db.example:5432/shop"
    );
    assert_eq!(c.source.limit, 5000);
    assert_eq!(c.source.spec.query_timeout, Duration::from_secs(20));
    assert_eq!(c.source.spec.connect_timeout, Duration::from_secs(5));
    assert_eq!(c.kafka.topic, "shop.orders");
    assert_eq!(c.kafka.key, KeyMode::None);
    let k = &c.kafka.producer;
    assert_eq!(
        k.bootstrap,
        vec!["kafka-1.example:9092", "[2001:db8::1]:9093"]
    );
    assert_eq!(k.compression, Compression::Gzip);
    assert_eq!(k.acks, Acks::Leader);
    assert!(!k.idempotent);
    assert_eq!(k.request_timeout, Duration::from_secs(15));
    assert_eq!(k.delivery_timeout, Duration::from_secs(60));
    assert_eq!(k.connect_timeout, Duration::from_secs(3));
    assert_eq!(k.max_request_size, 2_097_152);
    assert_eq!(k.client_id, "repliqate-orders");
    assert_eq!(c.log_format, LogFormat::Json);
    assert!(
        !format!("{c:?}").contains("pa ss"),
        "Debug leaks the password"
    );
}

#[test]
fn every_good_config_parses() {
    std::env::set_var("REPLIQATE_CORPUS_PASSWORD", "pa ss");
    for path in yaml_files("good") {
        if let Err(e) = config::load(&path) {
            panic!("{e}");
        }
    }
}

#[test]
fn the_example_in_the_repository_root_parses() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.yaml");
    std::env::set_var("REPLIQATE_DB_PASSWORD", "example");
    if let Err(e) = config::load(&path) {
        panic!("{e}");
    }
}

/// xorshift64*: a fixed seed makes every failure reproducible without a new dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn mutated_configs_never_panic_and_fail_in_one_line() {
    let origin = corpus_dir("good").join("03-every-option.yaml");
    std::env::set_var("REPLIQATE_CORPUS_PASSWORD", "pa ss");
    let good = std::fs::read_to_string(&origin).expect("read good config");
    // Characters that matter to YAML or to our checks.
    let alphabet: Vec<char> = " \t\n:-[]{},#&*!|>'\"%@`=$?0123456789.xé".chars().collect();
    // A longer run: REPLIQATE_CONFIG_FUZZ_ROUNDS=200000 REPLIQATE_CONFIG_FUZZ_SEED=7 cargo test …
    let env_u64 = |var: &str| std::env::var(var).ok().and_then(|v| v.parse::<u64>().ok());
    let rounds = env_u64("REPLIQATE_CONFIG_FUZZ_ROUNDS").unwrap_or(3000);
    let mut rng = Rng(env_u64("REPLIQATE_CONFIG_FUZZ_SEED").unwrap_or(0x5eed_1234_abcd_0042) | 1);
    let (mut ok, mut failed) = (0, 0);
    for round in 0..rounds {
        let mut lines: Vec<String> = good.lines().map(String::from).collect();
        for _ in 0..=rng.below(3) {
            if lines.is_empty() {
                break;
            }
            let i = rng.below(lines.len());
            match rng.below(4) {
                0 => {
                    lines.remove(i);
                }
                1 => {
                    let j = rng.below(lines.len());
                    lines.swap(i, j);
                }
                _ => {
                    let mut chars: Vec<char> = lines[i].chars().collect();
                    let at = rng.below(chars.len() + 1);
                    let c = alphabet[rng.below(alphabet.len())];
                    if at < chars.len() && rng.below(2) == 0 {
                        chars[at] = c;
                    } else {
                        chars.insert(at, c);
                    }
                    lines[i] = chars.into_iter().collect();
                }
            }
        }
        let text = lines.join("\n");
        match config::parse(&text, &origin) {
            Ok(_) => ok += 1,
            Err(e) => {
                let msg = e.to_string();
                assert!(
                    !msg.contains('\n'),
                    "round {round}: multi-line error {msg:?} for:\n{text}"
                );
                assert!(msg.contains(&origin.display().to_string()), "{msg}");
                failed += 1;
            }
        }
    }
    // Both outcomes must occur, or the mutations are not exercising the parser.
    assert!(ok > 0 && failed > 0, "ok={ok} failed={failed}");
}
