//! `/containers/...`. Container IDs and names never contain `/`, so paths split on it.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::backend::ContainerBackend;
use crate::drive;
use crate::error::ApiError;
use crate::filters::Filters;
use crate::hijack::stream_content_type;
use crate::mux;
use crate::query::Query;
use crate::request::{parse_json, read_body, MAX_JSON_BODY};
use crate::response::{self, Body, APPLICATION_JSON};
use crate::router::{Ctx, Matched};
use crate::routes::hijack;
use crate::stream::{LogStream, StatsSender};
use crate::timestamp::query_timestamp;
use crate::types::container::{
    is_valid_container_name, AttachOptions, ContainerCreateRequest, ContainerInspect,
    ContainerListOptions, ContainerUpdateRequest, LogsOptions, WaitCondition,
    CONTAINER_LIST_FILTERS, CONTAINER_PRUNE_FILTERS,
};
use crate::types::exec::ExecCreateRequest;
use crate::version::ApiVersion;

/// What is done to one container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Inspect,
    Top,
    Logs,
    Stats,
    Start,
    Stop,
    Restart,
    Kill,
    Wait,
    Rename,
    Update,
    Pause,
    Unpause,
    Resize,
    Attach,
    Remove,
    ExecCreate,
    /// Known dockerd endpoints skiff does not serve yet: 501 with a clear message.
    Unsupported(&'static str),
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ContainerRoute {
    Create,
    List,
    Prune,
    On(String, Action),
}

/// `path` is what follows `/containers`.
pub(crate) fn match_route(method: &Method, path: &str) -> Matched<ContainerRoute> {
    let Some(rest) = path.strip_prefix('/') else {
        return Matched::NotFound;
    };
    let fixed = match rest {
        "json" => Some((Method::GET, ContainerRoute::List)),
        "create" => Some((Method::POST, ContainerRoute::Create)),
        "prune" => Some((Method::POST, ContainerRoute::Prune)),
        _ => None,
    };
    if let Some((m, route)) = fixed {
        return if *method == m {
            Matched::Found(route)
        } else if *method == Method::DELETE {
            // a container may be called `json`
            Matched::Found(ContainerRoute::On(rest.to_string(), Action::Remove))
        } else {
            Matched::WrongMethod
        };
    }
    let (id, action) = match rest.split_once('/') {
        None if rest.is_empty() => return Matched::NotFound,
        None => {
            return if *method == Method::DELETE {
                Matched::Found(ContainerRoute::On(rest.to_string(), Action::Remove))
            } else {
                Matched::WrongMethod
            }
        }
        Some((id, action)) => (id, action),
    };
    if id.is_empty() {
        return Matched::NotFound;
    }
    use Action::*;
    let (want, action) = match action {
        "json" => (Method::GET, Inspect),
        "top" => (Method::GET, Top),
        "logs" => (Method::GET, Logs),
        "stats" => (Method::GET, Stats),
        "start" => (Method::POST, Start),
        "stop" => (Method::POST, Stop),
        "restart" => (Method::POST, Restart),
        "kill" => (Method::POST, Kill),
        "wait" => (Method::POST, Wait),
        "rename" => (Method::POST, Rename),
        "update" => (Method::POST, Update),
        "pause" => (Method::POST, Pause),
        "unpause" => (Method::POST, Unpause),
        "resize" => (Method::POST, Resize),
        "attach" => (Method::POST, Attach),
        "exec" => (Method::POST, ExecCreate),
        "changes" => (Method::GET, Unsupported("container changes (docker diff)")),
        "export" => (Method::GET, Unsupported("container export")),
        "archive" => {
            return match *method {
                Method::GET | Method::HEAD | Method::PUT => Matched::Found(ContainerRoute::On(
                    id.to_string(),
                    Unsupported("copying files to and from containers (docker cp)"),
                )),
                _ => Matched::WrongMethod,
            }
        }
        _ => return Matched::NotFound,
    };
    if *method == want {
        Matched::Found(ContainerRoute::On(id.to_string(), action))
    } else {
        Matched::WrongMethod
    }
}

pub(crate) async fn handle(
    route: ContainerRoute,
    ctx: Ctx,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let containers = ctx.backends.containers.clone();
    let q = &ctx.query;
    match route {
        ContainerRoute::Create => {
            let bytes = read_body(req.into_body(), MAX_JSON_BODY).await?;
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Err(ApiError::invalid_argument(
                    "config cannot be empty in order to create a container",
                ));
            }
            let mut body: ContainerCreateRequest = parse_json(&bytes)?;
            shape_create(&mut body, ctx.version);
            let name = q.non_empty("name").map(str::to_string);
            if let Some(n) = &name {
                check_name(n)?;
            }
            let platform = q.non_empty("platform").map(str::to_string);
            let created = containers.create(name, platform, body).await?;
            Ok(response::json(StatusCode::CREATED, &created))
        }
        ContainerRoute::List => {
            let filters = Filters::parse_allowed(q.get("filters"), CONTAINER_LIST_FILTERS)?;
            check_list_filter_values(&filters)?;
            let opts = ContainerListOptions {
                all: q.bool("all")?,
                limit: q.i64("limit")?.filter(|n| *n > 0),
                size: q.bool("size")?,
                filters,
            };
            Ok(response::json(
                StatusCode::OK,
                &containers.list(opts).await?,
            ))
        }
        ContainerRoute::Prune => {
            let filters = Filters::parse_allowed(q.get("filters"), CONTAINER_PRUNE_FILTERS)?;
            Ok(response::json(
                StatusCode::OK,
                &containers.prune(filters).await?,
            ))
        }
        ContainerRoute::On(id, action) => on_container(containers, &id, action, ctx, req).await,
    }
}

