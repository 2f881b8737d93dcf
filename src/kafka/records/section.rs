//! `Section`: a record batch written in place, record by record, each value straight into the
//! batch by the caller; a record taken back out again, a value changed in place; and the batch
//! sealed at last.

use bytes::{BufMut, Bytes};

use crate::kafka::error::Error;
use crate::kafka::wire::{get_varint, put_bytes, put_varint, put_varint_in, varint_len};

use super::compression::Compression;
use super::layout::{headers_len, local, record_body_len, BATCH_OVERHEAD};
use super::read::{next_record, read_records};
use super::seal::{compress, Stamp};

/// A record batch being written: room for its header, then its records, each framed as it
/// is appended. `seal` fills in the header. A value is written in place by the caller: the two
/// lengths before it are given the room the previous value's needed, and the value is moved in
/// the rare case that was wrong (its length's varint needs another number of bytes).
#[derive(Debug)]
pub(in crate::kafka) struct Section {
    buf: Vec<u8>,
    count: usize,
    base_timestamp: i64,
    max_timestamp: i64,
    /// The max timestamp before the last record: what `remove_last` goes back to.
    max_before_last: i64,
    /// The last value's length, for guessing the next one's.
    last_value: usize,
}

impl Section {
    /// An empty batch in a buffer of `capacity` bytes (it grows if it must).
    pub fn with_capacity(capacity: usize) -> Section {
        let mut buf = Vec::with_capacity(capacity.max(BATCH_OVERHEAD));
        buf.resize(BATCH_OVERHEAD, 0);
        Section {
            buf,
            count: 0,
            base_timestamp: 0,
            max_timestamp: 0,
            max_before_last: 0,
            last_value: 0,
        }
    }

