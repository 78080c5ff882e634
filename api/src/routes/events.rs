//! `GET /events`: headers at once (an idle stream must not hang the client), then one JSON
//! document per line until `until` or the client goes.

use bytes::Bytes;
use futures::StreamExt;
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::drive;
use crate::error::ApiError;
use crate::filters::Filters;
use crate::response::{self, Body, APPLICATION_JSON};
use crate::router::{Ctx, Matched};
use crate::timestamp::query_timestamp;
use crate::types::event::EVENT_FILTERS;

/// `path` is what follows `/events`.
pub(crate) fn match_route(method: &Method, path: &str) -> Matched<()> {
    match path {
        "" if method == Method::GET => Matched::Found(()),
        "" => Matched::WrongMethod,
        _ => Matched::NotFound,
    }
}

pub(crate) async fn handle(ctx: Ctx, _req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let q = &ctx.query;
    let since = query_timestamp(q, "since")?;
    let until = query_timestamp(q, "until")?;
    if let (Some(s), Some(u)) = (since, until) {
        if s > u {
            return Err(ApiError::invalid_argument(format!(
                "`since` time ({}) cannot be after `until` time ({})",
                q.get("since").unwrap_or(""),
                q.get("until").unwrap_or("")
            )));
        }
    }
    let filters = Filters::parse_allowed(q.get("filters"), EVENT_FILTERS)?;
    let events = ctx.backends.events.subscribe(since, until, filters).await?;
    let lines = events.map(|e| {
        let mut line = serde_json::to_vec(&e).unwrap_or_else(|_| b"{}".to_vec());
        line.push(b'\n');
        Ok::<_, ApiError>(Bytes::from(line))
    });
    Ok(response::with_type(
        StatusCode::OK,
        APPLICATION_JSON,
        drive::chunks(lines),
    ))
}
