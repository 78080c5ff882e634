//! The daemon's event bus behind `GET /events`: a ring buffer of recent events for `since`
//! replays plus a broadcast channel for live subscribers, and Docker's event filters.
//!
//! Publishing never blocks: a subscriber that falls too far behind loses the oldest events
//! (logged as a warning) instead of slowing the daemon down.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use chrono::{DateTime, TimeZone, Utc};
use futures::{Stream, StreamExt};
use skiff_api::types::event::{EventMessage, EVENT_FILTERS};
use skiff_api::{ApiError, Filters};
use tokio::sync::broadcast;

/// How many past events are kept for `since` replays.
pub const HISTORY: usize = 1000;
/// How far a live subscriber may lag before it starts losing events.
const LIVE_CAPACITY: usize = 1024;

/// One event, e.g. container `start`. `typ` is container|image|network|volume|daemon|plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub typ: &'static str,
    pub action: String,
    pub actor_id: String,
    pub attributes: BTreeMap<String, String>,
    pub time_nano: i64,
}

impl Event {
    /// An event stamped with the current time.
    pub fn new(
        typ: &'static str,
        action: impl Into<String>,
        actor_id: impl Into<String>,
        attributes: BTreeMap<String, String>,
    ) -> Self {
        Event {
            typ,
            action: action.into(),
            actor_id: actor_id.into(),
            attributes,
            time_nano: Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX),
        }
    }

    /// A container event with dockerd's attributes: the container's labels, then `image`
    /// and `name` (without the leading '/'), then `extra` (`exitCode`, `signal`, `execID`…).
    pub fn container<'a>(
        action: impl Into<String>,
        id: &str,
        name: &str,
        image: &str,
        labels: impl IntoIterator<Item = (&'a String, &'a String)>,
        extra: &[(&str, String)],
    ) -> Self {
        let mut attributes: BTreeMap<String, String> = labels
            .into_iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        attributes.insert("image".into(), image.to_string());
        attributes.insert("name".into(), name.trim_start_matches('/').to_string());
        for (k, v) in extra {
            attributes.insert(k.to_string(), v.clone());
        }
        Event::new("container", action, id, attributes)
    }

    /// Docker's `events.Message`, with the legacy `status`/`id`/`from` fields that older
    /// clients (dockerode, the balena supervisor) read for container and image events.
    pub fn to_message(&self) -> EventMessage {
        EventMessage::new(
            self.typ,
            &self.action,
            &self.actor_id,
            self.attributes.clone(),
            self.time_nano,
        )
    }

    fn time(&self) -> DateTime<Utc> {
        Utc.timestamp_nanos(self.time_nano)
    }
}

/// Actions that carry a suffix (`exec_start: sh -c ...`, `health_status: healthy`): a filter on
/// the bare action matches them by prefix, as dockerd does.
const PREFIX_ACTIONS: &[&str] = &["health_status", "exec_create", "exec_start"];

/// Docker's `/events` filters: every given key must match; values of one key are alternatives.
#[derive(Debug, Clone, Default)]
pub struct EventFilters {
    filters: Filters,
}

impl EventFilters {
    /// Validates the keys (dockerd's "invalid filter 'x'" for unknown ones).
    pub fn new(filters: Filters) -> Result<Self, ApiError> {
        filters.validate(EVENT_FILTERS)?;
        Ok(EventFilters { filters })
    }