    /// The batch's size so far, its header included.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn count(&self) -> usize {
        self.count
    }

    /// The timestamp delta of a record at `timestamp` appended next.
    fn timestamp_delta(&self, timestamp: i64) -> i64 {
        if self.count == 0 {
            0
        } else {
            timestamp.wrapping_sub(self.base_timestamp)
        }
    }

    fn counted(&mut self, timestamp: i64) {
        self.max_before_last = self.max_timestamp;
        if self.count == 0 {
            self.base_timestamp = timestamp;
            self.max_timestamp = timestamp;
        } else {
            self.max_timestamp = self.max_timestamp.max(timestamp);
        }
        self.count += 1;
    }

    /// Appends a record of `key` and `headers` whose value `value` appends to the buffer it is
    /// given. When `value` fails, nothing is appended.
    pub fn append<E>(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        headers: &[(String, Bytes)],
        value: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<(), E> {
        let start = self.buf.len();
        let timestamp_delta = self.timestamp_delta(timestamp);
        let offset_delta = self.count as i64;
        let headers_size = headers_len(headers);
        let body = |value: usize| {
            record_body_len(timestamp_delta, offset_delta, key, value, headers_size) as i64
        };
        let length_room = varint_len(body(self.last_value));
        let value_room = varint_len(self.last_value as i64);
        self.buf.resize(start + length_room, 0);
        self.buf.push(0); // attributes
        put_varint(&mut self.buf, timestamp_delta);
        put_varint(&mut self.buf, offset_delta);
        put_bytes(&mut self.buf, key);
        let value_length_at = self.buf.len();
        self.buf.resize(value_length_at + value_room, 0);
        let value_at = self.buf.len();
        if let Err(e) = value(&mut self.buf) {
            self.buf.truncate(start);
            return Err(e);
        }
        let value_len = self.buf.len() - value_at;
        put_varint(&mut self.buf, headers.len() as i64);
        for (k, v) in headers {
            put_bytes(&mut self.buf, Some(k.as_bytes()));
            put_bytes(&mut self.buf, Some(v));
        }
        // The later length first: moving what follows it does not move the earlier one's place.
        fill_varint(&mut self.buf, value_length_at, value_room, value_len as i64);
        fill_varint(&mut self.buf, start, length_room, body(value_len));
        self.last_value = value_len;
        self.counted(timestamp);
        Ok(())
    }

    /// Appends a record whose fields after its offset delta (key, value and headers) are
    /// `fields`, as another batch has them.
    pub fn append_fields(&mut self, timestamp: i64, fields: &[u8]) {
        let timestamp_delta = self.timestamp_delta(timestamp);
        let offset_delta = self.count as i64;
        let body = 1 + varint_len(timestamp_delta) + varint_len(offset_delta) + fields.len();
        put_varint(&mut self.buf, body as i64);
        self.buf.push(0); // attributes
        put_varint(&mut self.buf, timestamp_delta);
        put_varint(&mut self.buf, offset_delta);
        self.buf.extend_from_slice(fields);
        self.counted(timestamp);
    }

    /// The value of the record that starts at byte `start`, to change in place (its length
    /// stays). None when no record with a value starts there.
    pub fn value_mut(&mut self, start: usize) -> Option<&mut [u8]> {
        let records = self.buf.get(start..)?;
        let mut rest = records;
        let (_timestamp_delta, mut fields) = next_record(&mut rest)?;
        let key_len = get_varint(&mut fields)?;
        fields = fields.get(usize::try_from(key_len).unwrap_or(0)..)?;
        let value_len = usize::try_from(get_varint(&mut fields)?).ok()?;
        // `fields` (now the value and the headers) ends where the record ends.
        let at = start + (records.len() - rest.len()) - fields.len();
        self.buf.get_mut(at..at + value_len)
    }

    /// Takes the last record appended, which starts at byte `start`, out again (it goes to
    /// another batch, or none); returns its timestamp and its fields after the offset delta,
    /// for `append_fields`.
    /// It is gone from the batch even when it cannot be read back (which would be our bug).
    pub fn remove_last(&mut self, start: usize) -> Result<(i64, Vec<u8>), Error> {
        let taken =
            read_records(&self.buf[start..], self.base_timestamp).and_then(|records| match records
                .as_slice()
            {
                [last] => Ok((last.timestamp, last.fields.to_vec())),
                _ => Err(local("a batch's last record is not where it was written")),
            });
        self.buf.truncate(start);
        self.count -= 1;
        self.max_timestamp = self.max_before_last;
        taken
    }

    /// Keeps the records before byte `at` (where one starts): `count` of them, whose latest
    /// timestamp is `max_timestamp`.
    pub fn truncate(&mut self, at: usize, count: usize, max_timestamp: i64) {
        self.buf.truncate(at);
        self.count = count;
        self.max_timestamp = max_timestamp;
        self.max_before_last = max_timestamp;
    }

    /// The batch, under `stamp` and compressed with `compression`: header filled in, sealed.
    pub fn seal(self, stamp: Stamp, compression: Compression) -> Result<Bytes, Error> {
        let count = i32::try_from(self.count)
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| local(format!("cannot write a batch of {} records", self.count)))?;
        let mut buf = self.buf;
        let mut header = &mut buf[..BATCH_OVERHEAD];
        header.put_i64(0); // baseOffset
        header.put_i32(0); // batchLength, by `seal`
        header.put_i32(-1); // partitionLeaderEpoch
        header.put_i8(2); // magic
        header.put_u32(0); // crc, by `seal`
        header.put_i16(0); // attributes: no compression, CreateTime, not transactional
        header.put_i32(count - 1); // lastOffsetDelta
        header.put_i64(self.base_timestamp);
        header.put_i64(self.max_timestamp);
        header.put_i64(stamp.producer_id);
        header.put_i16(stamp.epoch);
        header.put_i32(stamp.base_sequence);
        header.put_i32(count);
        compress(buf, compression)
    }
}

/// Writes `v` at `at` of `buf`, over the `room` bytes left for it there: moves what follows
/// when it needs another number of bytes.
fn fill_varint(buf: &mut Vec<u8>, at: usize, room: usize, v: i64) {
    let size = varint_len(v);
    if size != room {
        buf.splice(at..at + room, std::iter::repeat_n(0, size));
    }
    put_varint_in(&mut buf[at..at + size], v);
}
