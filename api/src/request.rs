//! Reading request bodies: JSON with a size cap and clear 400s (used by the create/update
//! endpoints of the later areas).

use bytes::Bytes;
use http_body::Body as HttpBody;
use http_body_util::{BodyExt, Limited};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Largest JSON request body accepted (container create bodies are a few KiB).
pub const MAX_JSON_BODY: usize = 4 << 20;

/// Reads a whole body, refusing more than `limit` bytes.
pub async fn read_body<B>(body: B, limit: usize) -> Result<Bytes, ApiError>
where
    B: HttpBody,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::invalid_argument(
            format!("request body is larger than {limit} bytes: send a smaller JSON document"),
        )),
        Err(e) => Err(ApiError::invalid_argument(format!(
            "cannot read the request body: {e}"
        ))),
    }
}

/// Parses a JSON request body; empty, malformed or mistyped bodies are 400 with serde's
/// position so the client can find the mistake.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid_argument(
            "request body is empty: send a JSON object",
        ));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::invalid_argument(format!("invalid JSON in the request body: {e}")))
}

/// [`read_body`] then [`parse_json`], capped at [`MAX_JSON_BODY`].
pub async fn read_json<T, B>(body: B) -> Result<T, ApiError>
where
    T: DeserializeOwned,
    B: HttpBody,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    parse_json(&read_body(body, MAX_JSON_BODY).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Req {
        #[serde(rename = "Image")]
        image: String,
    }

    #[tokio::test]
    async fn reads_valid_json_and_rejects_the_rest_with_400() {
        let ok: Req = read_json(Full::new(Bytes::from(r#"{"Image":"busybox"}"#)))
            .await
            .unwrap();
        assert_eq!(
            ok,
            Req {
                image: "busybox".into()
            }
        );

        let cases = [
            ("", "request body is empty"),
            ("  \n", "request body is empty"),
            ("{", "invalid JSON in the request body"),
            (r#"{"Image":1}"#, "invalid JSON in the request body"),
        ];
        for (body, want) in cases {
            let e = read_json::<Req, _>(Full::new(Bytes::from(body)))
                .await
                .unwrap_err();
            assert_eq!(e.status().as_u16(), 400, "{body:?}");
            assert!(e.message.starts_with(want), "{body:?}: {}", e.message);
        }
        let e = read_body(Full::new(Bytes::from(vec![b' '; 11])), 10)
            .await
            .unwrap_err();
        assert!(
            e.message
                .starts_with("request body is larger than 10 bytes"),
            "{}",
            e.message
        );
    }
}