async fn on_container(
    containers: Arc<dyn ContainerBackend>,
    id: &str,
    action: Action,
    ctx: Ctx,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let q = &ctx.query;
    let done = || response::no_content(StatusCode::NO_CONTENT);
    match action {
        Action::Inspect => {
            let mut inspect = containers.inspect(id, q.bool("size")?, ctx.version).await?;
            shape_inspect(&mut inspect, ctx.version);
            Ok(response::json(StatusCode::OK, &inspect))
        }
        Action::Start => {
            if q.non_empty("checkpoint").is_some() {
                return Err(ApiError::not_implemented(
                    "checkpoints are not supported: start the container without --checkpoint",
                ));
            }
            containers.start(id).await?;
            Ok(done())
        }
        Action::Stop => {
            let (signal, timeout) = stop_args(q)?;
            containers.stop(id, signal, timeout).await?;
            Ok(done())
        }
        Action::Restart => {
            let (signal, timeout) = stop_args(q)?;
            containers.restart(id, signal, timeout).await?;
            Ok(done())
        }
        Action::Kill => {
            let signal = q.non_empty("signal").map(str::to_string);
            containers.kill(id, signal).await?;
            Ok(done())
        }
        Action::Pause => {
            containers.pause(id).await?;
            Ok(done())
        }
        Action::Unpause => {
            containers.unpause(id).await?;
            Ok(done())
        }
        Action::Remove => {
            containers
                .remove(id, q.bool("force")?, q.bool("v")?, q.bool("link")?)
                .await?;
            Ok(done())
        }
        Action::Rename => {
            let name = q.non_empty("name").ok_or_else(|| {
                ApiError::invalid_argument("name is required: pass the new name as ?name=NAME")
            })?;
            check_name(name)?;
            containers.rename(id, name).await?;
            Ok(done())
        }
        Action::Update => {
            let body: ContainerUpdateRequest = crate::request::read_json(req.into_body()).await?;
            Ok(response::json(
                StatusCode::OK,
                &containers.update(id, body).await?,
            ))
        }
        Action::Resize => {
            let (h, w) = tty_size(q)?;
            containers.resize(id, h, w).await?;
            Ok(response::no_content(StatusCode::OK))
        }
        Action::Top => {
            let ps_args = q.non_empty("ps_args").map(str::to_string);
            Ok(response::json(
                StatusCode::OK,
                &containers.top(id, ps_args).await?,
            ))
        }
        Action::Wait => {
            let condition = WaitCondition::parse(q.get("condition"))?;
            let fut = containers.wait_start(id, condition).await?;
            // headers now: the CLI waits for them before starting the container
            let body = futures::stream::once(async move {
                let mut line = serde_json::to_vec(&fut.await).unwrap_or_default();
                line.push(b'\n');
                Ok::<_, ApiError>(Bytes::from(line))
            });
            Ok(response::with_type(
                StatusCode::OK,
                APPLICATION_JSON,
                drive::chunks(body),
            ))
        }
        Action::Stats => {
            // dockerd streams unless told otherwise
            let stream = q.bool_or("stream", true)?;
            let one_shot = q.bool("one-shot")?;
            if one_shot && stream {
                return Err(ApiError::invalid_argument(
                    "cannot have stream=true and one-shot=true",
                ));
            }
            let (out, rx) = StatsSender::channel();
            let id = id.to_string();
            let fut = Box::pin(async move { containers.stats(&id, stream, one_shot, out).await });
            Ok(if stream {
                drive::json_values(fut, rx).await
            } else {
                drive::json_value(fut, rx).await
            })
        }
        Action::Logs => {
            let opts = logs_options(q)?;
            let logs = containers.logs(id, opts).await?;
            Ok(logs_response(logs, ctx.version))
        }
        Action::Attach => {
            let opts = AttachOptions {
                stream: q.bool("stream")?,
                logs: q.bool("logs")?,
                stdin: q.bool("stdin")?,
                stdout: q.bool("stdout")?,
                stderr: q.bool("stderr")?,
                detach_keys: q.non_empty("detachKeys").map(str::to_string),
            };
            let info = containers.attach_prepare(id, &opts).await?;
            let id = id.to_string();
            let (parts, body) = req.into_parts();
            Ok(
                hijack::serve(parts, Some(body), info.tty, ctx.version, move |conn| {
                    Box::pin(async move { containers.attach(&id, opts, conn).await })
                })
                .await,
            )
        }
        Action::ExecCreate => {
            let mut body: ExecCreateRequest = crate::request::read_json(req.into_body()).await?;
            // ConsoleSize arrived in 1.42; older clients' values are ignored, as by dockerd
            if ctx.version < ApiVersion::V1_42 {
                body.console_size = None;
            }
            if body.cmd.as_ref().is_none_or(Vec::is_empty) {
                return Err(ApiError::invalid_argument(
                    "no exec command specified: pass Cmd as a non-empty list",
                ));
            }
            let created = ctx.backends.execs.create(id, body).await?;
            Ok(response::json(StatusCode::CREATED, &created))
        }
        Action::Unsupported(what) => Err(ApiError::not_implemented(format!(
            "{what} is not implemented by skiff yet"
        ))),
    }
}

