//! Docker's `filters` query parameter: JSON, either `{"name":{"web":true}}` (what the
//! docker CLI sends) or `{"name":["web"]}` (docker-py and the API docs). A key an endpoint
//! does not know is refused, as Docker does.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use serde_json::Value;

use super::error::{ApiError, ApiResult};

/// The query parameters list endpoints take.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    pub filters: Option<String>,
}

#[derive(Debug, Default)]
pub struct Filters(BTreeMap<String, Vec<String>>);

impl Filters {
    /// Parses `raw` and refuses keys outside `allowed`.
    pub fn parse(raw: Option<&str>, allowed: &[&str]) -> ApiResult<Self> {
        let Some(raw) = raw.filter(|r| !r.trim().is_empty()) else {
            return Ok(Self::default());
        };
        let value: Value = serde_json::from_str(raw)
            .map_err(|e| ApiError::bad_request(format!("invalid filters {raw:?}: {e}")))?;
        let Value::Object(map) = value else {
            return Err(ApiError::bad_request(format!(
                "invalid filters {raw:?}: expected a JSON object"
            )));
        };
        let mut filters = BTreeMap::new();
        for (key, values) in map {
            if !allowed.contains(&key.as_str()) {
                return Err(ApiError::bad_request(format!(
                    "invalid filter '{key}' (this endpoint takes: {})",
                    allowed.join(", ")
                )));
            }
            filters.insert(key, values_of(values)?);
        }
        Ok(Self(filters))
    }

    fn get(&self, key: &str) -> Option<&[String]> {
        self.0.get(key).map(Vec::as_slice).filter(|v| !v.is_empty())
    }

    /// True when `key` is not given, or `check` holds for one of its values.
    pub fn any(&self, key: &str, check: impl Fn(&str) -> bool) -> bool {
        self.get(key)
            .is_none_or(|values| values.iter().any(|v| check(v)))
    }

    /// Docker's `label` filter: every given `key` or `key=value` must be on the object.
    pub fn labels(&self, labels: &HashMap<String, String>) -> bool {
        self.get("label").is_none_or(|wanted| {
            wanted.iter().all(|w| match w.split_once('=') {
                Some((key, value)) => labels.get(key).is_some_and(|v| v == value),
                None => labels.contains_key(w.as_str()),
            })
        })
    }

    /// The `id` filter: a prefix of the id.
    pub fn id(&self, id: &str) -> bool {
        self.any("id", |v| id.starts_with(v))
    }
}

fn values_of(values: Value) -> ApiResult<Vec<String>> {
    match values {
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::String(s) => Ok(s),
                other => Err(ApiError::bad_request(format!(
                    "invalid filter value {other}: expected a string"
                ))),
            })
            .collect(),
        Value::Object(map) => Ok(map
            .into_iter()
            .filter(|(_, on)| on.as_bool().unwrap_or(false))
            .map(|(k, _)| k)
            .collect()),
        Value::String(s) => Ok(vec![s]),
        other => Err(ApiError::bad_request(format!(
            "invalid filter value {other}: expected a list of strings"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_docker_shapes_parse_to_the_same_filters() {
        let allowed = ["name", "label"];
        let cli = Filters::parse(Some(r#"{"label":{"a=b":true}}"#), &allowed).unwrap();
        let py = Filters::parse(Some(r#"{"label":["a=b"]}"#), &allowed).unwrap();
        let labels: HashMap<String, String> = [("a".to_string(), "b".to_string())].into();
        assert!(cli.labels(&labels) && py.labels(&labels));
        assert!(!cli.labels(&HashMap::new()));
        assert!(Filters::parse(None, &allowed)
            .unwrap()
            .labels(&HashMap::new()));
    }

    #[test]
    fn filters_that_do_not_parse_are_refused() {
        let err = Filters::parse(Some(r#"{"colour":["red"]}"#), &["name"]).unwrap_err();
        assert_eq!(err.status, 400);
        assert!(err.message.contains("invalid filter 'colour'"));
        assert_eq!(
            Filters::parse(Some("{"), &["name"]).unwrap_err().status,
            400
        );
    }

    #[test]
    fn label_filters_match_keys_or_key_values() {
        let f = Filters::parse(Some(r#"{"label":["stack"]}"#), &["label"]).unwrap();
        let labels: HashMap<String, String> = [("stack".to_string(), "x".to_string())].into();
        assert!(f.labels(&labels));
        let f = Filters::parse(Some(r#"{"label":["stack=y"]}"#), &["label"]).unwrap();
        assert!(!f.labels(&labels));
    }
}
