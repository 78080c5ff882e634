//! `/_ping`, `/version`, `/info`, `/system/df`.

use chrono::SecondsFormat;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::error::ApiError;
use crate::response::{self, Body};
use crate::router::{Ctx, Matched};
use crate::routes::images::shape_summary;
use crate::version::{MAX_API_VERSION, MIN_API_VERSION};

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SystemRoute {
    Ping { head: bool },
    Version,
    Info,
    DiskUsage,
    Auth,
}

pub(crate) fn match_route(method: &Method, path: &str) -> Matched<SystemRoute> {
    let get_only = |r| {
        if method == Method::GET {
            Matched::Found(r)
        } else {
            Matched::WrongMethod
        }
    };
    match path {
        "/_ping" if method == Method::GET => Matched::Found(SystemRoute::Ping { head: false }),
        "/_ping" if method == Method::HEAD => Matched::Found(SystemRoute::Ping { head: true }),
        "/_ping" => Matched::WrongMethod,
        "/version" => get_only(SystemRoute::Version),
        "/info" => get_only(SystemRoute::Info),
        "/system/df" => get_only(SystemRoute::DiskUsage),
        "/auth" if method == Method::POST => Matched::Found(SystemRoute::Auth),
        "/auth" => Matched::WrongMethod,
        _ => Matched::NotFound,
    }
}

pub(crate) async fn handle(
    route: SystemRoute,
    ctx: Ctx,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    match route {
        SystemRoute::Auth => {
            let auth: crate::auth::AuthConfig = crate::request::read_json(req.into_body()).await?;
            let ok = ctx.backends.system.auth(auth).await?;
            Ok(response::json(StatusCode::OK, &ok))
        }
        SystemRoute::Ping { head } => Ok(ping(head)),
        SystemRoute::Version => {
            let mut v = ctx.backends.system.version().await?;
            v.api_version = MAX_API_VERSION.to_string();
            v.min_api_version = MIN_API_VERSION.to_string();
            Ok(response::json(StatusCode::OK, &v))
        }
        SystemRoute::Info => {
            let mut info = ctx.backends.system.info().await?;
            if info.system_time.is_empty() {
                info.system_time = chrono::Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true);
            }
            Ok(response::json(StatusCode::OK, &info))
        }
        SystemRoute::DiskUsage => disk_usage(ctx).await,
    }
}

fn ping(head: bool) -> Response<Body> {
    let mut resp = if head {
        let mut r = response::with_type(
            StatusCode::OK,
            "text/plain; charset=utf-8",
            response::empty(),
        );
        r.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
        r
    } else {
        response::with_type(
            StatusCode::OK,
            "text/plain; charset=utf-8",
            response::full("OK"),
        )
    };
    let h = resp.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    // "1": the classic builder protocol; skiff has no BuildKit session endpoint
    h.insert("builder-version", HeaderValue::from_static("1"));
    h.insert("swarm", HeaderValue::from_static("inactive"));
    resp
}

const DF_TYPES: [&str; 4] = ["container", "image", "volume", "build-cache"];

async fn disk_usage(ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let wanted = ctx.query.get_all("type");
    if let Some(bad) = wanted.iter().find(|t| !DF_TYPES.contains(t)) {
        return Err(ApiError::invalid_argument(format!(
            "unknown object type {bad:?}: use container, image, volume or build-cache"
        )));
    }
    let asked = |t: &str| wanted.is_empty() || wanted.contains(&t);
    let mut du = ctx.backends.system.disk_usage(ctx.version).await?;
    if !asked("image") {
        du.images = None;
    }
    if !asked("container") {
        du.containers = None;
    }
    if !asked("volume") {
        du.volumes = None;
    }
    if !asked("build-cache") {
        du.build_cache = None;
    }
    if let Some(images) = du.images.as_mut() {
        images
            .iter_mut()
            .for_each(|i| shape_summary(i, ctx.version));
    }
    Ok(response::json(StatusCode::OK, &du))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_system_paths() {
        assert_eq!(
            match_route(&Method::HEAD, "/_ping"),
            Matched::Found(SystemRoute::Ping { head: true })
        );
        assert_eq!(
            match_route(&Method::GET, "/_ping"),
            Matched::Found(SystemRoute::Ping { head: false })
        );
        assert_eq!(match_route(&Method::POST, "/_ping"), Matched::WrongMethod);
        assert_eq!(
            match_route(&Method::GET, "/system/df"),
            Matched::Found(SystemRoute::DiskUsage)
        );
        assert_eq!(match_route(&Method::DELETE, "/info"), Matched::WrongMethod);
        assert_eq!(match_route(&Method::GET, "/nope"), Matched::NotFound);
    }
}
