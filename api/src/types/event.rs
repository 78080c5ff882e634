//! `GET /events` messages (moby `events.Message`), with the legacy `status`/`id`/`from`
//! fields agents still read.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Filter keys `GET /events` accepts.
pub const EVENT_FILTERS: &[&str] = &[
    "config",
    "container",
    "daemon",
    "event",
    "image",
    "label",
    "network",
    "node",
    "plugin",
    "scope",
    "secret",
    "service",
    "type",
    "volume",
];

/// `Actor` of an event: the object's ID and attributes (`name`, `image`, labels, `exitCode`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventActor {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Attributes", default)]
    pub attributes: BTreeMap<String, String>,
}

/// One event line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMessage {
    /// Legacy: the action (`start`, `die`, ...) for container and image events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Legacy: the actor ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Legacy: the image of a container event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// `container`, `image`, `network`, `volume`, `daemon`
    #[serde(rename = "Type")]
    pub kind: String,
    /// `create`, `start`, `die`, `exec_start: sh`, `pull`, ... (dockerd's words: `die`, not `died`)
    #[serde(rename = "Action")]
    pub action: String,
    #[serde(rename = "Actor")]
    pub actor: EventActor,
    /// `local`
    pub scope: String,
    /// Unix seconds.
    pub time: i64,
    /// Unix nanoseconds.
    #[serde(rename = "timeNano")]
    pub time_nano: i64,
}

impl EventMessage {
    /// A `local` event at `time_nano` with the legacy fields filled as dockerd does for
    /// container and image events (`status`=action, `id`=actor, `from`=`image` attribute).
    pub fn new(
        kind: &str,
        action: &str,
        actor_id: &str,
        attributes: BTreeMap<String, String>,
        time_nano: i64,
    ) -> Self {
        let legacy = matches!(kind, "container" | "image");
        let from = (kind == "container")
            .then(|| attributes.get("image").cloned())
            .flatten();
        EventMessage {
            status: legacy.then(|| action.to_string()),
            id: legacy.then(|| actor_id.to_string()),
            from,
            kind: kind.to_string(),
            action: action.to_string(),
            actor: EventActor {
                id: actor_id.to_string(),
                attributes,
            },
            scope: "local".to_string(),
            time: time_nano.div_euclid(1_000_000_000),
            time_nano,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_events_carry_legacy_fields() {
        let attrs = BTreeMap::from([
            ("image".to_string(), "busybox".to_string()),
            ("name".to_string(), "web".to_string()),
        ]);
        let e = EventMessage::new("container", "die", "abc", attrs, 1_700_000_000_123_456_789);
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["status"], "die");
        assert_eq!(v["id"], "abc");
        assert_eq!(v["from"], "busybox");
        assert_eq!(v["Type"], "container");
        assert_eq!(v["Action"], "die");
        assert_eq!(v["Actor"]["ID"], "abc");
        assert_eq!(v["Actor"]["Attributes"]["name"], "web");
        assert_eq!(v["scope"], "local");
        assert_eq!(v["time"], 1_700_000_000);
        assert_eq!(v["timeNano"], 1_700_000_000_123_456_789i64);
        let n = EventMessage::new("network", "create", "n1", BTreeMap::new(), 5);
        let v = serde_json::to_value(&n).unwrap();
        assert!(v.get("status").is_none() && v.get("id").is_none() && v.get("from").is_none());
    }
}