/// Fields dockerd ignores in a create body of an older (or newer) API version.
pub(crate) fn shape_create(body: &mut ContainerCreateRequest, v: ApiVersion) {
    if v < ApiVersion::V1_44 {
        if let Some(h) = body.config.healthcheck.as_mut() {
            h.start_interval = None;
        }
    }
    if let Some(h) = body.host_config.as_mut() {
        if v < ApiVersion::V1_42 && h.console_size.is_some() {
            h.console_size = Some([0, 0]);
        }
        if v >= ApiVersion::V1_42 {
            // deprecated; "any value it is set to will be ignored on API version v1.42 and up"
            h.resources.kernel_memory = None;
        }
        if v < ApiVersion::V1_43 {
            h.annotations = None;
        }
    }
}

/// Version-dependent fields of container inspect (backends return the newest shape).
pub(crate) fn shape_inspect(c: &mut ContainerInspect, v: ApiVersion) {
    // before 1.45 the aliases of user-defined networks also held the short ID and hostname
    if v < ApiVersion::V1_45 {
        let short: String = c.id.chars().take(12).collect();
        let hostname = c.config.hostname.clone().unwrap_or_default();
        for (net, ep) in c.network_settings.networks.iter_mut() {
            if matches!(net.as_str(), "bridge" | "host" | "none" | "default") {
                continue;
            }
            let aliases = ep.aliases.get_or_insert_with(Vec::new);
            for extra in [&short, &hostname] {
                if !extra.is_empty() && !aliases.contains(extra) {
                    aliases.push(extra.clone());
                }
            }
        }
    }
}

