//! Errors logged once per incident, not once per retry: the first error of a dependency, and
//! again only when what it needs changes (an outage that turns into a refusal an operator must
//! fix, such as a password rotated on one side, or back); every other retry is at debug level.
//! The end of an incident is logged with how long it lasted.

use std::time::Instant;

use super::error::Error;
use super::telemetry::Telemetry;
use crate::event::Event;

/// The dependency currently failing, if any.
#[derive(Default)]
pub(super) struct Incidents {
    current: Option<Incident>,
}

/// A dependency failing since `since`; `needs_operator`: what the last error needs.
struct Incident {
    component: &'static str,
    needs_operator: bool,
    since: Instant,
}

impl Incidents {
    /// Logs `e` if it starts an incident or changes what the incident needs, and reports it.
    pub fn report(&mut self, telemetry: &mut Telemetry, e: &Error) {
        telemetry.emit(Event::Failed {
            component: e.component(),
            error: &e.to_string(),
        });
        let needs_operator = e.needs_operator();
        match &mut self.current {
            Some(incident)
                if incident.component == e.component()
                    && incident.needs_operator == needs_operator =>
            {
                log::debug!(component = e.component(); "still failing: {e}")
            }
            Some(incident) if incident.component == e.component() => {
                log::error!(component = e.component(), needs_operator = needs_operator; "{e} (retrying until it recovers)");
                incident.needs_operator = needs_operator;
            }
            _ => {
                log::error!(component = e.component(), needs_operator = needs_operator; "{e} (retrying until it recovers)");
                self.current = Some(Incident {
                    component: e.component(),
                    needs_operator,
                    since: Instant::now(),
                });
            }
        }
    }

    /// A step succeeded: the incident, if there was one, is over.
    pub fn recovered(&mut self, telemetry: &mut Telemetry) {
        if let Some(incident) = self.current.take() {
            telemetry.emit(Event::Recovered);
            let outage = incident.since.elapsed();
            log::warn!(
                component = incident.component,
                outage_ms = outage.as_millis();
                "{}: recovered after {:.1}s",
                incident.component,
                outage.as_secs_f64()
            );
        }
    }
}
