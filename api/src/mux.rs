//! Docker's multiplexed stream encoding (attach, exec, logs without a tty): each chunk is
//! an 8-byte header `[stream, 0, 0, 0, len as u32 big-endian]` then `len` bytes.

use bytes::{BufMut, Bytes, BytesMut};

/// Header length of one frame.
pub const HEADER_LEN: usize = 8;

/// Encodes one frame (`stream`: 0 stdin, 1 stdout, 2 stderr). Larger inputs are split so
/// no frame exceeds `u32::MAX` bytes.
pub fn frame(stream: u8, data: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(data.len() + HEADER_LEN);
    for chunk in data.chunks(u32::MAX as usize) {
        out.put_slice(&[stream, 0, 0, 0]);
        out.put_u32(chunk.len() as u32);
        out.put_slice(chunk);
    }
    out.freeze()
}

/// Incremental decoder of a multiplexed stream, for clients and tests: feed bytes as they
/// arrive, take whole frames out.
#[derive(Debug, Default)]
pub struct Demuxer {
    buf: BytesMut,
}

impl Demuxer {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame `(stream, payload)`, `None` until one is whole.
    pub fn next_frame(&mut self) -> Option<(u8, Bytes)> {
        if self.buf.len() < HEADER_LEN {
            return None;
        }
        let len = u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]) as usize;
        if self.buf.len() < HEADER_LEN + len {
            return None;
        }
        let stream = self.buf[0];
        let mut whole = self.buf.split_to(HEADER_LEN + len);
        Some((stream, whole.split_off(HEADER_LEN).freeze()))
    }

    /// Bytes held that do not form a whole frame yet.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

/// Decodes a complete multiplexed byte string; `None` if it ends mid-frame.
pub fn demux(bytes: &[u8]) -> Option<Vec<(u8, Bytes)>> {
    let mut d = Demuxer::new();
    d.push(bytes);
    let mut out = Vec::new();
    while let Some(f) = d.next_frame() {
        out.push(f);
    }
    (d.pending() == 0).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_have_dockers_header() {
        assert_eq!(
            &frame(1, b"hi\n")[..],
            &[1, 0, 0, 0, 0, 0, 0, 3, b'h', b'i', b'\n']
        );
        assert_eq!(&frame(2, b"")[..], &[] as &[u8]);
        let big = vec![7u8; 300];
        let f = frame(2, &big);
        assert_eq!(&f[..8], &[2, 0, 0, 0, 0, 0, 1, 44]);
        assert_eq!(f.len(), 308);
    }

    #[test]
    fn demuxer_reassembles_frames_split_anywhere() {
        let mut wire = frame(1, b"out").to_vec();
        wire.extend_from_slice(&frame(2, b"err!"));
        for cut in 0..wire.len() {
            let mut d = Demuxer::new();
            let mut got = Vec::new();
            d.push(&wire[..cut]);
            while let Some(f) = d.next_frame() {
                got.push(f);
            }
            d.push(&wire[cut..]);
            while let Some(f) = d.next_frame() {
                got.push(f);
            }
            assert_eq!(
                got,
                vec![(1, Bytes::from("out")), (2, Bytes::from("err!"))],
                "cut {cut}"
            );
            assert_eq!(d.pending(), 0);
        }
        assert!(demux(&wire[..wire.len() - 1]).is_none());
        assert_eq!(demux(&wire).unwrap().len(), 2);
    }
}
