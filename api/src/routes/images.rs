//! `/images/...`. Image names may contain `/`, `:` and `@sha256:`, so a path is routed by its
//! trailing action segment (`/images/127.0.0.1:5000/a/b:1/json` inspects `127.0.0.1:5000/a/b:1`).

use std::io;

use futures::TryStreamExt;
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyStream;
use hyper::body::Incoming;
use tokio_util::io::StreamReader;

use crate::auth::{decode_registry_auth, REGISTRY_AUTH_HEADER};
use crate::drive::{self, Start};
use crate::error::ApiError;
use crate::filters::Filters;
use crate::response::{self, Body};
use crate::router::{Ctx, Matched};
use crate::stream::{BodyReader, Progress, TarWriter};
use crate::types::image::{ImageInspect, ImageListOptions, ImageSummary, PullRequest};
use crate::version::ApiVersion;

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ImageRoute {
    Create,
    List,
    Load,
    Prune,
    SaveMany,
    Inspect(String),
    History(String),
    Tag(String),
    Save(String),
    Remove(String),
    Push(String),
    Delta,
}

/// `path` is what follows `/images`.
pub(crate) fn match_route(method: &Method, path: &str) -> Matched<ImageRoute> {
    let Some(rest) = path.strip_prefix('/') else {
        return Matched::NotFound;
    };
    let fixed = match rest {
        "json" => Some((Method::GET, ImageRoute::List)),
        "create" => Some((Method::POST, ImageRoute::Create)),
        "load" => Some((Method::POST, ImageRoute::Load)),
        "prune" => Some((Method::POST, ImageRoute::Prune)),
        "get" => Some((Method::GET, ImageRoute::SaveMany)),
        "delta" => Some((Method::POST, ImageRoute::Delta)),
        _ => None,
    };
    if let Some((m, route)) = fixed {
        if *method == m {
            return Matched::Found(route);
        }
    }
    // endpoints of this area that are not served yet: a plain 404, not a misleading 405
    if rest == "search" {
        return Matched::NotFound;
    }
    // dockerd's `DELETE /images/{name:.*}` takes any path, so every other path exists
    if *method == Method::DELETE {
        return Matched::Found(ImageRoute::Remove(rest.to_string()));
    }
    if let Some((name, action)) = rest.rsplit_once('/') {
        let name = name.to_string();
        let found = match (action, method) {
            ("json", &Method::GET) => Some(ImageRoute::Inspect(name)),
            ("history", &Method::GET) => Some(ImageRoute::History(name)),
            ("tag", &Method::POST) => Some(ImageRoute::Tag(name)),
            ("get", &Method::GET) => Some(ImageRoute::Save(name)),
            ("push", &Method::POST) => Some(ImageRoute::Push(name)),
            _ => None,
        };
        if let Some(route) = found {
            return Matched::Found(route);
        }
    }
    Matched::WrongMethod
}

