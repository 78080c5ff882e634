//! The `filters` query parameter: `{"k":["v"]}` or the legacy `{"k":{"v":true}}`.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

use crate::error::ApiError;

/// Parsed filters: key -> values (deduplicated, sorted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    fields: BTreeMap<String, Vec<String>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum FilterValues {
    List(Vec<String>),
    Legacy(BTreeMap<String, bool>),
}

impl Filters {
    /// Parses the raw (already URL-decoded) `filters` value; empty or absent means no filters.
    pub fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        let raw = raw.map(str::trim).unwrap_or("");
        if raw.is_empty() {
            return Ok(Filters::default());
        }
        let parsed: BTreeMap<String, FilterValues> = serde_json::from_str(raw).map_err(|e| {
            ApiError::invalid_argument(format!(
                "invalid filters parameter: {e}; expected JSON such as {{\"label\":[\"key=value\"]}}"
            ))
        })?;
        let mut f = Filters::default();
        for (key, values) in parsed {
            match values {
                FilterValues::List(vs) => vs.into_iter().for_each(|v| f.add(&key, v)),
                // dockerd keeps every key of the legacy map, whatever its boolean
                FilterValues::Legacy(m) => m.into_keys().for_each(|v| f.add(&key, v)),
            }
        }
        Ok(f)
    }

    /// Parses and rejects keys the endpoint does not know, as dockerd does.
    pub fn parse_allowed(raw: Option<&str>, allowed: &[&str]) -> Result<Self, ApiError> {
        let f = Self::parse(raw)?;
        f.validate(allowed)?;
        Ok(f)
    }

    pub fn validate(&self, allowed: &[&str]) -> Result<(), ApiError> {
        match self.fields.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(k) => Err(ApiError::invalid_argument(format!("invalid filter '{k}'"))),
            None => Ok(()),
        }
    }

    pub fn add(&mut self, key: &str, value: impl Into<String>) {
        let values = self.fields.entry(key.to_string()).or_default();
        let value = value.into();
        if let Err(pos) = values.binary_search(&value) {
            values.insert(pos, value);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    pub fn contains(&self, key: &str) -> bool {
        self.fields.contains_key(key)
    }

    /// The values of `key` (empty when absent).
    pub fn get(&self, key: &str) -> &[String] {
        self.fields.get(key).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.fields.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    /// A boolean filter such as `dangling=true`: `None` when absent, 400 when not a boolean.
    pub fn bool(&self, key: &str) -> Result<Option<bool>, ApiError> {
        let mut out = None;
        for v in self.get(key) {
            let b = match v.as_str() {
                "true" | "1" => true,
                "false" | "0" => false,
                other => {
                    return Err(ApiError::invalid_argument(format!(
                        "invalid filter '{key}={other}': use true or false"
                    )))
                }
            };
            out = Some(out.unwrap_or(false) || b);
        }
        Ok(out)
    }

    /// True when every `key` value (`name` or `name=value`) matches `labels`.
    pub fn match_labels(&self, key: &str, labels: &HashMap<String, String>) -> bool {
        self.get(key).iter().all(|want| match want.split_once('=') {
            Some((k, v)) => labels.get(k).is_some_and(|have| have == v),
            None => labels.contains_key(want.as_str()),
        })
    }

    /// The JSON form `{"k":["v"]}` (for passing filters on, e.g. in tests or events).
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.fields).unwrap_or_else(|_| "{}".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_list_and_legacy_forms_alike() {
        let a = Filters::parse(Some(r#"{"label":["a=1","b"],"dangling":["true"]}"#)).unwrap();
        let b = Filters::parse(Some(
            r#"{"label":{"b":true,"a=1":true},"dangling":{"true":true}}"#,
        ))
        .unwrap();
        assert_eq!(a, b);
        assert_eq!(a.get("label"), ["a=1".to_string(), "b".to_string()]);
        assert_eq!(a.bool("dangling").unwrap(), Some(true));
        assert_eq!(a.bool("missing").unwrap(), None);
        assert!(Filters::parse(None).unwrap().is_empty());
        assert!(Filters::parse(Some("")).unwrap().is_empty());
        assert!(Filters::parse(Some("{}")).unwrap().is_empty());
    }

    #[test]
    fn rejects_malformed_json_and_unknown_keys() {
        for bad in ["{", "[]", r#"{"label":"x"}"#, r#"{"label":[1]}"#] {
            let e = Filters::parse(Some(bad)).unwrap_err();
            assert_eq!(e.status().as_u16(), 400, "{bad}");
            assert!(
                e.message.starts_with("invalid filters parameter"),
                "{}",
                e.message
            );
        }
        let e = Filters::parse_allowed(Some(r#"{"nope":["x"]}"#), &["label"]).unwrap_err();
        assert_eq!(e.message, "invalid filter 'nope'");
        assert!(Filters::parse_allowed(Some(r#"{"label":["x"]}"#), &["label"]).is_ok());
        let e = Filters::parse(Some(r#"{"dangling":["maybe"]}"#))
            .unwrap()
            .bool("dangling")
            .unwrap_err();
        assert_eq!(
            e.message,
            "invalid filter 'dangling=maybe': use true or false"
        );
    }

    #[test]
    fn label_matching_needs_every_value() {
        let f = Filters::parse(Some(r#"{"label":["app","tier=web"]}"#)).unwrap();
        let mut labels = HashMap::from([("app".to_string(), "x".to_string())]);
        assert!(!f.match_labels("label", &labels));
        labels.insert("tier".into(), "db".into());
        assert!(!f.match_labels("label", &labels));
        labels.insert("tier".into(), "web".into());
        assert!(f.match_labels("label", &labels));
        assert!(Filters::default().match_labels("label", &HashMap::new()));
        assert_eq!(f.to_json(), r#"{"label":["app","tier=web"]}"#);
    }
}
