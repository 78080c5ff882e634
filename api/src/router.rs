//! Request dispatch: version prefix -> area -> handler, common headers on every response.
//!
//! Areas live in `routes/<area>.rs`, each with a pure `match_route(method, path)` and an async
//! `handle`. Hijacked endpoints (attach, exec start) will take the `Request` whole and call
//! `hyper::upgrade::on(&mut req)` before answering `101 UPGRADED`; connections are already
//! served `with_upgrades()`.

use http::{Method, Request, Response};
use hyper::body::Incoming;
use percent_encoding::percent_decode_str;

use crate::backend::Backends;
use crate::error::ApiError;
use crate::query::Query;
use crate::response::{self, Body};
use crate::routes::{containers, events, exec, images, system};
use crate::version::{split_version, ApiVersion};

/// What a handler gets besides the request.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub version: ApiVersion,
    pub backends: Backends,
    pub query: Query,
}

/// Result of matching a path within an area.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Matched<R> {
    Found(R),
    /// The path exists, the method does not (405).
    WrongMethod,
    NotFound,
}

enum Route {
    System(system::SystemRoute),
    Images(images::ImageRoute),
    Containers(containers::ContainerRoute),
    Exec(exec::ExecRoute),
    Events,
}

/// Routes `path` within the area mounted at `prefix` (`/images`, `/containers`, ...).
fn area<R>(
    path: &str,
    prefix: &str,
    method: &Method,
    matcher: fn(&Method, &str) -> Matched<R>,
    wrap: fn(R) -> Route,
) -> Option<Matched<Route>> {
    if path != prefix && !path.starts_with(&format!("{prefix}/")) {
        return None;
    }
    Some(match matcher(method, &path[prefix.len()..]) {
        Matched::Found(r) => Matched::Found(wrap(r)),
        Matched::WrongMethod => Matched::WrongMethod,
        Matched::NotFound => Matched::NotFound,
    })
}

fn match_route(method: &Method, path: &str) -> Matched<Route> {
    if let Some(m) = area(path, "/images", method, images::match_route, Route::Images) {
        return m;
    }
    if let Some(m) = area(
        path,
        "/containers",
        method,
        containers::match_route,
        Route::Containers,
    ) {
        return m;
    }
    if let Some(m) = area(path, "/exec", method, exec::match_route, Route::Exec) {
        return m;
    }
    if let Some(m) = area(path, "/events", method, events::match_route, |()| {
        Route::Events
    }) {
        return m;
    }
    match system::match_route(method, path) {
        Matched::Found(r) => Matched::Found(Route::System(r)),
        Matched::WrongMethod => Matched::WrongMethod,
        Matched::NotFound => Matched::NotFound,
    }
}

pub(crate) async fn handle(req: Request<Incoming>, backends: Backends) -> Response<Body> {
    let method = req.method().clone();
    let raw_path = req.uri().path().to_string();
    let mut resp = dispatch(req, backends).await;
    tracing::debug!(%method, path = %raw_path, status = %resp.status(), "request");
    response::add_common_headers(&mut resp);
    resp
}

async fn dispatch(req: Request<Incoming>, backends: Backends) -> Response<Body> {
    let version_split = match split_version(req.uri().path()) {
        Err(e) => return response::error(&e),
        Ok(None) => return response::page_not_found(),
        Ok(Some((v, rest))) => (v, rest.to_string()),
    };
    let (version, rest) = version_split;
    // image names may arrive percent-encoded (`%2F`, `%3A`); decoded before splitting, as
    // dockerd's router does
    let path = match percent_decode_str(&rest).decode_utf8() {
        Ok(p) => p.into_owned(),
        Err(_) => {
            return response::error(&ApiError::invalid_argument(
                "the request path is not valid UTF-8",
            ))
        }
    };
    let route = match match_route(req.method(), &path) {
        Matched::Found(r) => r,
        Matched::WrongMethod => return response::method_not_allowed(),
        Matched::NotFound => return response::page_not_found(),
    };
    let ctx = Ctx {
        version,
        backends,
        query: Query::parse(req.uri().query()),
    };
    let result = match route {
        Route::System(r) => system::handle(r, ctx, req).await,
        Route::Images(r) => images::handle(r, ctx, req).await,
        Route::Containers(r) => containers::handle(r, ctx, req).await,
        Route::Exec(r) => exec::handle(r, ctx, req).await,
        Route::Events => events::handle(ctx, req).await,
    };
    result.unwrap_or_else(|e| response::error(&e))
}