    /// Parses the raw `filters` query value (`{"type":["container"]}` or the legacy map form).
    pub fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        Self::new(Filters::parse(raw)?)
    }

    pub fn matches(&self, ev: &Event) -> bool {
        let f = &self.filters;
        let event_ok = if f
            .get("event")
            .iter()
            .any(|v| PREFIX_ACTIONS.contains(&v.as_str()))
        {
            self.fuzzy("event", &ev.action)
        } else {
            self.exact("event", &ev.action)
        };
        event_ok
            && self.exact("type", ev.typ)
            && (!f.contains("scope") || self.exact("scope", "local"))
            && self.name_or_id("container", ev)
            && self.name_or_id("daemon", ev)
            && self.name_or_id("network", ev)
            && self.name_or_id("volume", ev)
            && self.name_or_id("plugin", ev)
            // swarm objects never occur here; a filter on them matches nothing
            && ["node", "service", "secret", "config"]
                .iter()
                .all(|k| !f.contains(k))
            && self.image(ev)
            && self.labels(&ev.attributes)
    }

    /// True when `key` is absent or one of its values equals `source`.
    fn exact(&self, key: &str, source: &str) -> bool {
        let values = self.filters.get(key);
        values.is_empty() || values.iter().any(|v| v == source)
    }

    /// As `exact`, or `source` starts with one of the values (ID prefixes).
    fn fuzzy(&self, key: &str, source: &str) -> bool {
        let values = self.filters.get(key);
        values.is_empty() || values.iter().any(|v| source.starts_with(v.as_str()))
    }

    fn name_or_id(&self, key: &str, ev: &Event) -> bool {
        let name = ev.attributes.get("name").map(String::as_str).unwrap_or("");
        self.fuzzy(key, &ev.actor_id) || (!name.is_empty() && self.fuzzy(key, name))
    }

    /// `image` matches the image ID, or the image name (`image` attribute of container events,
    /// `name` of image events) with or without its tag.
    fn image(&self, ev: &Event) -> bool {
        if !self.filters.contains("image") {
            return true;
        }
        let name_attr = if ev.typ == "image" { "name" } else { "image" };
        let name = ev
            .attributes
            .get(name_attr)
            .map(String::as_str)
            .unwrap_or("");
        [ev.actor_id.as_str(), name]
            .into_iter()
            .filter(|s| !s.is_empty())
            .any(|s| self.exact("image", s) || self.exact("image", strip_tag(s)))
    }

    fn labels(&self, attributes: &BTreeMap<String, String>) -> bool {
        self.filters
            .get("label")
            .iter()
            .all(|want| match want.split_once('=') {
                Some((k, v)) => attributes.get(k).is_some_and(|have| have == v),
                None => attributes.contains_key(want.as_str()),
            })
    }
}

/// `busybox:latest` -> `busybox`, `reg:5000/app@sha256:..` -> `reg:5000/app`.
fn strip_tag(reference: &str) -> &str {
    let no_digest = reference.split('@').next().unwrap_or(reference);
    let name_start = no_digest.rfind('/').map_or(0, |i| i + 1);
    match no_digest[name_start..].rfind(':') {
        Some(i) => &no_digest[..name_start + i],
        None => no_digest,
    }
}

/// Parses the `since`/`until` query values the docker CLI sends: Unix seconds with optional
/// fraction (`1700000000.000000001`); RFC 3339 is accepted too. Empty means unset.
pub fn parse_api_time(value: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(Some(t.with_timezone(&Utc)));
    }
    let bad = || {
        ApiError::invalid_argument(format!(
            "invalid time value {value:?}: use Unix seconds such as 1700000000.000000000 or RFC 3339"
        ))
    };
    let (secs, frac) = value.split_once('.').unwrap_or((value, ""));
    let secs: i64 = secs.parse().map_err(|_| bad())?;
    if frac.len() > 9 || !frac.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    // "1.5" means 1.5 s: pad the fraction to nanoseconds
    let nanos: u32 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().map_err(|_| bad())?
    };
    Utc.timestamp_opt(secs, nanos)
        .single()
        .map(Some)
        .ok_or_else(bad)
}

/// The checks dockerd makes on `since` and `until` before streaming.
pub fn check_range(
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    raw_since: &str,
    raw_until: &str,
) -> Result<(), ApiError> {
    match (since, until) {
        (Some(s), Some(u)) if u < s => Err(ApiError::invalid_argument(format!(
            "`since` time ({raw_since}) cannot be after `until` time ({raw_until})"
        ))),
        _ => Ok(()),
    }
}

/// Recent events plus live fan-out to subscribers.
pub struct EventBus {
    // publish and subscribe both hold this lock, so a subscriber's replay and its live feed
    // neither overlap nor leave a gap
    history: Mutex<VecDeque<Event>>,
    live: broadcast::Sender<Event>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    pub fn new() -> Self {
        EventBus {
            history: Mutex::new(VecDeque::with_capacity(HISTORY)),
            live: broadcast::channel(LIVE_CAPACITY).0,
        }
    }

