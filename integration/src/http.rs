//! A small HTTP/1.1 client over any stream (the daemon's unix socket, the registry's TCP
//! port): one request per connection, `Content-Length`, chunked and read-to-close bodies.

use std::io::{BufRead, BufReader, Read, Write};

use crate::error::{HarnessError, IoContext, Result};

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Header names lower-cased, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header called `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Result<serde_json::Value> {
        serde_json::from_slice(&self.body).map_err(|source| HarnessError::Json {
            what: format!("a {} response", self.status),
            source,
        })
    }

    /// Splits a body of JSON lines (pull progress, events) into values.
    pub fn json_lines(&self) -> Result<Vec<serde_json::Value>> {
        serde_json::Deserializer::from_slice(&self.body)
            .into_iter()
            .collect::<std::result::Result<_, _>>()
            .map_err(|source| HarnessError::Json {
                what: "a JSON-lines body".into(),
                source,
            })
    }
}

/// Sends one request on `stream` (`Connection: close`) and reads the whole response.
pub fn request<S: Read + Write>(
    mut stream: S,
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<Response> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let has_type = headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
    if let Some(b) = body {
        if !has_type {
            head.push_str("Content-Type: application/json\r\n");
        }
        head.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    head.push_str("\r\n");
    stream
        .write_all(head.as_bytes())
        .ctx(|| format!("send {method} {path}"))?;
    if let Some(b) = body {
        stream
            .write_all(b)
            .ctx(|| format!("send body of {method} {path}"))?;
    }
    stream.flush().ctx(|| format!("send {method} {path}"))?;
    read_response(BufReader::new(stream), method == "HEAD")
}

/// Parses a response; `head_only` for HEAD requests, whose headers describe no body.
pub fn read_response<R: BufRead>(mut r: R, head_only: bool) -> Result<Response> {
    let status_line = read_line(&mut r)?;
    let mut parts = status_line.splitn(3, ' ');
    let status = match (parts.next(), parts.next()) {
        (Some(v), Some(code)) if v.starts_with("HTTP/1.") => code
            .parse::<u16>()
            .map_err(|_| HarnessError::Http(format!("bad status line {status_line:?}")))?,
        _ => {
            return Err(HarnessError::Http(format!(
                "bad status line {status_line:?}"
            )))
        }
    };
    let mut headers = Vec::new();
    loop {
        let line = read_line(&mut r)?;
        if line.is_empty() {
            break;
        }
        let (k, v) = line
            .split_once(':')
            .ok_or_else(|| HarnessError::Http(format!("bad header line {line:?}")))?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let mut resp = Response {
        status,
        headers,
        body: Vec::new(),
    };
    if head_only || status == 204 || status == 304 || (100..200).contains(&status) {
        return Ok(resp);
    }
    let chunked = resp
        .header("transfer-encoding")
        .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
    if chunked {
        resp.body = read_chunked(&mut r)?;
    } else if let Some(len) = resp.header("content-length") {
        let len: usize = len
            .parse()
            .map_err(|_| HarnessError::Http(format!("bad content-length {len:?}")))?;
        resp.body = vec![0; len];
        r.read_exact(&mut resp.body)
            .ctx(|| "read response body".into())?;
    } else {
        r.read_to_end(&mut resp.body)
            .ctx(|| "read response body".into())?;
    }
    Ok(resp)
}

/// Decodes a chunked body (extensions and trailers are skipped).
pub fn read_chunked<R: BufRead>(r: &mut R) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line = read_line(r)?;
        let size_hex = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|_| HarnessError::Http(format!("bad chunk size line {line:?}")))?;
        if size == 0 {
            // trailers until an empty line
            while !read_line(r)?.is_empty() {}
            return Ok(body);
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..])
            .ctx(|| "read a chunk".into())?;
        if !read_line(r)?.is_empty() {
            return Err(HarnessError::Http("chunk not followed by CRLF".into()));
        }
    }
}

fn read_line<R: BufRead>(r: &mut R) -> Result<String> {
    let mut buf = Vec::new();
    let n = r
        .read_until(b'\n', &mut buf)
        .ctx(|| "read from the connection".into())?;
    if n == 0 {
        return Err(HarnessError::Http(
            "connection closed before the response was complete".into(),
        ));
    }
    while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        buf.pop();
    }
    String::from_utf8(buf).map_err(|_| HarnessError::Http("non-UTF-8 header line".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &[u8]) -> Result<Response> {
        read_response(raw, false)
    }

    #[test]
    fn decodes_chunked_bodies_with_extensions_and_trailers() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n\
            5\r\n{\"a\":\r\n3;ext=1\r\n1}\n\r\n0\r\nX-Trailer: y\r\n\r\n";
        let r = parse(raw).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("CONTENT-TYPE"), Some("application/json"));
        assert_eq!(r.body, b"{\"a\":1}\n");
        assert_eq!(r.json_lines().unwrap().len(), 1);
    }

    #[test]
    fn reads_content_length_and_to_close_bodies() {
        let r = parse(b"HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nnopeEXTRA").unwrap();
        assert_eq!((r.status, r.text().as_str()), (404, "nope"));
        let r = parse(b"HTTP/1.0 200 OK\r\n\r\nuntil close").unwrap();
        assert_eq!(r.text(), "until close");
        let r = parse(b"HTTP/1.1 204 No Content\r\n\r\n").unwrap();
        assert!(r.body.is_empty());
    }

    #[test]
    fn rejects_truncated_and_garbled_responses() {
        assert!(parse(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort").is_err());
        assert!(parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").is_err());
        assert!(parse(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        assert!(parse(b"").is_err());
    }
}
