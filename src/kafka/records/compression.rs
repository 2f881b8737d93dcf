//! `Compression`: the codecs a record batch may be compressed with, their number in the
//! batch's attributes, and the codec's compressors over the records section.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::compression::{self as codec, Compressor, Decompressor};

use super::layout::COMPRESSION_MASK;

/// Evaluates `$body` with `$codec` naming the codec's compressor type for `$compression`.
macro_rules! with_codec {
    ($compression:expr, $codec:ident => $body:expr) => {
        match $compression {
            Compression::None => {
                type $codec = codec::None;
                $body
            }
            Compression::Gzip => {
                type $codec = codec::Gzip;
                $body
            }
            Compression::Snappy => {
                type $codec = codec::Snappy;
                $body
            }
            #[cfg(feature = "lz4")]
            Compression::Lz4 => {
                type $codec = codec::Lz4;
                $body
            }
            #[cfg(feature = "zstd")]
            Compression::Zstd => {
                type $codec = codec::Zstd;
                $body
            }
        }
    };
}

/// Record batch compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    #[cfg(feature = "lz4")]
    Lz4,
    #[cfg(feature = "zstd")]
    Zstd,
}

impl Compression {
    /// The compression a batch's `attributes` name, if we know it.
    pub(super) fn from_attributes(attributes: i16) -> Option<Compression> {
        [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            #[cfg(feature = "lz4")]
            Compression::Lz4,
            #[cfg(feature = "zstd")]
            Compression::Zstd,
        ]
        .into_iter()
        .find(|c| c.attribute() == attributes & COMPRESSION_MASK)
    }

    /// The codec's number in a batch's `attributes`.
    pub(super) fn attribute(self) -> i16 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            #[cfg(feature = "lz4")]
            Compression::Lz4 => 3,
            #[cfg(feature = "zstd")]
            Compression::Zstd => 4,
        }
    }

    /// Appends `records` compressed to `out`.
    pub(super) fn compress(self, records: &[u8], out: &mut BytesMut) -> Result<(), String> {
        with_codec!(self, C => <C as Compressor<BytesMut>>::compress(out, |tmp: &mut BytesMut| {
            tmp.put_slice(records);
            Ok(())
        }))
        .map_err(|e| e.to_string())
    }

    pub(super) fn decompress(self, mut records: Bytes) -> Result<Bytes, String> {
        with_codec!(self, C => <C as Decompressor<Bytes>>::decompress(
            &mut records,
            |plain: &mut Bytes| Ok(std::mem::take(plain)),
        ))
        .map_err(|e| e.to_string())
    }
}
