//! The three test databases behind one type: [`Db`] names one (a SQLite file, the stack's
//! PostgreSQL or MariaDB), [`Conn`] is a session with it, and [`TableGuard`] drops what a test
//! created when the test ends, pass or fail. Tables are filled and read back here with the
//! database drivers, never through repliqate's own sources.

use std::path::{Path, PathBuf};
use std::time::Duration;

use mysql::prelude::Queryable as _;

use super::env::{mysql_uri, pg_uri, TempDir};

/// One of the test databases.
#[derive(Clone, Debug, PartialEq)]
#[allow(clippy::enum_variant_names)] // MariaDb is the product's name
pub enum Db {
    /// A database file (in a test's temporary directory, which removes it).
    Sqlite(PathBuf),
    Postgres,
    MariaDb,
}

/// A session with one of the test databases (a handful per test: the size difference of the
/// variants is moot).
#[allow(clippy::large_enum_variant)]
pub enum Conn {
    Sqlite(rusqlite::Connection),
    Postgres(postgres::Client),
    MariaDb(mysql::Conn),
}

/// A client of the test PostgreSQL; panics with instructions when there is none.
pub fn pg_client() -> postgres::Client {
    postgres::Client::connect(&pg_uri(), postgres::NoTls).unwrap_or_else(|e| {
        panic!(
            "connecting to the test PostgreSQL: {e}; run `make stack-up` and \
             `eval \"$(scripts/stack env)\"`"
        )
    })
}

/// A connection to the test MariaDB; panics with instructions when there is none.
pub fn my_conn() -> mysql::Conn {
    let opts = mysql::Opts::from_url(&mysql_uri()).expect("REPLIQATE_TEST_MYSQL_URI");
    mysql::Conn::new(opts).unwrap_or_else(|e| {
        panic!(
            "connecting to the test MariaDB: {e}; run `make stack-up` and \
             `eval \"$(scripts/stack env)\"`"
        )
    })
}

/// A SQLite database file set up with `setup` (one or more statements), in a temporary
/// directory of its own: dropping the directory removes the file with its -wal, -shm and
/// -journal companions.
pub fn sqlite_db(setup: &str) -> (TempDir, Db) {
    let dir = TempDir::new("source");
    let db = Db::Sqlite(dir.path().join("source.db"));
    db.exec(setup);
    (dir, db)
}

impl Db {
    /// The file of a SQLite database; panics for the servers, which have none.
    pub fn path(&self) -> &Path {
        match self {
            Db::Sqlite(p) => p,
            _ => panic!("{} is a server, not a file", self.label()),
        }
    }

    /// The database's name in messages.
    pub fn label(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres => "postgresql",
            Db::MariaDb => "mariadb",
        }
    }

    /// The URI a job's `sql_source` names it by.
    pub fn uri(&self) -> String {
        match self {
            Db::Sqlite(p) => format!("sqlite:///{}", p.display()),
            Db::Postgres => pg_uri(),
            Db::MariaDb => mysql_uri(),
        }
    }

    /// A new session; panics with instructions when the server is not there.
    pub fn connect(&self) -> Conn {
        match self {
            Db::Sqlite(p) => Conn::Sqlite(rusqlite::Connection::open(p).expect("open sqlite")),
            Db::Postgres => Conn::Postgres(pg_client()),
            Db::MariaDb => Conn::MariaDb(my_conn()),
        }
    }

    /// A new session that gives up quickly (connecting within `timeout`, statements on MariaDB
    /// within twice that, SQLite's lock waited for 5 s), or None: for a writer that keeps going
    /// through an outage.
    pub fn try_connect(&self, timeout: Duration) -> Option<Conn> {
        match self {
            Db::Sqlite(p) => {
                let c = rusqlite::Connection::open(p).ok()?;
                c.busy_timeout(Duration::from_secs(5)).ok()?;
                Some(Conn::Sqlite(c))
            }
            Db::Postgres => {
                let mut cfg: postgres::Config = pg_uri().parse().ok()?;
                cfg.connect_timeout(timeout);
                cfg.connect(postgres::NoTls).ok().map(Conn::Postgres)
            }
            Db::MariaDb => {
                let opts = mysql::OptsBuilder::from_opts(mysql::Opts::from_url(&mysql_uri()).ok()?)
                    .tcp_connect_timeout(Some(timeout))
                    .read_timeout(Some(timeout * 2))
                    .write_timeout(Some(timeout * 2));
                mysql::Conn::new(opts).ok().map(Conn::MariaDb)
            }
        }
    }

    /// `name` quoted as an identifier of this database.
    pub fn quote(&self, name: &str) -> String {
        match self {
            Db::Sqlite(_) | Db::Postgres => format!("\"{}\"", name.replace('"', "\"\"")),
            Db::MariaDb => format!("`{}`", name.replace('`', "``")),
        }
    }

    /// Creates `table (id <auto-increment> PRIMARY KEY, v text)` with `rows` rows, ids 1..=rows,
    /// in one statement or transaction.
    pub fn create_filled(&self, table: &str, rows: u64) {
        match self.connect() {
            Conn::Sqlite(mut c) => {
                c.execute_batch(&format!(
                    "CREATE TABLE {table} (id INTEGER PRIMARY KEY, v TEXT NOT NULL)"
                ))
                .expect("create table");
                let tx = c.transaction().expect("begin");
                {
                    let mut stmt = tx
                        .prepare(&format!("INSERT INTO {table} (id, v) VALUES (?, ?)"))
                        .expect("prepare");
                    for i in 1..=rows as i64 {
                        stmt.execute(rusqlite::params![i, format!("row {i}")])
                            .expect("insert");
                    }
                }
                tx.commit().expect("commit");
            }
            Conn::Postgres(mut c) => {
                c.batch_execute(&format!(
                    "CREATE TABLE {table} (id bigserial PRIMARY KEY, v text NOT NULL); \
                     INSERT INTO {table} (v) SELECT 'row ' || g FROM generate_series(1, {rows}) g"
                ))
                .expect("create and fill a postgres table");
            }
            Conn::MariaDb(mut c) => {
                c.query_drop(format!(
                    "CREATE TABLE {table} (id BIGINT AUTO_INCREMENT PRIMARY KEY, \
                     v VARCHAR(100) NOT NULL)"
                ))
                .expect("create a mariadb table");
                if rows > 0 {
                    c.query_drop(format!(
                        "INSERT INTO {table} (v) SELECT CONCAT('row ', seq) FROM seq_1_to_{rows}"
                    ))
                    .expect("fill a mariadb table (needs the Sequence engine)");
                }
            }
        }
    }

    /// Runs `sql` (one or more statements) on a new session; panics naming the SQL on error.
    pub fn exec(&self, sql: &str) {
        self.connect().exec(sql);
    }

    /// Every id in `table`, ascending (the independent truth of what must be in the topic).
    pub fn ids(&self, table: &str) -> Vec<i64> {
        self.connect().ids(table)
    }

    /// The highest id in `table`, 0 when it is empty.
    pub fn max_id(&self, table: &str) -> i64 {
        self.ids(table).last().copied().unwrap_or(0)
    }
}

