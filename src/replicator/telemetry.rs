//! The loop's one place to say what happened: each `Event` is told once, and both exporters
//! hear it (statsd, and the endpoint's `Status`).

use std::sync::Arc;

use crate::event::Event;
use crate::metrics::Statsd;
use crate::status::Status;

pub(super) struct Telemetry {
    statsd: Statsd,
    /// What `/metrics`, `/healthz` and `/readyz` show (shared with the endpoint's thread).
    status: Arc<Status>,
}

impl Telemetry {
    pub fn new(statsd: Statsd, status: Arc<Status>) -> Telemetry {
        Telemetry { statsd, status }
    }

    pub fn emit(&mut self, event: Event<'_>) {
        self.statsd.record(&event);
        self.status.record(&event);
    }
}
