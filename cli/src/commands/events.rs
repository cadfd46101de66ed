//! `swarmr events`: the cluster's changes as they commit, as `docker events` prints them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use serde_json::json;
use swarmr_proto::{ClusterEvent, WatchEventsRequest};

use crate::observe_args::EventsArgs;

pub async fn run(host: &str, args: EventsArgs) -> anyhow::Result<()> {
    let mut request = request(&args.filters)?;
    if let Some(since) = &args.since {
        request.since_millis = since_millis(since, SystemTime::now())?;
    }
    let mut control = crate::client::control(host).await?;
    let mut stream = control.watch_events(request).await?.into_inner();
    while let Some(event) = stream.message().await? {
        match args.format.as_str() {
            "json" => println!("{}", docker_json(&event)),
            _ => println!("{}", text(&event)),
        }
    }
    Ok(())
}

fn request(filters: &[String]) -> anyhow::Result<WatchEventsRequest> {
    let mut request = WatchEventsRequest::default();
    for filter in filters {
        match filter.split_once('=') {
            Some(("type", value)) if !value.is_empty() => request.types.push(value.into()),
            Some(("name", value)) if !value.is_empty() => request.names.push(value.into()),
            _ => bail!(
                "invalid filter {filter:?}: use type=service|node|network|task|secret|config or name=NAME"
            ),
        }
    }
    Ok(request)
}

/// `--since`: a duration back from `now`, an RFC 3339 time, or unix seconds.
fn since_millis(text: &str, now: SystemTime) -> anyhow::Result<i64> {
    let at = if let Ok(seconds) = text.parse::<u64>() {
        UNIX_EPOCH + Duration::from_secs(seconds)
    } else if let Ok(time) = humantime::parse_rfc3339_weak(text) {
        time
    } else {
        let back = humantime::parse_duration(text).with_context(|| {
            format!(
                "invalid --since {text:?}: use a duration (10m), an RFC 3339 time or unix seconds"
            )
        })?;
        now.checked_sub(back).unwrap_or(UNIX_EPOCH)
    };
    let millis = at
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    // 0 means "live only": the epoch itself still replays everything kept.
    Ok(i64::try_from(millis).unwrap_or(i64::MAX).max(1))
}

/// Docker's JSON message (`docker events --format json`).
fn docker_json(event: &ClusterEvent) -> serde_json::Value {
    let attributes: std::collections::BTreeMap<_, _> = event.actor_attributes.iter().collect();
    json!({
        "Type": event.r#type,
        "Action": event.action,
        "Actor": {"ID": event.actor_id, "Attributes": attributes},
        "scope": "swarm",
        "time": event.time_nano / 1_000_000_000,
        "timeNano": event.time_nano,
    })
}

/// Docker's line: `TIME TYPE ACTION ID (k=v, ...)`.
fn text(event: &ClusterEvent) -> String {
    let nanos = u64::try_from(event.time_nano).unwrap_or(0);
    let time = UNIX_EPOCH + Duration::from_nanos(nanos);
    let mut attributes: Vec<String> = event
        .actor_attributes
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    attributes.sort();
    format!(
        "{} {} {} {} ({})",
        humantime::format_rfc3339_nanos(time),
        event.r#type,
        event.action,
        event.actor_id,
        attributes.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_and_since_parse_or_say_what_is_wrong() {
        let r = request(&["type=service".into(), "name=web".into()]).unwrap();
        assert_eq!(
            (r.types, r.names),
            (vec!["service".into()], vec!["web".into()])
        );
        let err = request(&["colour=red".into()]).unwrap_err().to_string();
        assert!(err.contains("invalid filter"), "{err}");
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        assert_eq!(since_millis("10s", now).unwrap(), 990_000);
        assert_eq!(since_millis("500", now).unwrap(), 500_000);
        assert!(since_millis("yesterday-ish", now).is_err());
    }

    #[test]
    fn an_event_prints_as_docker_prints_it() {
        let event = ClusterEvent {
            r#type: "service".into(),
            action: "update".into(),
            actor_id: "abc".into(),
            actor_attributes: [("name", "web"), ("replicas.new", "3")]
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .into(),
            time_nano: 1_500_000_000,
        };
        assert_eq!(
            text(&event),
            "1970-01-01T00:00:01.500000000Z service update abc (name=web, replicas.new=3)"
        );
        let json = docker_json(&event);
        assert_eq!(json["Actor"]["Attributes"]["replicas.new"], "3");
        assert_eq!(json["time"], 1);
    }
}