/// dockerd's container name rule `/?[a-zA-Z0-9][a-zA-Z0-9_.-]+`, with its message.
pub(crate) fn check_name(name: &str) -> Result<(), ApiError> {
    if is_valid_container_name(name) {
        Ok(())
    } else {
        Err(ApiError::invalid_argument(format!(
            "Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )))
    }
}

/// Values dockerd checks before listing, with its messages.
fn check_list_filter_values(f: &Filters) -> Result<(), ApiError> {
    const STATES: &[&str] = &[
        "created",
        "restarting",
        "running",
        "removing",
        "paused",
        "exited",
        "dead",
    ];
    const HEALTH: &[&str] = &["starting", "healthy", "unhealthy", "none"];
    for (key, allowed) in [("status", STATES), ("health", HEALTH)] {
        if let Some(v) = f.get(key).iter().find(|v| !allowed.contains(&v.as_str())) {
            return Err(ApiError::invalid_argument(format!(
                "Unrecognised filter value for {key}: {v}"
            )));
        }
    }
    if let Some(v) = f.get("exited").iter().find(|v| v.parse::<i64>().is_err()) {
        return Err(ApiError::invalid_argument(format!(
            "invalid filter 'exited={v}': use an exit code such as 0"
        )));
    }
    f.bool("is-task")?;
    Ok(())
}

/// `signal` (API 1.42+) and `t` of stop and restart.
fn stop_args(q: &Query) -> Result<(Option<String>, Option<i64>), ApiError> {
    Ok((q.non_empty("signal").map(str::to_string), q.i64("t")?))
}

/// `h` and `w` of the resize endpoints; both required, as dockerd.
pub(crate) fn tty_size(q: &Query) -> Result<(u32, u32), ApiError> {
    let get = |key: &str| -> Result<u32, ApiError> {
        let v = q.get(key).unwrap_or("");
        v.trim().parse().map_err(|_| {
            ApiError::invalid_argument(format!(
                "invalid value for query parameter '{key}': {v:?}; pass the terminal size as ?h=ROWS&w=COLUMNS"
            ))
        })
    };
    Ok((get("h")?, get("w")?))
}

fn logs_options(q: &Query) -> Result<LogsOptions, ApiError> {
    let stdout = q.bool("stdout")?;
    let stderr = q.bool("stderr")?;
    if !stdout && !stderr {
        return Err(ApiError::invalid_argument(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    // `since=0` / `until=0` mean "no bound", as the docker CLI sends them
    let nonzero = |t: Option<crate::stream::Timestamp>| {
        t.filter(|t| t.timestamp() != 0 || t.timestamp_subsec_nanos() != 0)
    };
    let tail = match q.get("tail").map(str::trim) {
        None | Some("") | Some("all") => None,
        Some(n) => match n.parse::<i64>() {
            Ok(n) if n < 0 => None,
            Ok(n) => Some(usize::try_from(n).unwrap_or(usize::MAX)),
            Err(_) => {
                return Err(ApiError::invalid_argument(format!(
                    "invalid value for 'tail': {n:?}; use a number of lines or all"
                )))
            }
        },
    };
    Ok(LogsOptions {
        follow: q.bool("follow")?,
        stdout,
        stderr,
        since: nonzero(query_timestamp(q, "since")?),
        until: nonzero(query_timestamp(q, "until")?),
        timestamps: q.bool("timestamps")?,
        tail,
    })
}

/// Log frames on the wire: multiplexed without a tty, raw with one.
fn logs_response(logs: LogStream, version: ApiVersion) -> Response<Body> {
    let tty = logs.tty;
    let body = logs.frames.map(move |r| {
        r.map(|f| {
            if tty {
                f.data
            } else {
                mux::frame(f.stream as u8, &f.data)
            }
        })
    });
    let mut resp = response::with_type(
        StatusCode::OK,
        stream_content_type(tty, version),
        drive::chunks(body),
    );
    // the body is unbounded with follow: no proxy buffering
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(m: Method, p: &str) -> ContainerRoute {
        match match_route(&m, p) {
            Matched::Found(r) => r,
            other => panic!("{m} {p}: {other:?}"),
        }
    }

    #[test]
    fn routes_fixed_paths_actions_and_delete() {
        assert_eq!(found(Method::GET, "/json"), ContainerRoute::List);
        assert_eq!(found(Method::POST, "/create"), ContainerRoute::Create);
        assert_eq!(found(Method::POST, "/prune"), ContainerRoute::Prune);
        assert_eq!(
            found(Method::DELETE, "/abc"),
            ContainerRoute::On("abc".into(), Action::Remove)
        );
        assert_eq!(
            found(Method::DELETE, "/json"),
            ContainerRoute::On("json".into(), Action::Remove)
        );
        assert_eq!(
            found(Method::GET, "/web/json"),
            ContainerRoute::On("web".into(), Action::Inspect)
        );
        assert_eq!(
            found(Method::POST, "/web/attach"),
            ContainerRoute::On("web".into(), Action::Attach)
        );
        assert_eq!(
            found(Method::POST, "/web/exec"),
            ContainerRoute::On("web".into(), Action::ExecCreate)
        );
        assert!(matches!(
            found(Method::HEAD, "/web/archive"),
            ContainerRoute::On(_, Action::Unsupported(_))
        ));
        assert_eq!(
            match_route(&Method::GET, "/web/start"),
            Matched::WrongMethod
        );
        assert_eq!(match_route(&Method::POST, "/json"), Matched::WrongMethod);
        assert_eq!(match_route(&Method::GET, "/web"), Matched::WrongMethod);
        assert_eq!(match_route(&Method::GET, "/web/nope"), Matched::NotFound);
        assert_eq!(match_route(&Method::GET, "//json"), Matched::NotFound);
        assert_eq!(match_route(&Method::GET, ""), Matched::NotFound);
    }

    #[test]
    fn logs_options_follow_dockerd() {
        let o = logs_options(&Query::parse(Some(
            "stdout=1&since=0&until=1700000000.5&tail=10&timestamps=true",
        )))
        .unwrap();
        assert!(o.stdout && !o.stderr && o.timestamps && !o.follow);
        assert_eq!(o.since, None);
        assert_eq!(o.until.unwrap().timestamp_subsec_nanos(), 500_000_000);
        assert_eq!(o.tail, Some(10));
        for tail in ["all", "", "-1"] {
            let q = Query::parse(Some(&format!("stderr=1&tail={tail}")));
            assert_eq!(logs_options(&q).unwrap().tail, None, "{tail}");
        }
        let e = logs_options(&Query::parse(Some("follow=1"))).unwrap_err();
        assert_eq!(
            e.message,
            "Bad parameters: you must choose at least one stream"
        );
        assert!(logs_options(&Query::parse(Some("stdout=1&tail=x"))).is_err());
        assert!(logs_options(&Query::parse(Some("stdout=1&since=yesterday"))).is_err());
    }

    #[test]
    fn list_filter_values_are_checked_like_dockerd() {
        let check = |raw: &str| check_list_filter_values(&Filters::parse(Some(raw)).unwrap());
        assert!(
            check(r#"{"status":["running","exited"],"exited":["0"],"health":["none"]}"#).is_ok()
        );
        assert_eq!(
            check(r#"{"status":["up"]}"#).unwrap_err().message,
            "Unrecognised filter value for status: up"
        );
        assert_eq!(
            check(r#"{"health":["sick"]}"#).unwrap_err().message,
            "Unrecognised filter value for health: sick"
        );
        assert!(check(r#"{"exited":["x"]}"#).is_err());
        assert!(check(r#"{"is-task":["maybe"]}"#).is_err());
    }

    #[test]
    fn old_versions_get_the_short_id_and_hostname_as_aliases() {
        use crate::types::container::EndpointSettings;
        let mut c = ContainerInspect {
            id: "0123456789abcdef".into(),
            ..Default::default()
        };
        c.config.hostname = Some("h1".into());
        for net in ["bridge", "mynet"] {
            c.network_settings.networks.insert(
                net.into(),
                EndpointSettings {
                    aliases: Some(vec!["web".into()]),
                    ..Default::default()
                },
            );
        }
        let mut new = c.clone();
        shape_inspect(&mut new, ApiVersion::V1_47);
        assert_eq!(new, c);
        shape_inspect(&mut c, ApiVersion::V1_44);
        let nets = &c.network_settings.networks;
        assert_eq!(
            nets["mynet"].aliases.as_ref().unwrap(),
            &["web", "0123456789ab", "h1"]
        );
        assert_eq!(nets["bridge"].aliases.as_ref().unwrap(), &["web"]);
        shape_inspect(&mut c, ApiVersion::V1_44);
        assert_eq!(
            c.network_settings.networks["mynet"]
                .aliases
                .as_ref()
                .unwrap()
                .len(),
            3
        );
    }

    #[test]
    fn container_names_follow_dockerds_rule() {
        for ok in ["web", "/web", "a1", "my_app.v2-x", "0abc"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "/", "a", "-web", "_x", "we b", "web/x", "wéb", "//web"] {
            let e = check_name(bad).unwrap_err();
            assert_eq!(e.status().as_u16(), 400, "{bad}");
            assert!(
                e.message.starts_with("Invalid container name ("),
                "{}",
                e.message
            );
        }
    }

    #[test]
    fn create_bodies_lose_what_their_version_did_not_have() {
        let raw = r#"{"Image":"x","Healthcheck":{"Test":["NONE"],"StartInterval":5},
            "HostConfig":{"ConsoleSize":[40,120],"KernelMemory":9,"Annotations":{"a":"b"}}}"#;
        let body = |v| {
            let mut b: ContainerCreateRequest = serde_json::from_str(raw).unwrap();
            shape_create(&mut b, v);
            b
        };
        let new = body(ApiVersion::V1_47);
        let h = new.host_config.as_ref().unwrap();
        assert_eq!(h.console_size, Some([40, 120]));
        assert_eq!(h.resources.kernel_memory, None);
        assert!(h.annotations.is_some());
        assert_eq!(new.config.healthcheck.unwrap().start_interval, Some(5));
        let old = body(ApiVersion::V1_41);
        let h = old.host_config.as_ref().unwrap();
        assert_eq!(h.console_size, Some([0, 0]));
        assert_eq!(h.resources.kernel_memory, Some(9));
        assert_eq!(h.annotations, None);
        assert_eq!(old.config.healthcheck.unwrap().start_interval, None);
    }

    #[test]
    fn resize_needs_both_numbers() {
        assert_eq!(
            tty_size(&Query::parse(Some("h=40&w=120"))).unwrap(),
            (40, 120)
        );
        for bad in ["h=40", "w=1", "h=x&w=1", "h=-1&w=2", ""] {
            let e = tty_size(&Query::parse(Some(bad))).unwrap_err();
            assert_eq!(e.status().as_u16(), 400, "{bad}");
        }
    }
}
