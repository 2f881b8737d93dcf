//! API version negotiation: the broker's ranges from ApiVersions, asked once per connection,
//! and for each request the version both sides speak (`Wanted`: the range we can use, and what
//! to tell the user when the broker's does not meet it).

use bytes::Buf;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Request, StrBytes};

use crate::kafka::error::Error;

use super::frames::{decode_guarded, Connection};

/// The versions of one API that we can use, for `Connection::negotiate`.
pub struct Wanted {
    pub api: &'static str,
    pub min: i16,
    pub max: i16,
    /// What a user must run instead, for the error: "v3 or later (Kafka ≥ 0.11)".
    pub needed: &'static str,
}

impl Connection {
    /// The highest version of `R` that both we (the codec, capped at `our_max`) and the broker
    /// support, or None when the ranges do not meet.
    pub fn version<R: Request>(&self, our_max: i16) -> Option<i16> {
        let (broker_min, broker_max) = *self.versions.get(&R::KEY)?;
        let max = broker_max.min(our_max).min(R::VERSIONS.max);
        let min = broker_min.max(R::VERSIONS.min);
        (min <= max).then_some(max)
    }

    /// The version of `R` to use: the highest both sides support, if it is at least `want.min`;
    /// else an error naming the API and what we need.
    pub fn negotiate<R: Request>(&self, want: &Wanted) -> Result<i16, Error> {
        self.version::<R>(want.max)
            .filter(|&v| v >= want.min)
            .ok_or_else(|| Error::UnsupportedVersion {
                broker: self.addr.clone(),
                api: want.api,
                broker_max: self.versions.get(&R::KEY).map(|&(_, max)| max),
                needed: want.needed,
            })
    }

    /// ApiVersions, tried at the newest version we know (v3), then at v0 when the broker answers
    /// UNSUPPORTED_VERSION. KIP-511 says that answer comes in the v0 layout, but not every
    /// implementation does so (librdkafka's mock cluster does not), so rather than decoding it we
    /// ask again at v0, which every broker understands.
    pub(super) fn negotiate_versions(&mut self) -> Result<(), Error> {
        let mut response = self.api_versions(3)?;
        if response.error_code == ResponseError::UnsupportedVersion.code() {
            response = self.api_versions(0)?;
        }
        if response.error_code != 0 {
            return Err(Error::Broker {
                broker: self.addr.clone(),
                topic: None,
                partition: None,
                code: ResponseError::try_from_code(response.error_code)
                    .unwrap_or(ResponseError::Unknown(response.error_code)),
                message: Some("ApiVersions failed".into()),
            });
        }
        if response.api_keys.is_empty() {
            return Err(Error::protocol(&self.addr, "ApiVersions listed no APIs"));
        }
        self.versions = response
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect();
        Ok(())
    }

    fn api_versions(&mut self, version: i16) -> Result<ApiVersionsResponse, Error> {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("repliqate"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let id = self.write_now(&request, version)?;
        let mut frame = self.read_frame()?;
        // ApiVersions responses always use response header v0, whatever the request version.
        let header = decode_guarded(&self.addr, "response header", || {
            ResponseHeader::decode(&mut frame, 0)
        })?;
        if header.correlation_id != id {
            return Err(Error::protocol(
                &self.addr,
                "ApiVersions response with a wrong correlation id",
            ));
        }
        let error_code = if frame.len() >= 2 {
            (&frame[..2]).get_i16()
        } else {
            -1
        };
        if error_code == ResponseError::UnsupportedVersion.code() {
            return Ok(ApiVersionsResponse::default().with_error_code(error_code));
        }
        decode_guarded(&self.addr, "ApiVersions", || {
            ApiVersionsResponse::decode(&mut frame, version)
        })
    }
}
