//! Request bodies: parsed into bollard's models, and refused by name where swarmr would
//! lose something. The body as sent is compared with what swarmr keeps of it (the
//! round trip through swarmr's spec, `spec.rs`): every field that is set in the body and
//! does not come back the same is one swarmr does not support. Fields left at Docker's
//! zero value or default (`false`, `0`, `""`, `{}`, `"Isolation":"default"`) say nothing
//! and pass.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::{ApiError, ApiResult};

/// The keys swarmr reads, as bollard's models spell them. Go's JSON decoding (Docker's)
/// matches keys case-insensitively and clients rely on it (docker-py sends
/// `"Mode": {"replicated": ...}`, the docker CLI `Healthcheck`), serde's does not: a key
/// that matches one of these but for case is respelled before parsing.
const KEYS: &[&str] = &[
    "Name",
    "Labels",
    "TaskTemplate",
    "ContainerSpec",
    "Image",
    "Args",
    "Command",
    "Env",
    "HealthCheck",
    "Test",
    "Interval",
    "Timeout",
    "StartPeriod",
    "Retries",
    "StopGracePeriod",
    "StopSignal",
    "ForceUpdate",
    "RestartPolicy",
    "Condition",
    "Delay",
    "MaxAttempts",
    "Placement",
    "Constraints",
    "Networks",
    "Target",
    "Aliases",
    "Mode",
    "Replicated",
    "Replicas",
    "Global",
    "UpdateConfig",
    "RollbackConfig",
    "Parallelism",
    "FailureAction",
    "Monitor",
    "MaxFailureRatio",
    "Order",
    "EndpointSpec",
    "Ports",
    "Protocol",
    "TargetPort",
    "PublishedPort",
    "PublishMode",
    "Driver",
    "Scope",
    "Internal",
    "Attachable",
    "IPAM",
    "Config",
    "Subnet",
    "Gateway",
    "Options",
    "Role",
    "Availability",
    "Secrets",
    "SecretID",
    "SecretName",
    "Configs",
    "ConfigID",
    "ConfigName",
    "File",
    "UID",
    "GID",
    "Data",
];

/// Values that are Docker's defaults, so setting them asks for nothing.
const DEFAULTS: &[(&str, &str)] = &[("Isolation", "default"), ("Runtime", "container")];

/// Parses a JSON body into `T`, with Docker's 400 for what does not parse.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> ApiResult<(T, Value)> {
    let mut value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON in the request body: {e}")))?;
    respell(&mut value);
    let parsed = serde_json::from_value(value.clone())
        .map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))?;
    Ok((parsed, value))
}

fn respell(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let odd: Vec<(String, &str)> = map
                .keys()
                .filter_map(|k| {
                    let known = KEYS.iter().find(|known| known.eq_ignore_ascii_case(k))?;
                    (k != known).then(|| (k.clone(), *known))
                })
                .collect();
            for (from, to) in odd {
                if let Some(v) = map.remove(&from) {
                    map.insert(to.to_string(), v);
                }
            }
            // Entries of labels and options are the user's words, not keys.
            map.iter_mut()
                .filter(|(k, _)| !is_map(k))
                .for_each(|(_, v)| respell(v));
        }
        Value::Array(items) => items.iter_mut().for_each(respell),
        _ => {}
    }
}

/// Refuses the first field of `sent` that `kept` (what swarmr keeps of it) lacks or holds
/// differently, naming it by its path (`TaskTemplate.ContainerSpec.Hostname`).
pub fn refuse_unsupported(what: &str, sent: &Value, kept: &Value) -> ApiResult<()> {
    match first_lost(sent, kept, "") {
        None => Ok(()),
        Some((path, Lost::Field)) => Err(ApiError::bad_request(format!(
            "{what}: {path} is not supported by swarmr; remove it from the request"
        ))),
        Some((path, Lost::Value(v))) => Err(ApiError::bad_request(format!(
            "{what}: {path} = {v} is not supported by swarmr"
        ))),
    }
}

enum Lost {
    Field,
    Value(String),
}

fn is_empty(key: &str, value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty() || DEFAULTS.contains(&(key, s.as_str())),
        Value::Array(items) => items.is_empty(),
        Value::Object(map) if is_map(key) => map.is_empty(),
        Value::Object(map) => map.iter().all(|(k, v)| is_empty(k, v)),
    }
}

fn same_number(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        // f32 fields (ratios) come back a little off.
        (Some(x), Some(y)) => (x - y).abs() <= 1e-6 * x.abs().max(1.0),
        _ => false,
    }
}