pub(crate) async fn handle(
    route: ImageRoute,
    ctx: Ctx,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let images = ctx.backends.images.clone();
    let q = &ctx.query;
    match route {
        ImageRoute::Create => {
            if q.non_empty("fromSrc").is_some() {
                return Err(ApiError::invalid_argument(
                    "importing a root filesystem (fromSrc) is not supported yet: use docker load with a docker save tar",
                ));
            }
            let from_image = q.non_empty("fromImage").ok_or_else(|| {
                ApiError::invalid_argument(
                    "fromImage is required: pass the image to pull as ?fromImage=NAME&tag=TAG",
                )
            })?;
            let pull = PullRequest {
                from_image: from_image.to_string(),
                tag: q.get("tag").unwrap_or("").to_string(),
                platform: q.non_empty("platform").map(str::to_string),
                auth: registry_auth(&req)?,
            };
            let (progress, rx) = Progress::channel();
            let fut = Box::pin(async move { images.pull(pull, progress).await });
            Ok(drive::json_lines(fut, rx, Start::FirstMessage).await)
        }
        ImageRoute::List => {
            let mut filters = Filters::parse_allowed(
                q.get("filters"),
                &["before", "dangling", "label", "reference", "since", "until"],
            )?;
            filters.bool("dangling")?;
            // the singular `filter=ref` was removed in 1.41
            if ctx.version < ApiVersion::V1_41 {
                if let Some(reference) = q.non_empty("filter") {
                    filters.add("reference", reference);
                }
            }
            let opts = ImageListOptions {
                all: q.bool("all")?,
                digests: q.bool("digests")?,
                shared_size: q.bool("shared-size")?,
                filters,
                version: ctx.version,
            };
            let mut list = images.list(opts).await?;
            list.iter_mut().for_each(|i| shape_summary(i, ctx.version));
            Ok(response::json(StatusCode::OK, &list))
        }
        ImageRoute::Push(name) => {
            let tag = q.get("tag").unwrap_or("").to_string();
            let auth = registry_auth(&req)?;
            let (progress, rx) = Progress::channel();
            let fut = Box::pin(async move { images.push(&name, &tag, auth, progress).await });
            Ok(drive::json_lines(fut, rx, Start::FirstMessage).await)
        }
        ImageRoute::Delta => {
            let need = |k: &str| {
                q.non_empty(k).map(str::to_string).ok_or_else(|| {
                    ApiError::invalid_argument(format!(
                        "{k} is required: pass ?src=BASE_IMAGE&dest=TARGET_IMAGE"
                    ))
                })
            };
            let (src, dest) = (need("src")?, need("dest")?);
            let tag = q.non_empty("t").map(str::to_string);
            let (progress, rx) = Progress::channel();
            let fut =
                Box::pin(async move { images.delta(&src, &dest, tag.as_deref(), progress).await });
            Ok(drive::json_lines(fut, rx, Start::FirstMessage).await)
        }
        ImageRoute::Inspect(name) => {
            let mut inspect = images.inspect(&name).await?;
            shape_inspect(&mut inspect, ctx.version);
            Ok(response::json(StatusCode::OK, &inspect))
        }
        ImageRoute::History(name) => Ok(response::json(
            StatusCode::OK,
            &images.history(&name).await?,
        )),
        ImageRoute::Tag(name) => {
            let repo = q.non_empty("repo").ok_or_else(|| {
                ApiError::invalid_argument(
                    "repo is required: pass the new name as ?repo=NAME&tag=TAG",
                )
            })?;
            images.tag(&name, repo, q.non_empty("tag")).await?;
            Ok(response::no_content(StatusCode::CREATED))
        }
        ImageRoute::Remove(name) => {
            let items = images
                .remove(&name, q.bool("force")?, q.bool("noprune")?)
                .await?;
            Ok(response::json(StatusCode::OK, &items))
        }
        ImageRoute::Load => {
            let quiet = q.bool("quiet")?;
            let body = request_reader(req);
            let (progress, rx) = Progress::channel();
            let fut = Box::pin(async move { images.load(body, quiet, progress).await });
            Ok(drive::json_lines(fut, rx, Start::FirstMessage).await)
        }
        ImageRoute::SaveMany => {
            let names: Vec<String> = q.get_all("names").into_iter().map(str::to_string).collect();
            if names.is_empty() {
                return Err(ApiError::invalid_argument(
                    "names is required: pass one or more images as ?names=NAME&names=NAME2",
                ));
            }
            Ok(save(images, names).await)
        }
        ImageRoute::Save(name) => Ok(save(images, vec![name]).await),
        ImageRoute::Prune => {
            let filters = Filters::parse_allowed(
                q.get("filters"),
                &["dangling", "label", "label!", "until"],
            )?;
            filters.bool("dangling")?;
            Ok(response::json(
                StatusCode::OK,
                &images.prune(filters).await?,
            ))
        }
    }
}

async fn save(
    images: std::sync::Arc<dyn crate::backend::ImageBackend>,
    names: Vec<String>,
) -> Response<Body> {
    let (out, rx) = TarWriter::channel();
    let fut = Box::pin(async move { images.save(names, out).await });
    drive::raw(fut, rx, "application/x-tar").await
}

/// The decoded `X-Registry-Auth` header (pull and push), `None` when absent.
fn registry_auth(req: &Request<Incoming>) -> Result<Option<crate::auth::AuthConfig>, ApiError> {
    let header = match req.headers().get(REGISTRY_AUTH_HEADER) {
        Some(h) => Some(h.to_str().map_err(|_| {
            ApiError::invalid_argument(
                "invalid X-Registry-Auth header: not ASCII; send base64url-encoded JSON",
            )
        })?),
        None => None,
    };
    decode_registry_auth(header)
}

/// The request body as an `AsyncRead` for the backend.
fn request_reader(req: Request<Incoming>) -> BodyReader {
    let stream = BodyStream::new(req.into_body())
        .try_filter_map(|frame| async move { Ok(frame.into_data().ok()) })
        .map_err(io::Error::other);
    BodyReader::new(StreamReader::new(stream))
}

/// Version-dependent fields of an image list entry (also used by `/system/df`).
pub(crate) fn shape_summary(image: &mut ImageSummary, v: ApiVersion) {
    image.virtual_size = (v < ApiVersion::V1_44).then_some(image.size);
    // before 1.43 untagged images carried placeholder entries instead of empty lists
    if v < ApiVersion::V1_43 {
        if image.repo_tags.is_empty() {
            image.repo_tags.push("<none>:<none>".to_string());
        }
        if image.repo_digests.is_empty() {
            image.repo_digests.push("<none>@<none>".to_string());
        }
    }
}

