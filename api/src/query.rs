//! Query-string access with dockerd's parsing rules (booleans, integers, repeated keys).

use crate::error::ApiError;

/// The decoded `?a=b&c=d` pairs of a request, in order (keys may repeat: `names=a&names=b`).
#[derive(Debug, Clone, Default)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub fn parse(raw: Option<&str>) -> Self {
        let pairs = raw
            .map(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        Query { pairs }
    }

    /// First value of `key` (like Go's `r.Form.Get`).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// First value of `key`, empty values treated as absent.
    pub fn non_empty(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|v| !v.is_empty())
    }

    /// Every value of a repeated key, in order.
    pub fn get_all(&self, key: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A boolean parameter; absent means `default`.
    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool, ApiError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => parse_bool(key, v),
        }
    }

    /// A boolean parameter; absent or empty is false.
    pub fn bool(&self, key: &str) -> Result<bool, ApiError> {
        self.bool_or(key, false)
    }

    /// An integer parameter; absent or empty is `None`.
    pub fn i64(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.non_empty(key) {
            None => Ok(None),
            Some(v) => v.trim().parse().map(Some).map_err(|_| {
                ApiError::invalid_argument(format!(
                    "invalid value for query parameter '{key}': {v:?} is not an integer"
                ))
            }),
        }
    }
}

/// Booleans as Go's `strconv.ParseBool` reads them, plus "" as false.
pub fn parse_bool(key: &str, value: &str) -> Result<bool, ApiError> {
    match value {
        "1" | "t" | "T" | "true" | "True" | "TRUE" => Ok(true),
        "" | "0" | "f" | "F" | "false" | "False" | "FALSE" => Ok(false),
        other => Err(ApiError::invalid_argument(format!(
            "invalid boolean value {other:?} for query parameter '{key}': use 1, true, 0 or false"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_follow_go_parse_bool() {
        for t in ["1", "true", "True", "TRUE", "t"] {
            assert!(parse_bool("all", t).unwrap(), "{t}");
        }
        for f in ["", "0", "false", "False", "FALSE", "f"] {
            assert!(!parse_bool("all", f).unwrap(), "{f}");
        }
        for bad in ["yes", "no", "2", " true", "on"] {
            let e = parse_bool("all", bad).unwrap_err();
            assert_eq!(e.status().as_u16(), 400);
            assert!(e.message.contains("'all'"), "{}", e.message);
        }
    }

    #[test]
    fn query_reads_repeated_and_encoded_values() {
        let q = Query::parse(Some("names=a%2Fb%3A1&names=c&all=1&force=&n=12&bad=x"));
        assert_eq!(q.get_all("names"), vec!["a/b:1", "c"]);
        assert_eq!(q.get("names"), Some("a/b:1"));
        assert!(q.bool("all").unwrap());
        assert!(!q.bool("force").unwrap());
        assert!(!q.bool("missing").unwrap());
        assert!(q.bool_or("missing", true).unwrap());
        assert_eq!(q.i64("n").unwrap(), Some(12));
        assert_eq!(q.i64("missing").unwrap(), None);
        assert!(q.i64("bad").is_err());
        assert!(q.bool("bad").is_err());
        assert_eq!(q.non_empty("force"), None);
        assert!(Query::parse(None).get("x").is_none());
    }
}
