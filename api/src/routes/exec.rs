//! `/exec/{id}/start|resize|json` (exec creation is `POST /containers/{id}/exec`).

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::error::ApiError;
use crate::request::{parse_json, read_body, MAX_JSON_BODY};
use crate::response::{self, Body};
use crate::router::{Ctx, Matched};
use crate::routes::containers::tty_size;
use crate::routes::hijack;
use crate::types::exec::ExecStartRequest;

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ExecRoute {
    Start(String),
    Resize(String),
    Inspect(String),
}

/// `path` is what follows `/exec`.
pub(crate) fn match_route(method: &Method, path: &str) -> Matched<ExecRoute> {
    let Some((id, action)) = path.strip_prefix('/').and_then(|r| r.split_once('/')) else {
        return Matched::NotFound;
    };
    if id.is_empty() {
        return Matched::NotFound;
    }
    let id = id.to_string();
    let (want, route) = match action {
        "start" => (Method::POST, ExecRoute::Start(id)),
        "resize" => (Method::POST, ExecRoute::Resize(id)),
        "json" => (Method::GET, ExecRoute::Inspect(id)),
        _ => return Matched::NotFound,
    };
    if *method == want {
        Matched::Found(route)
    } else {
        Matched::WrongMethod
    }
}

pub(crate) async fn handle(
    route: ExecRoute,
    ctx: Ctx,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let execs = ctx.backends.execs.clone();
    match route {
        ExecRoute::Inspect(id) => Ok(response::json(StatusCode::OK, &execs.inspect(&id).await?)),
        ExecRoute::Resize(id) => {
            let (h, w) = tty_size(&ctx.query)?;
            execs.resize(&id, h, w).await?;
            Ok(response::no_content(StatusCode::OK))
        }
        ExecRoute::Start(id) => {
            let (parts, body) = req.into_parts();
            // the body is small and comes first; read it whole, then hijack the rest
            let bytes = read_body(body, MAX_JSON_BODY).await?;
            let start: ExecStartRequest = if bytes.iter().all(u8::is_ascii_whitespace) {
                ExecStartRequest::default()
            } else {
                parse_json(&bytes)?
            };
            if start.detach {
                execs.start(&id, start, None).await?;
                return Ok(response::no_content(StatusCode::OK));
            }
            let info = execs.start_prepare(&id, &start).await?;
            Ok(
                hijack::serve(parts, None, info.tty, ctx.version, move |conn| {
                    Box::pin(async move { execs.start(&id, start, Some(conn)).await })
                })
                .await,
            )
        }
    }
}
