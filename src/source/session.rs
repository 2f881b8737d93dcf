//! The connection a server backend keeps between calls, written once for PostgreSQL and MySQL:
//! each call takes the connection (or opens a new one when there is none) and puts it back only
//! if the call worked. A connection that failed is dropped, never reused, and the next call
//! reconnects. Neither driver is known here: a backend gives the way to open its connection
//! and the work to do on it.

/// A connection kept for the next call, or none after a failure.
pub(crate) struct Session<C> {
    /// `None` after an error: the next fetch connects again.
    conn: Option<C>,
}

impl<C> Session<C> {
    /// Keeps `conn`, the connection opened at start-up, for the first call.
    pub(crate) fn new(conn: C) -> Session<C> {
        Session { conn: Some(conn) }
    }

    /// Takes the connection out (opening it with `open` if there is none) and runs `work` on
    /// it; puts it back only if it worked, so a failed connection is never reused: after any
    /// error (the server's, the connection's, or one `work` returns for its own reasons) it is
    /// dropped, and the next call opens a new one.
    pub(crate) fn run<T, E>(
        &mut self,
        open: impl FnOnce() -> Result<C, E>,
        work: impl FnOnce(&mut C) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut conn = match self.conn.take() {
            Some(conn) => conn,
            None => open()?,
        };
        let result = work(&mut conn);
        if result.is_ok() {
            self.conn = Some(conn);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_that_worked_is_kept() {
        let mut session = Session::new(1);
        let mut opened = 0;
        for _ in 0..3 {
            let got = session.run(
                || {
                    opened += 1;
                    Ok::<_, ()>(2)
                },
                |c| Ok(*c),
            );
            assert_eq!(got, Ok(1));
        }
        assert_eq!(opened, 0);
    }

    #[test]
    fn a_failure_drops_the_connection_and_the_next_call_reconnects() {
        let mut session = Session::new(1);
        assert_eq!(session.run(|| Ok(2), |_| Err::<(), _>("lost")), Err("lost"));
        // Opening fails: nothing is kept, and the call after tries again.
        assert_eq!(session.run(|| Err("refused"), |c| Ok(*c)), Err("refused"));
        assert_eq!(session.run(|| Ok::<_, &str>(3), |c| Ok(*c)), Ok(3));
        assert_eq!(session.run(|| Ok::<_, &str>(4), |c| Ok(*c)), Ok(3));
    }
}