fn first_lost(sent: &Value, kept: &Value, path: &str) -> Option<(String, Lost)> {
    let join = |key: &str| match path.is_empty() {
        true => key.to_string(),
        false => format!("{path}.{key}"),
    };
    match sent {
        Value::Object(map) => {
            for (key, value) in map {
                let leaf = path.rsplit('.').next().unwrap_or(path);
                if is_empty(key, value) && !is_map(leaf) {
                    continue;
                }
                let here = join(key);
                match kept.get(key) {
                    None | Some(Value::Null) => return Some((here, Lost::Field)),
                    Some(other) => {
                        if let Some(lost) = first_lost(value, other, &here) {
                            return Some(lost);
                        }
                    }
                }
            }
            None
        }
        Value::Array(items) => {
            let Some(kept_items) = kept.as_array().filter(|k| k.len() == items.len()) else {
                return Some((path.to_string(), Lost::Value(sent.to_string())));
            };
            items
                .iter()
                .zip(kept_items)
                .enumerate()
                .find_map(|(i, (s, k))| first_lost(s, k, &format!("{path}[{i}]")))
        }
        Value::Number(_) if same_number(sent, kept) => None,
        _ if sent == kept => None,
        _ => Some((path.to_string(), Lost::Value(sent.to_string()))),
    }
}

/// Labels and options are maps whose entries count even when their value is empty.
fn is_map(key: &str) -> bool {
    matches!(key, "Labels" | "Options" | "DriverOpts")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(sent: Value, kept: Value) -> Result<(), String> {
        refuse_unsupported("service", &sent, &kept).map_err(|e| e.message)
    }

    #[test]
    fn a_request_kept_up_to_its_defaults_passes() {
        let sent = json!({"Name": "web", "TaskTemplate": {"ContainerSpec": {
            "Image": "x", "Isolation": "default", "TTY": false, "DNSConfig": {}}}});
        let kept = json!({"Name": "web", "TaskTemplate": {"ContainerSpec": {"Image": "x"}}});
        assert_eq!(check(sent, kept), Ok(()));
    }

    #[test]
    fn a_lost_field_is_named_by_its_path() {
        let sent = json!({"TaskTemplate": {"ContainerSpec": {"Image": "x", "Hostname": "h"}}});
        let kept = json!({"TaskTemplate": {"ContainerSpec": {"Image": "x"}}});
        let err = check(sent, kept).unwrap_err();
        assert!(
            err.contains("TaskTemplate.ContainerSpec.Hostname is not supported"),
            "{err}"
        );
    }

    #[test]
    fn a_changed_value_is_refused_with_the_value() {
        let sent = json!({"EndpointSpec": {"Ports": [{"Protocol": "sctp", "TargetPort": 80}]}});
        let kept = json!({"EndpointSpec": {"Ports": [{"Protocol": "tcp", "TargetPort": 80}]}});
        let err = check(sent, kept).unwrap_err();
        assert!(
            err.contains("EndpointSpec.Ports[0].Protocol = \"sctp\""),
            "{err}"
        );
    }

    #[test]
    fn ratios_that_lose_float_precision_still_match() {
        let sent = json!({"UpdateConfig": {"MaxFailureRatio": 0.1}});
        let kept = json!({"UpdateConfig": {"MaxFailureRatio": 0.1_f32 as f64}});
        assert_eq!(check(sent, kept), Ok(()));
    }

    #[test]
    fn an_empty_label_value_is_still_a_label() {
        let sent = json!({"Labels": {"flag": ""}});
        assert!(check(sent.clone(), json!({})).is_err());
        assert_eq!(check(sent, json!({"Labels": {"flag": ""}})), Ok(()));
    }

    #[test]
    fn keys_match_whatever_their_case_but_label_keys_stay() {
        let body = br#"{"mode":{"replicated":{"Replicas":2}},"Labels":{"mode":"x"}}"#;
        let (spec, sent): (bollard_stubs::models::ServiceSpec, Value) = parse(body).unwrap();
        assert_eq!(spec.mode.unwrap().replicated.unwrap().replicas, Some(2));
        assert_eq!(sent["Labels"]["mode"], "x");
    }

    #[test]
    fn the_cli_spelling_of_healthcheck_parses() {
        let body = br#"{"TaskTemplate":{"ContainerSpec":{"Healthcheck":{"Test":["NONE"]}}}}"#;
        let (spec, _): (bollard_stubs::models::ServiceSpec, Value) = parse(body).unwrap();
        let container = spec.task_template.unwrap().container_spec.unwrap();
        assert_eq!(container.health_check.unwrap().test.unwrap(), vec!["NONE"]);
        assert_eq!(parse::<Value>(b"{").unwrap_err().status, 400);
    }
}