    /// Records the event and hands it to every live subscriber; never blocks on them.
    pub fn publish(&self, ev: Event) {
        let mut history = self.history.lock().unwrap_or_else(|p| p.into_inner());
        if history.len() == HISTORY {
            history.pop_front();
        }
        history.push_back(ev.clone());
        // no receivers is fine: nobody is listening
        let _ = self.live.send(ev);
    }

    /// Past events in `[since, until]` (none when both are unset, as dockerd), then live events
    /// until `until` passes (forever when unset). Only events matching `filters` are yielded.
    pub fn subscribe(
        &self,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        filters: &EventFilters,
    ) -> impl Stream<Item = Event> + Send + 'static {
        let (past, rx) = {
            let history = self.history.lock().unwrap_or_else(|p| p.into_inner());
            let past: Vec<Event> = if since.is_none() && until.is_none() {
                Vec::new()
            } else {
                history
                    .iter()
                    .filter(|e| since.is_none_or(|s| e.time() >= s))
                    .filter(|e| until.is_none_or(|u| e.time() <= u))
                    .filter(|e| filters.matches(e))
                    .cloned()
                    .collect()
            };
            (past, self.live.subscribe())
        };
        let only_past = until.is_some_and(|u| u <= Utc::now());
        let live = if only_past {
            None
        } else {
            let deadline = until.map(|u| {
                let left = (u - Utc::now()).to_std().unwrap_or_default();
                tokio::time::Instant::now() + left
            });
            Some(live_events(rx, deadline, until, filters.clone()))
        };
        futures::stream::iter(past).chain(futures::stream::iter(live).flatten())
    }
}

