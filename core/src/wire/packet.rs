//! Packet framing: 4-byte headers (3-byte length, 1-byte sequence id), payloads of 16 MiB and
//! more split across packets and reassembled, and the `max_allowed_packet` limit.
//!
//! Output is written in place into a caller-owned `BytesMut`: [`PacketOut::begin`] reserves a
//! header, the caller appends the payload, [`PacketOut::finish`] patches the length (and splits
//! in the rare case the payload reached 16 MiB). No allocation per packet.

use super::consts::MAX_PACKET_PAYLOAD;
use bytes::{Buf, Bytes, BytesMut};

/// One logical packet: payload (reassembled if it was split) and the sequence id of its
/// last physical packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    pub seq: u8,
    pub payload: Bytes,
}

/// Why an input stream cannot be framed any further.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The logical payload exceeds `max_allowed_packet`.
    TooLarge { len: usize, max: usize },
}

/// The payload length announced by a packet header (its first three bytes).
pub fn payload_len(header: &[u8]) -> usize {
    u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize
}

/// Output buffer capacity kept once its bytes are written: enough for any ordinary answer, so
/// the hot path reuses one buffer; a buffer that one big result grew past this is let go, so
/// that idle connections do not each hold a large one.
pub const OUT_BUFFER_KEEP: usize = 64 * 1024;

/// Empties an output buffer whose bytes were written (see [`OUT_BUFFER_KEEP`]).
pub fn clear_written(out: &mut BytesMut) {
    if out.capacity() > OUT_BUFFER_KEEP {
        *out = BytesMut::new();
    } else {
        out.clear();
    }
}

/// Reassembles logical packets from a byte stream.
#[derive(Debug)]
pub struct PacketDecoder {
    buf: BytesMut,
    /// Fragments of a split payload, collected until its final (< 16 MiB) packet.
    partial: Option<BytesMut>,
    max_payload: usize,
}

impl PacketDecoder {
    /// `max_payload` is the largest logical payload accepted (`max_allowed_packet`).
    pub fn new(max_payload: usize) -> Self {
        PacketDecoder {
            buf: BytesMut::with_capacity(16 * 1024),
            partial: None,
            max_payload,
        }
    }

    pub fn max_payload(&self) -> usize {
        self.max_payload
    }

    pub fn set_max_payload(&mut self, max_payload: usize) {
        self.max_payload = max_payload;
    }

