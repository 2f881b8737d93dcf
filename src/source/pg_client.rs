//! A blocking PostgreSQL client on `tokio-postgres`: the `postgres` crate's design (a small
//! current-thread runtime of its own, driving the connection whenever the caller waits), in
//! the few calls the source makes, and one it could not make: `for_each_row` streams a whole
//! batch through one `block_on`. The `postgres` crate entered its runtime once per row (setting
//! its context, seeding its RNG, cloning wakers), which was a tenth of a PostgreSQL run's CPU.
//!
//! No async code leaves this module: every method blocks until the server has answered.

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::runtime::Runtime;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::types::ToSql;
use tokio_postgres::{AsyncMessage, Config, Error, Row, Socket, Statement};

/// One session. Dropping it ends the session as the protocol asks (a Terminate message), so the
/// server does not log an unexpected end of file.
pub(super) struct Client {
    runtime: Runtime,
    /// Only `Drop` takes it.
    client: Option<tokio_postgres::Client>,
    connection: Box<dyn Drive + Send>,
}

/// The connection's half of the protocol, whatever its stream (TCP or TLS).
trait Drive {
    fn poll_message(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<AsyncMessage, Error>>>;
}

impl<S, T> Drive for tokio_postgres::Connection<S, T>
where
    S: AsyncRead + AsyncWrite + Unpin,
    T: AsyncRead + AsyncWrite + Unpin,
{
    fn poll_message(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<AsyncMessage, Error>>> {
        tokio_postgres::Connection::poll_message(self, cx)
    }
}

impl Client {
    /// Connects as `config` says, over `tls`. `Err(None)`: the runtime could not be built.
    pub fn connect<T>(config: &Config, tls: T) -> Result<Client, ConnectError>
    where
        T: MakeTlsConnect<Socket> + 'static + Send,
        T::Stream: Send + 'static,
        T::TlsConnect: Send,
        <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
    {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ConnectError::Runtime)?;
        let (client, connection) = runtime
            .block_on(config.connect(tls))
            .map_err(ConnectError::Postgres)?;
        Ok(Client {
            runtime,
            client: Some(client),
            connection: Box::new(connection),
        })
    }

    /// The runtime, the connection and the client, apart, so that the client's futures can be
    /// driven with the connection.
    fn parts(&mut self) -> (&Runtime, &mut (dyn Drive + Send), &tokio_postgres::Client) {
        let client = self
            .client
            .as_ref()
            .expect("the client is only taken by Drop");
        (&self.runtime, &mut *self.connection, client)
    }

    pub fn prepare(&mut self, query: &str) -> Result<Statement, Error> {
        let (runtime, connection, client) = self.parts();
        block_on(runtime, connection, client.prepare(query))
    }

    pub fn batch_execute(&mut self, query: &str) -> Result<(), Error> {
        let (runtime, connection, client) = self.parts();
        block_on(runtime, connection, client.batch_execute(query))
    }

    pub fn query(
        &mut self,
        query: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, Error> {
        let (runtime, connection, client) = self.parts();
        block_on(runtime, connection, client.query(query, params))
    }

    pub fn query_one(&mut self, query: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row, Error> {
        let (runtime, connection, client) = self.parts();
        block_on(runtime, connection, client.query_one(query, params))
    }

    pub fn query_opt(
        &mut self,
        query: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, Error> {
        let (runtime, connection, client) = self.parts();
        block_on(runtime, connection, client.query_opt(query, params))
    }

    /// Runs `statement` and hands each row to `row` as it arrives, all under one `block_on`.
    /// Stops at the first error of `row` (`Ok(Err(e))`); `Err` is the server's or the
    /// connection's. Returns how many rows `row` took.
    pub fn for_each_row<E>(
        &mut self,
        statement: &Statement,
        params: &[&(dyn ToSql + Sync)],
        mut row: impl FnMut(&Row) -> Result<(), E>,
    ) -> Result<Result<usize, E>, Error> {
        let (runtime, connection, client) = self.parts();
        let rows = async move {
            let mut rows = pin!(client.query_raw(statement, params.iter().copied()).await?);
            let mut count = 0;
            // Rows the connection has read are taken without going back to the runtime.
            while let Some(r) = poll_fn(|cx| rows.as_mut().poll_next(cx)).await {
                if let Err(e) = row(&r?) {
                    return Ok(Err(e));
                }
                count += 1;
            }
            Ok(Ok(count))
        };
        block_on(runtime, connection, rows)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        // Without its client, the connection sends Terminate and ends once driven.
        drop(self.client.take());
        let connection = &mut self.connection;
        self.runtime.block_on(poll_fn(|cx| loop {
            match connection.poll_message(cx) {
                Poll::Ready(Some(Ok(_))) => {}
                Poll::Ready(None | Some(Err(_))) => return Poll::Ready(()),
                Poll::Pending => return Poll::Pending,
            }
        }));
    }
}

/// Why `Client::connect` failed.
pub(super) enum ConnectError {
    Postgres(Error),
    /// The runtime (its I/O driver) could not be set up: no file descriptors left, say.
    Runtime(std::io::Error),
}

/// Runs `future` to completion on `runtime`, driving `connection` meanwhile: its messages reach
/// the client's futures through channels. Notices are logged; notifications are not listened
/// for and go.
fn block_on<T>(
    runtime: &Runtime,
    connection: &mut (dyn Drive + Send),
    future: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    let mut future = pin!(future);
    runtime.block_on(poll_fn(|cx| {
        loop {
            match connection.poll_message(cx) {
                Poll::Ready(Some(Ok(AsyncMessage::Notice(notice)))) => {
                    log::info!("postgresql: {}: {}", notice.severity(), notice.message());
                }
                Poll::Ready(Some(Ok(_))) => {}
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(e)),
                // Closed: the future learns it from its channel.
                Poll::Ready(None) | Poll::Pending => break,
            }
        }
        future.as_mut().poll(cx)
    }))
}
