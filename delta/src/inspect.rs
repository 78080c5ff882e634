//! Summary of a delta without the base (for `skiff delta inspect`).

use std::io::{self, Read};

use crate::error::{DeltaError, Result};
use crate::format::{self, op, read_exact, read_u8, read_varint, Header};

/// What a delta contains.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeltaInfo {
    pub version: u8,
    /// Size and `sha256:<hex>` diff_id of the layer the delta rebuilds.
    pub target_size: u64,
    pub target_diff_id: String,
    /// `sha256:<hex>` diff_ids of the base layers it was made against, bottom to top.
    pub base_diff_ids: Vec<String>,
    /// Bytes stored literally (tar headers, new file content).
    pub literal_bytes: u64,
    /// Files copied from the base, and their bytes.
    pub copies: u64,
    pub copied_bytes: u64,
    /// Files rebuilt by bsdiff / zstd-with-prefix from a base file, and payload bytes.
    pub bsdiff: u64,
    pub zref: u64,
    pub patched_bytes: u64,
    pub payload_bytes: u64,
    /// Stretches copied from base layer tars (unchanged entries), and their bytes.
    pub ranges: u64,
    pub range_bytes: u64,
}

/// Reads and checks the structure of a whole delta.
pub fn inspect(delta: &mut dyn Read) -> Result<DeltaInfo> {
    let header = Header::read(delta)?;
    let mut info = DeltaInfo {
        version: header.version,
        target_size: header.target_size,
        target_diff_id: format!("sha256:{}", hex::encode(header.target_sha256)),
        base_diff_ids: header
            .base_diff_ids
            .iter()
            .map(|d| format!("sha256:{}", hex::encode(d)))
            .collect(),
        ..DeltaInfo::default()
    };
    let mut body = zstd::stream::read::Decoder::new(delta)
        .map_err(DeltaError::io("starting the zstd decoder"))?
        .single_frame();
    body.window_log_max(format::MAX_WINDOW_LOG)
        .map_err(DeltaError::io("configuring the zstd decoder"))?;
    let mut produced: u64 = 0;
    let mut add = |n: u64| -> Result<u64> {
        produced = produced
            .checked_add(n)
            .filter(|p| *p <= header.target_size)
            .ok_or_else(|| DeltaError::corrupt("ops produce more than the target size"))?;
        Ok(n)
    };
    loop {
        match read_u8(&mut body, "op code")? {
            op::END => break,
            op::RAW => {
                let len = add(read_varint(&mut body, "raw length")?)?;
                skip(&mut body, len, "raw data")?;
                info.literal_bytes += len;
            }
            op::COPY => {
                skip_ref(&mut body, header.base_diff_ids.len())?;
                info.copied_bytes += add(read_varint(&mut body, "copy length")?)?;
                info.copies += 1;
            }
            code @ (op::BSDIFF | op::ZREF) => {
                skip_ref(&mut body, header.base_diff_ids.len())?;
                read_varint(&mut body, "base length")?;
                info.patched_bytes += add(read_varint(&mut body, "target length")?)?;
                let payload = read_varint(&mut body, "payload length")?;
                skip(&mut body, payload, "payload")?;
                info.payload_bytes += payload;
                if code == op::BSDIFF {
                    info.bsdiff += 1;
                } else {
                    info.zref += 1;
                }
            }
            op::RANGE => {
                let layer = read_varint(&mut body, "range layer")?;
                if layer >= header.base_diff_ids.len() as u64 {
                    return Err(DeltaError::corrupt(format!(
                        "range references base layer {layer} which the header does not list"
                    )));
                }
                read_varint(&mut body, "range skip")?;
                info.range_bytes += add(read_varint(&mut body, "range length")?)?;
                info.ranges += 1;
            }
            op::CHECK => {
                let mut d = [0u8; format::CHECK_LEN];
                read_exact(&mut body, &mut d, "check digest")?;
            }
            other => return Err(DeltaError::corrupt(format!("unknown op code {other}"))),
        }
    }
    if produced != header.target_size {
        return Err(DeltaError::corrupt(format!(
            "ops produce {produced} bytes but the header says {}",
            header.target_size
        )));
    }
    Ok(info)
}

fn skip_ref(body: &mut dyn Read, layers: usize) -> Result<()> {
    let layer = read_varint(body, "base layer")?;
    if layer >= layers as u64 {
        return Err(DeltaError::corrupt(format!(
            "op references base layer {layer} which the header does not list"
        )));
    }
    let len = read_varint(body, "base path length")?;
    if len > format::MAX_PATH_LEN {
        return Err(DeltaError::corrupt("base path too long"));
    }
    skip(body, len, "base path")
}

fn skip(body: &mut dyn Read, len: u64, what: &str) -> Result<()> {
    let n =
        io::copy(&mut body.take(len), &mut io::sink()).map_err(|e| format::read_error(what, e))?;
    if n != len {
        return Err(DeltaError::corrupt(format!(
            "truncated while reading the {what}"
        )));
    }
    Ok(())
}

/// The base diff_ids (`sha256:<hex>`, bottom to top) a delta was made against, read from
/// its header alone, so a caller can refuse a wrong base before applying anything.
/// `head` is the start of the delta; `Ok(None)` when it is too short to hold the header.
pub fn header_base_diff_ids(head: &[u8]) -> Result<Option<Vec<String>>> {
    let mut r = head;
    match Header::read(&mut r) {
        Ok(h) => Ok(Some(
            h.base_diff_ids
                .iter()
                .map(|d| format!("sha256:{}", hex::encode(d)))
                .collect(),
        )),
        Err(DeltaError::Corrupt(m)) if m.contains("truncated") => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod header_tests {
    use super::*;

    #[test]
    fn base_diff_ids_come_from_the_header_alone() {
        let h = Header {
            version: format::VERSION,
            target_size: 5,
            target_sha256: [9; 32],
            base_diff_ids: vec![[1; 32], [2; 32]],
        };
        let mut bytes = Vec::new();
        h.write(&mut bytes).unwrap();
        let ids = header_base_diff_ids(&bytes).unwrap().unwrap();
        assert_eq!(
            ids,
            vec![
                format!("sha256:{}", "01".repeat(32)),
                format!("sha256:{}", "02".repeat(32))
            ]
        );
        assert_eq!(header_base_diff_ids(&bytes[..20]).unwrap(), None);
        assert!(header_base_diff_ids(b"rs\x026....").is_err());
    }
}