    /// Appends bytes from the network.
    pub fn extend(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Takes the raw bytes received but not yet framed (after an SSLRequest they are the
    /// start of the client's TLS handshake, not packets).
    pub fn take_unframed(&mut self) -> BytesMut {
        self.partial = None;
        self.buf.split()
    }

    /// Bytes received but not yet framed.
    pub fn buffered(&self) -> usize {
        self.buf.len() + self.partial.as_ref().map_or(0, |p| p.len())
    }

    /// Is a payload of 16 MiB or more half reassembled? Frames are then not read in place.
    pub fn is_mid_packet(&self) -> bool {
        self.partial.is_some()
    }

    /// The frame starting `offset` bytes into the unframed bytes, when it arrived whole: its
    /// sequence id and payload, left in place. A relay reads a run of frames this way and
    /// takes them at once with [`Self::take_front`] instead of one `Bytes` per packet.
    pub fn frame_at(&mut self, offset: usize) -> Option<(u8, &[u8])> {
        let head = self.buf.get(offset..offset + 4)?;
        let (len, seq) = (payload_len(head), head[3]);
        let end = offset + 4 + len;
        if self.buf.len() < end {
            self.buf.reserve(end - self.buf.len());
            return None;
        }
        Some((seq, &self.buf[offset + 4..end]))
    }

    /// Takes the first `n` unframed bytes: whole frames found with [`Self::frame_at`].
    pub fn take_front(&mut self, n: usize) -> Bytes {
        self.buf.split_to(n).freeze()
    }

    /// The next complete logical packet, `Ok(None)` when more bytes are needed.
    ///
    /// # Errors
    /// [`FrameError::TooLarge`] as soon as the announced length passes the limit, before the
    /// payload is buffered: memory stays bounded by the limit.
    pub fn next_packet(&mut self) -> Result<Option<Packet>, FrameError> {
        loop {
            if self.buf.len() < 4 {
                return Ok(None);
            }
            let len = payload_len(&self.buf);
            let seq = self.buf[3];
            let so_far = self.partial.as_ref().map_or(0, |p| p.len());
            if so_far + len > self.max_payload {
                return Err(FrameError::TooLarge {
                    len: so_far + len,
                    max: self.max_payload,
                });
            }
            if self.buf.len() < 4 + len {
                self.buf.reserve(4 + len - self.buf.len());
                return Ok(None);
            }
            // Split off header and payload together, then skip the header on the frozen
            // bytes: cheaper than advancing the growable buffer.
            let mut chunk = self.buf.split_to(4 + len).freeze();
            chunk.advance(4);
            if len == MAX_PACKET_PAYLOAD {
                self.partial
                    .get_or_insert_with(BytesMut::new)
                    .extend_from_slice(&chunk);
                continue;
            }
            let payload = match self.partial.take() {
                Some(mut p) => {
                    p.extend_from_slice(&chunk);
                    p.freeze()
                }
                None => chunk,
            };
            return Ok(Some(Packet { seq, payload }));
        }
    }
}

/// Writes packets into a caller-owned buffer, tracking the sequence id.
#[derive(Debug, Default, Clone, Copy)]
pub struct PacketOut {
    pub seq: u8,
}

impl PacketOut {
    pub fn new(seq: u8) -> Self {
        PacketOut { seq }
    }

    /// Reserves a header; returns the payload's start offset for [`Self::finish`].
    pub fn begin(&self, out: &mut BytesMut) -> usize {
        out.extend_from_slice(&[0, 0, 0, 0]);
        out.len()
    }

    /// Patches the header written by [`Self::begin`], splitting payloads of 16 MiB or more.
    pub fn finish(&mut self, out: &mut BytesMut, start: usize) {
        let len = out.len() - start;
        if len < MAX_PACKET_PAYLOAD {
            let h = &mut out[start - 4..start];
            h[..3].copy_from_slice(&(len as u32).to_le_bytes()[..3]);
            h[3] = self.seq;
            self.seq = self.seq.wrapping_add(1);
            return;
        }
        // Rare: re-frame the payload into 16 MiB pieces (ending with a shorter, maybe empty one).
        let payload = out.split_off(start);
        out.truncate(start - 4);
        let mut rest = &payload[..];
        loop {
            let n = rest.len().min(MAX_PACKET_PAYLOAD);
            out.extend_from_slice(&(n as u32).to_le_bytes()[..3]);
            out.extend_from_slice(&[self.seq]);
            self.seq = self.seq.wrapping_add(1);
            out.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            if n < MAX_PACKET_PAYLOAD {
                break;
            }
        }
    }

    /// Writes a whole payload as one logical packet.
    pub fn write(&mut self, out: &mut BytesMut, payload: &[u8]) {
        let start = self.begin(out);
        out.extend_from_slice(payload);
        self.finish(out, start);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn written_buffers_keep_ordinary_capacity_and_let_big_ones_go() {
        let mut out = BytesMut::with_capacity(1024);
        out.extend_from_slice(&[1; 100]);
        clear_written(&mut out);
        assert!(out.is_empty());
        assert!(out.capacity() >= 1024, "an ordinary buffer is reused");
        out.extend_from_slice(&vec![2; OUT_BUFFER_KEEP + 1]);
        clear_written(&mut out);
        assert!(out.is_empty());
        assert!(out.capacity() <= OUT_BUFFER_KEEP, "a big buffer is let go");
    }

    fn frame(payload: &[u8], seq: u8) -> BytesMut {
        let mut out = BytesMut::new();
        PacketOut::new(seq).write(&mut out, payload);
        out
    }

    #[test]
    fn small_packet_round_trips_byte_by_byte() {
        let wire = frame(b"\x03select 1", 0);
        assert_eq!(&wire[..4], &[9, 0, 0, 0]);
        let mut d = PacketDecoder::new(1 << 20);
        for (i, b) in wire.iter().enumerate() {
            let got = d.next_packet().unwrap();
            assert!(got.is_none(), "early packet at {i}");
            d.extend(&[*b]);
        }
        let p = d.next_packet().unwrap().unwrap();
        assert_eq!(&p.payload[..], b"\x03select 1");
        assert_eq!(p.seq, 0);
    }

    #[test]
    fn sixteen_mib_payloads_split_and_reassemble() {
        for extra in [0usize, 1, 100] {
            let payload: Vec<u8> = (0..MAX_PACKET_PAYLOAD + extra).map(|i| i as u8).collect();
            let wire = frame(&payload, 7);
            // two packets: 16 MiB - 1, then the rest (possibly empty)
            assert_eq!(wire.len(), payload.len() + 8);
            let mut d = PacketDecoder::new(64 << 20);
            d.extend(&wire);
            let p = d.next_packet().unwrap().unwrap();
            assert_eq!(p.payload.len(), payload.len());
            assert!(p.payload[..] == payload[..]);
            assert_eq!(p.seq, 8);
            assert!(d.next_packet().unwrap().is_none());
        }
    }

    #[test]
    fn oversize_is_refused_before_buffering() {
        let mut d = PacketDecoder::new(10);
        d.extend(&[11, 0, 0, 0]);
        assert_eq!(
            d.next_packet(),
            Err(FrameError::TooLarge { len: 11, max: 10 })
        );
    }

    proptest! {
        #[test]
        fn any_split_of_a_stream_yields_the_same_packets(
            payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..50), 1..6),
            cut in 1usize..17,
        ) {
            let mut wire = BytesMut::new();
            let mut out = PacketOut::new(0);
            for p in &payloads { out.write(&mut wire, p); }
            let mut d = PacketDecoder::new(1 << 20);
            let mut got = Vec::new();
            for chunk in wire.chunks(cut) {
                d.extend(chunk);
                while let Some(p) = d.next_packet().unwrap() { got.push(p.payload.to_vec()); }
            }
            prop_assert_eq!(got, payloads);
        }
    }
}
