//! Writing a queue of byte pieces to a socket that may take only part of them, or nothing
//! for now: the pieces of the requests a connection has queued (headers, and record batches
//! shared rather than copied), written with one vectored write where the socket allows.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};

use bytes::{Buf, Bytes};

/// Whether `write_queued` writes to a blocking or a non-blocking stream.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Wait {
    Yes,
    No,
}

/// Writes `queue` front to back, dropping what was written, until it is empty or the writer
/// fails. Without waiting, `WouldBlock` means the rest stays queued for later; so does a write
/// that takes nothing (rustls over a non-blocking socket takes no plaintext while its buffer
/// of ciphertext is full, and says `Ok(0)`), which a blocking writer never does but when broken.
pub(super) fn write_queued(
    out: &mut impl Write,
    queue: &mut VecDeque<Bytes>,
    wait: Wait,
) -> io::Result<()> {
    loop {
        while queue.front().is_some_and(Bytes::is_empty) {
            queue.pop_front();
        }
        if queue.is_empty() {
            return Ok(());
        }
        let slices: Vec<IoSlice<'_>> = queue.iter().take(64).map(|b| IoSlice::new(b)).collect();
        let mut written = match out.write_vectored(&slices) {
            Ok(0) if wait == Wait::No => return Err(io::ErrorKind::WouldBlock.into()),
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        while let Some(front) = queue.front_mut() {
            let n = written.min(front.len());
            front.advance(n);
            written -= n;
            if written == 0 {
                break;
            }
            queue.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes at most `step` bytes per call, from the first buffer only, and is interrupted
    /// every third call: the worst a socket may do.
    struct Trickle {
        written: Vec<u8>,
        step: usize,
        calls: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.calls += 1;
            if self.calls.is_multiple_of(3) {
                return Err(io::ErrorKind::Interrupted.into());
            }
            let n = buf.len().min(self.step);
            self.written.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A scripted stream: each call takes the next step's bytes (at most), from the buffers in
    /// turn, or fails as the step says.
    struct Scripted {
        written: Vec<u8>,
        steps: VecDeque<io::Result<usize>>,
    }

    impl Write for Scripted {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            unreachable!("write_queued writes vectored")
        }
        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            let mut n = self.steps.pop_front().unwrap_or(Ok(usize::MAX))?;
            let mut taken = 0;
            for b in bufs {
                let k = n.min(b.len());
                self.written.extend_from_slice(&b[..k]);
                (n, taken) = (n - k, taken + k);
            }
            Ok(taken)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn queued_bytes_go_out_once_and_in_order_across_blocked_and_partial_writes() {
        let pieces = [
            "head-1",
            "",
            "batch-one",
            "tail-1",
            "head-2",
            "batch-two",
            "tail-2",
        ];
        let all: String = pieces.concat();
        let mut queue: VecDeque<Bytes> = pieces.iter().map(|p| Bytes::from(*p)).collect();
        let mut out = Scripted {
            written: Vec::new(),
            steps: VecDeque::from([
                Ok(3),
                Err(io::ErrorKind::Interrupted.into()),
                Ok(7), // ends inside "batch-one"
                Err(io::ErrorKind::WouldBlock.into()),
            ]),
        };
        let e = write_queued(&mut out, &mut queue, Wait::No).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        assert_eq!(out.written, all.as_bytes()[..10]);
        // rustls with a full buffer takes nothing: not an error without waiting …
        out.steps = VecDeque::from([Ok(5), Ok(0)]);
        let e = write_queued(&mut out, &mut queue, Wait::No).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        assert_eq!(out.written, all.as_bytes()[..15]);
        // … but a broken stream when waiting.
        out.steps = VecDeque::from([Ok(0)]);
        let e = write_queued(&mut out, &mut queue, Wait::Yes).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WriteZero);
        // The rest, piece boundaries and all, exactly once.
        out.steps = VecDeque::from([Ok(6), Ok(9), Ok(1)]);
        write_queued(&mut out, &mut queue, Wait::Yes).unwrap();
        assert_eq!(String::from_utf8_lossy(&out.written), all);
        assert!(queue.is_empty());
    }

    #[test]
    fn vectored_write_survives_partial_and_interrupted_writes() {
        let pieces: [&[u8]; 5] = [
            b"head",
            b"",
            b"first batch",
            b"-",
            b"second batch and the tail",
        ];
        let expected: Vec<u8> = pieces.concat();
        for step in [1, 2, 3, 5, 7, 100] {
            let mut out = Trickle {
                written: Vec::new(),
                step,
                calls: 0,
            };
            write_queued(&mut out, &mut queued(&pieces), Wait::Yes).unwrap();
            assert_eq!(out.written, expected, "step {step}");
        }
        let mut full = Vec::new();
        write_queued(&mut full, &mut queued(&pieces), Wait::Yes).unwrap();
        assert_eq!(full, expected);
        write_queued(&mut full, &mut VecDeque::new(), Wait::Yes).unwrap();
    }

    fn queued(pieces: &[&[u8]]) -> VecDeque<Bytes> {
        pieces.iter().map(|p| Bytes::copy_from_slice(p)).collect()
    }
}