/// Version-dependent fields of image inspect.
pub(crate) fn shape_inspect(image: &mut ImageInspect, v: ApiVersion) {
    image.virtual_size = (v < ApiVersion::V1_44).then_some(image.size);
    if v < ApiVersion::V1_44 && image.created.is_none() {
        image.created = Some("0001-01-01T00:00:00Z".to_string());
    }
    if v < ApiVersion::V1_45 {
        image.container.get_or_insert_with(String::new);
        image.container_config.get_or_insert_with(Default::default);
    } else {
        image.container = None;
        image.container_config = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(m: Method, p: &str) -> ImageRoute {
        match match_route(&m, p) {
            Matched::Found(r) => r,
            other => panic!("{m} {p}: {other:?}"),
        }
    }

    #[test]
    fn routes_names_with_slashes_colons_and_digests() {
        assert_eq!(found(Method::GET, "/json"), ImageRoute::List);
        assert_eq!(found(Method::POST, "/create"), ImageRoute::Create);
        assert_eq!(found(Method::GET, "/get"), ImageRoute::SaveMany);
        assert_eq!(found(Method::POST, "/delta"), ImageRoute::Delta);
        assert_eq!(
            found(Method::GET, "/127.0.0.1:5000/foo/bar:1/json"),
            ImageRoute::Inspect("127.0.0.1:5000/foo/bar:1".into())
        );
        assert_eq!(
            found(Method::GET, "/busybox@sha256:abcd/history"),
            ImageRoute::History("busybox@sha256:abcd".into())
        );
        assert_eq!(
            found(Method::POST, "/a/b:c/tag"),
            ImageRoute::Tag("a/b:c".into())
        );
        assert_eq!(
            found(Method::GET, "/x/y/get"),
            ImageRoute::Save("x/y".into())
        );
        assert_eq!(
            found(Method::DELETE, "/127.0.0.1:5000/foo:1"),
            ImageRoute::Remove("127.0.0.1:5000/foo:1".into())
        );
        // an image literally named "json" is still reachable
        assert_eq!(
            found(Method::GET, "/json/json"),
            ImageRoute::Inspect("json".into())
        );
        assert_eq!(
            match_route(&Method::POST, "/foo/json"),
            Matched::WrongMethod
        );
        assert_eq!(match_route(&Method::GET, "/foo"), Matched::WrongMethod);
        assert_eq!(
            found(Method::POST, "/127.0.0.1:5000/a/b/push"),
            ImageRoute::Push("127.0.0.1:5000/a/b".into())
        );
        assert_eq!(match_route(&Method::GET, "/a/b/push"), Matched::WrongMethod);
        assert_eq!(match_route(&Method::GET, ""), Matched::NotFound);
    }

    #[test]
    fn shapes_fields_by_version() {
        let mut s = ImageSummary {
            size: 42,
            ..Default::default()
        };
        shape_summary(&mut s, ApiVersion::new(1, 41));
        assert_eq!(s.virtual_size, Some(42));
        assert_eq!(s.repo_tags, ["<none>:<none>"]);
        let mut s = ImageSummary {
            size: 42,
            ..Default::default()
        };
        shape_summary(&mut s, ApiVersion::V1_47);
        assert_eq!(s.virtual_size, None);
        assert!(s.repo_tags.is_empty());

        let mut i = ImageInspect {
            size: 7,
            container: Some("c".into()),
            ..Default::default()
        };
        shape_inspect(&mut i, ApiVersion::V1_47);
        let v = serde_json::to_value(&i).unwrap();
        for gone in ["VirtualSize", "Container", "ContainerConfig", "Created"] {
            assert!(v.get(gone).is_none(), "{gone}");
        }
        let mut i = ImageInspect {
            size: 7,
            ..Default::default()
        };
        shape_inspect(&mut i, ApiVersion::V1_43);
        let v = serde_json::to_value(&i).unwrap();
        assert_eq!(v["VirtualSize"], 7);
        assert_eq!(v["Container"], "");
        assert!(v["ContainerConfig"].is_object());
        assert_eq!(v["Created"], "0001-01-01T00:00:00Z");
        let mut i = ImageInspect::default();
        shape_inspect(&mut i, ApiVersion::V1_44);
        let v = serde_json::to_value(&i).unwrap();
        assert!(v.get("VirtualSize").is_none());
        assert!(v.get("Container").is_some());
    }
}