impl Conn {
    /// Runs `sql` (one or more statements); panics naming the SQL on error.
    pub fn exec(&mut self, sql: &str) {
        if let Err(e) = self.try_exec(sql) {
            panic!("{sql}: {e}");
        }
    }

    /// Runs `sql` (one or more statements), returning the error as text.
    pub fn try_exec(&mut self, sql: &str) -> Result<(), String> {
        match self {
            Conn::Sqlite(c) => c.execute_batch(sql).map_err(|e| e.to_string()),
            Conn::Postgres(c) => c.batch_execute(sql).map_err(|e| e.to_string()),
            Conn::MariaDb(c) => c.query_drop(sql).map_err(|e| e.to_string()),
        }
    }

    /// Every id in `table`, ascending.
    pub fn ids(&mut self, table: &str) -> Vec<i64> {
        let sql = format!("SELECT id FROM {table} ORDER BY id");
        match self {
            Conn::Sqlite(c) => {
                let mut stmt = c.prepare(&sql).expect("prepare");
                let ids = stmt
                    .query_map([], |r| r.get::<_, i64>(0))
                    .expect("reading the table")
                    .collect::<Result<Vec<_>, _>>()
                    .expect("ids");
                ids
            }
            Conn::Postgres(c) => c
                .query(&sql, &[])
                .expect("reading the table")
                .iter()
                .map(|r| r.get::<_, i64>(0))
                .collect(),
            Conn::MariaDb(c) => c.query(sql).expect("reading the table"),
        }
    }
}

/// Drops a table a test created when dropped, pass or fail, and then whatever else
/// [`TableGuard::then`] names (a type or a schema the table used). Errors are ignored: the test
/// has failed already, or the table is gone. On SQLite it does nothing: the file lives in the
/// test's temporary directory, which removes it.
pub struct TableGuard {
    db: Db,
    statements: Vec<String>,
}

impl TableGuard {
    /// Guards `table`: its name as SQL, quoted where it needs to be.
    pub fn new(db: &Db, table: &str) -> TableGuard {
        TableGuard {
            db: db.clone(),
            statements: vec![format!("DROP TABLE IF EXISTS {table}")],
        }
    }

    /// Also runs `drop` (e.g. `DROP TYPE mood`), after dropping the table.
    pub fn then(mut self, drop: impl Into<String>) -> TableGuard {
        self.statements.push(drop.into());
        self
    }
}

impl Drop for TableGuard {
    fn drop(&mut self) {
        if matches!(self.db, Db::Sqlite(_)) {
            return;
        }
        if let Some(mut conn) = self.db.try_connect(Duration::from_secs(5)) {
            for sql in &self.statements {
                let _ = conn.try_exec(sql);
            }
        }
    }
}