fn live_events(
    rx: broadcast::Receiver<Event>,
    deadline: Option<tokio::time::Instant>,
    until: Option<DateTime<Utc>>,
    filters: EventFilters,
) -> impl Stream<Item = Event> + Send + 'static {
    futures::stream::unfold(rx, move |mut rx| {
        let filters = filters.clone();
        async move {
            loop {
                let received = match deadline {
                    Some(d) => tokio::select! {
                        r = rx.recv() => r,
                        _ = tokio::time::sleep_until(d) => return None,
                    },
                    None => rx.recv().await,
                };
                match received {
                    Ok(ev) if until.is_some_and(|u| ev.time() > u) => return None,
                    Ok(ev) if filters.matches(&ev) => return Some((ev, rx)),
                    Ok(_) => continue,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(dropped = n, "events subscriber too slow; dropped events");
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    fn ev(typ: &'static str, action: &str, id: &str, attrs: &[(&str, &str)]) -> Event {
        let attributes = attrs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Event::new(typ, action, id, attributes)
    }

    fn filters(raw: &str) -> EventFilters {
        EventFilters::parse(Some(raw)).unwrap()
    }

    #[test]
    fn container_json_has_legacy_fields() {
        let mut e = ev(
            "container",
            "start",
            "abc123",
            &[("image", "busybox"), ("name", "web")],
        );
        e.time_nano = 1_700_000_000_123_456_789;
        let v = serde_json::to_value(e.to_message()).unwrap();
        assert_eq!(
            v,
            json!({
                "status": "start", "id": "abc123", "from": "busybox",
                "Type": "container", "Action": "start",
                "Actor": {"ID": "abc123", "Attributes": {"image": "busybox", "name": "web"}},
                "scope": "local", "time": 1_700_000_000i64, "timeNano": 1_700_000_000_123_456_789i64
            })
        );
        // images get status/id but no from; other types get none of the legacy fields
        let i = serde_json::to_value(
            ev("image", "pull", "busybox:latest", &[("name", "busybox")]).to_message(),
        )
        .unwrap();
        assert_eq!(i["status"], "pull");
        assert_eq!(i["id"], "busybox:latest");
        assert!(i.get("from").is_none());
        let n = serde_json::to_value(ev("network", "connect", "n1", &[]).to_message()).unwrap();
        assert!(n.get("status").is_none() && n.get("id").is_none());
        assert_eq!(n["Actor"]["Attributes"], json!({}));
    }

    #[test]
    fn container_events_carry_labels_image_and_name() {
        let labels = std::collections::HashMap::from([
            ("tier".to_string(), "db".to_string()),
            ("name".to_string(), "label-loses".to_string()),
        ]);
        let e = Event::container(
            "die",
            "abc",
            "/web",
            "busybox",
            &labels,
            &[("exitCode", "3".into())],
        );
        assert_eq!(e.typ, "container");
        let attrs: Vec<(&str, &str)> = e
            .attributes
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            attrs,
            [
                ("exitCode", "3"),
                ("image", "busybox"),
                ("name", "web"),
                ("tier", "db")
            ]
        );
        assert_eq!(e.to_message().from.as_deref(), Some("busybox"));
        assert!(filters(r#"{"container":["web"],"label":["tier=db"]}"#).matches(&e));
    }

    #[test]
    fn filters_follow_dockers_rules() {
        let start = ev(
            "container",
            "start",
            "abc123",
            &[("image", "busybox:1.36"), ("name", "web"), ("tier", "db")],
        );
        let pull = ev("image", "pull", "sha256:fff", &[("name", "busybox:1.36")]);
        let exec = ev(
            "container",
            "exec_start: sh -c true",
            "abc123",
            &[("name", "web")],
        );

        assert!(filters("{}").matches(&start));
        assert!(filters(r#"{"type":["container"]}"#).matches(&start));
        assert!(!filters(r#"{"type":["container"]}"#).matches(&pull));
        assert!(filters(r#"{"type":{"image":true}}"#).matches(&pull));
        assert!(filters(r#"{"container":["web"]}"#).matches(&start));
        assert!(
            filters(r#"{"container":["abc"]}"#).matches(&start),
            "id prefix"
        );
        assert!(!filters(r#"{"container":["db"]}"#).matches(&start));
        assert!(
            filters(r#"{"image":["busybox"]}"#).matches(&start),
            "tag stripped"
        );
        assert!(filters(r#"{"image":["busybox:1.36"]}"#).matches(&pull));
        assert!(filters(r#"{"image":["sha256:fff"]}"#).matches(&pull));
        assert!(!filters(r#"{"image":["alpine"]}"#).matches(&start));
        assert!(filters(r#"{"label":["tier"]}"#).matches(&start));
        assert!(filters(r#"{"label":["tier=db"]}"#).matches(&start));
        assert!(!filters(r#"{"label":["tier=web"]}"#).matches(&start));
        assert!(!filters(r#"{"label":["tier","other"]}"#).matches(&start));
        assert!(filters(r#"{"event":["start","stop"]}"#).matches(&start));
        assert!(!filters(r#"{"event":["exec_start"]}"#).matches(&start));
        assert!(filters(r#"{"event":["exec_start"]}"#).matches(&exec));
        assert!(!filters(r#"{"event":["exec_create"]}"#).matches(&exec));
        assert!(filters(r#"{"scope":["local"]}"#).matches(&start));
        assert!(!filters(r#"{"scope":["swarm"]}"#).matches(&start));
        assert!(!filters(r#"{"service":["x"]}"#).matches(&start));
        assert!(
            filters(r#"{"type":["container"],"event":["start"],"container":["web"]}"#)
                .matches(&start)
        );
    }

    #[test]
    fn unknown_filter_keys_are_rejected() {
        let e = EventFilters::parse(Some(r#"{"nope":["x"]}"#)).unwrap_err();
        assert_eq!(e.message, "invalid filter 'nope'");
        assert_eq!(e.status().as_u16(), 400);
        assert!(EventFilters::parse(Some("{")).is_err());
    }

    #[test]
    fn strip_tag_keeps_registry_ports() {
        assert_eq!(strip_tag("busybox:latest"), "busybox");
        assert_eq!(strip_tag("busybox"), "busybox");
        assert_eq!(strip_tag("reg:5000/app:1"), "reg:5000/app");
        assert_eq!(strip_tag("reg:5000/app"), "reg:5000/app");
        assert_eq!(strip_tag("app@sha256:abc"), "app");
    }

    #[test]
    fn api_times_parse_like_docker() {
        let t = parse_api_time("1700000000.5").unwrap().unwrap();
        assert_eq!(t.timestamp_nanos_opt(), Some(1_700_000_000_500_000_000));
        let t = parse_api_time("1700000000.000000001").unwrap().unwrap();
        assert_eq!(t.timestamp_nanos_opt(), Some(1_700_000_000_000_000_001));
        assert_eq!(parse_api_time("42").unwrap().unwrap().timestamp(), 42);
        assert_eq!(parse_api_time("").unwrap(), None);
        let t = parse_api_time("2026-12-06T03:00:00.25Z").unwrap().unwrap();
        assert_eq!(t.timestamp_subsec_millis(), 250);
        for bad in ["abc", "1.2.3", "1.x", "1.1234567890"] {
            assert_eq!(
                parse_api_time(bad).unwrap_err().status().as_u16(),
                400,
                "{bad}"
            );
        }
        let (s, u) = (parse_api_time("20").unwrap(), parse_api_time("10").unwrap());
        let e = check_range(s, u, "20", "10").unwrap_err();
        assert_eq!(
            e.message,
            "`since` time (20) cannot be after `until` time (10)"
        );
        assert!(check_range(u, s, "10", "20").is_ok());
    }

    #[tokio::test]
    async fn replays_then_streams_live_and_honours_until() {
        let bus = EventBus::new();
        let mut old = ev("container", "create", "a", &[]);
        old.time_nano = 1_000;
        bus.publish(old.clone());
        let mut mid = ev("container", "start", "a", &[]);
        mid.time_nano = 2_000;
        bus.publish(mid.clone());
        bus.publish(ev("image", "pull", "i", &[]));

        // neither since nor until: live only
        let mut live = Box::pin(bus.subscribe(None, None, &EventFilters::default()));
        // since: replay filtered by type, then live
        let since = Some(Utc.timestamp_nanos(1_500));
        let mut replay =
            Box::pin(bus.subscribe(since, None, &filters(r#"{"type":["container"]}"#)));
        assert_eq!(replay.next().await.unwrap(), mid);

        let fresh = ev("container", "die", "a", &[]);
        bus.publish(fresh.clone());
        assert_eq!(replay.next().await.unwrap(), fresh);
        assert_eq!(live.next().await.unwrap(), fresh);

        // until in the past: only the replay, then the stream ends
        let until = Some(Utc.timestamp_nanos(1_500));
        let past: Vec<Event> = bus
            .subscribe(
                Some(Utc.timestamp_nanos(0)),
                until,
                &EventFilters::default(),
            )
            .collect()
            .await;
        assert_eq!(past, vec![old]);
    }

    #[tokio::test]
    async fn live_stream_ends_at_until() {
        let bus = EventBus::new();
        let until = Utc::now() + chrono::Duration::milliseconds(200);
        let s = bus.subscribe(None, Some(until), &EventFilters::default());
        let got: Vec<Event> = tokio::time::timeout(Duration::from_secs(30), s.collect())
            .await
            .expect("stream must end once until has passed");
        assert!(got.is_empty());
    }

    #[tokio::test]
    async fn lagging_subscriber_loses_old_events_without_blocking() {
        let bus = EventBus::new();
        let mut slow = Box::pin(bus.subscribe(None, None, &EventFilters::default()));
        // publish far more than the live capacity while nobody reads: must not block
        for i in 0..(LIVE_CAPACITY + 500) {
            bus.publish(ev("container", "start", &i.to_string(), &[]));
        }
        let first = slow.next().await.unwrap();
        assert!(
            first.actor_id.parse::<usize>().unwrap() >= 500,
            "{}",
            first.actor_id
        );
        // the history keeps only the newest HISTORY events
        let all: Vec<Event> = bus
            .subscribe(
                Some(Utc.timestamp_nanos(0)),
                Some(Utc::now()),
                &EventFilters::default(),
            )
            .collect()
            .await;
        assert_eq!(all.len(), HISTORY);
        assert_eq!(
            all.last().unwrap().actor_id,
            (LIVE_CAPACITY + 499).to_string()
        );
    }
}
