//! The real server on a temp unix socket, with a small in-test backend (the routing layer is
//! what is under test here; the engine's integration tests drive the real engine).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use skiff_api::types::image::{
    HistoryItem, ImageDeleteItem, ImageInspect, ImageListOptions, ImageSummary, PruneReport,
    PullRequest,
};
use skiff_api::types::system::{AuthResponse, DiskUsage, SystemInfo, SystemVersion};
use skiff_api::{
    ApiError, ApiVersion, Backends, BodyReader, Filters, ImageBackend, Progress, ProgressMessage,
    SystemBackend, TarWriter,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{oneshot, Notify};
use tokio::task::JoinHandle;

mod fake;

/// Backend whose answers echo what the router handed it.
#[derive(Default)]
struct Echo {
    /// `pull stream` waits on this between its two messages.
    release: Notify,
    /// Fired when the `pull hang` future is dropped.
    dropped: Mutex<Option<oneshot::Sender<()>>>,
}

struct DropSignal(Option<oneshot::Sender<()>>);
impl Drop for DropSignal {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

#[async_trait]
impl SystemBackend for Echo {
    async fn version(&self) -> Result<SystemVersion, ApiError> {
        Ok(SystemVersion::skiff(
            "0.1.0-test",
            "testcommit",
            "6.0.0",
            "2026-01-01T00:00:00Z",
        ))
    }
    async fn info(&self) -> Result<SystemInfo, ApiError> {
        Ok(SystemInfo {
            name: "testhost".into(),
            server_version: "0.1.0-test".into(),
            ..Default::default()
        })
    }
    async fn auth(&self, auth: skiff_api::AuthConfig) -> Result<AuthResponse, ApiError> {
        if auth.username == "good" {
            Ok(AuthResponse {
                status: "Login Succeeded".into(),
                identity_token: String::new(),
            })
        } else {
            Err(ApiError::unauthorized("bad credentials"))
        }
    }
    async fn disk_usage(&self, _v: ApiVersion) -> Result<DiskUsage, ApiError> {
        Ok(DiskUsage {
            layers_size: 10,
            images: Some(vec![ImageSummary {
                id: "sha256:a".into(),
                size: 10,
                ..Default::default()
            }]),
            containers: Some(vec![]),
            volumes: Some(vec![]),
            build_cache: Some(vec![]),
        })
    }
}

#[async_trait]
impl ImageBackend for Echo {
    async fn pull(&self, req: PullRequest, progress: Progress) -> Result<(), ApiError> {
        // the CLI sends normalised names (docker.io/library/x): match the last component
        match req.from_image.rsplit('/').next().unwrap_or_default() {
            "stream" => {
                progress.status("first", Some("l1")).await?;
                self.release.notified().await;
                progress.status("second", Some("l1")).await?;
                Ok(())
            }
            "hang" => {
                let _signal = DropSignal(self.dropped.lock().unwrap().take());
                progress.status("started", None).await?;
                std::future::pending::<()>().await;
                Ok(())
            }
            // dockerd answers a missing/denied repository with 404: on 401 the CLI would prompt
            // for a login
            "silent-hang" => {
                let _signal = DropSignal(self.dropped.lock().unwrap().take());
                std::future::pending::<()>().await;
                Ok(())
            }
            "denied" => Err(ApiError::not_found("pull access denied for denied, repository does not exist or may require 'docker login'")),
            "late-fail" => {
                progress.status("Pulling fs layer", Some("l1")).await?;
                Err(ApiError::internal("layer l1 failed verification"))
            }
            _ => {
                let user = req.auth.as_ref().map(|a| a.username.clone()).unwrap_or_default();
                let msg = ProgressMessage::status(
                    format!("ref={} platform={} user={user}", req.reference(), req.platform.unwrap_or_default()),
                    None,
                );
                progress.send(msg).await
            }
        }
    }
    async fn push(
        &self,
        name: &str,
        tag: &str,
        auth: Option<skiff_api::AuthConfig>,
        progress: Progress,
    ) -> Result<(), ApiError> {
        if name.ends_with("/missing") {
            return Err(ApiError::not_found(format!(
                "An image does not exist locally with the tag: {name}"
            )));
        }
        let user = auth.map(|a| a.username).unwrap_or_default();
        progress
            .status(format!("push name={name} tag={tag} user={user}"), None)
            .await
    }
    async fn list(&self, opts: ImageListOptions) -> Result<Vec<ImageSummary>, ApiError> {
        Ok(vec![ImageSummary {
            id: "sha256:1111".into(),
            repo_tags: vec!["busybox:latest".into()],
            size: 5,
            labels: [
                ("filters".to_string(), opts.filters.to_json()),
                ("all".to_string(), opts.all.to_string()),
            ]
            .into(),
            ..Default::default()
        }])
    }
    async fn inspect(&self, name: &str) -> Result<ImageInspect, ApiError> {
        match name {
            "missing" => Err(ApiError::not_found(format!("No such image: {name}"))),
            "slow" => {
                tokio::time::sleep(Duration::from_millis(500)).await;
                Ok(ImageInspect {
                    repo_tags: vec![name.into()],
                    ..Default::default()
                })
            }
            _ => Ok(ImageInspect {
                id: "sha256:2222".into(),
                repo_tags: vec![name.into()],
                size: 9,
                ..Default::default()
            }),
        }
    }
    async fn history(&self, name: &str) -> Result<Vec<HistoryItem>, ApiError> {
        Ok(vec![HistoryItem {
            id: name.into(),
            ..Default::default()
        }])
    }
    async fn tag(&self, name: &str, repo: &str, tag: Option<&str>) -> Result<(), ApiError> {
        if repo == "conflict" {
            return Err(ApiError::conflict(format!("cannot tag {name}")));
        }
        let _ = tag;
        Ok(())
    }
    async fn remove(
        &self,
        name: &str,
        force: bool,
        _noprune: bool,
    ) -> Result<Vec<ImageDeleteItem>, ApiError> {
        Ok(vec![
            ImageDeleteItem::Untagged(name.into()),
            ImageDeleteItem::Deleted(format!("force={force}")),
        ])
    }
    async fn load(
        &self,
        mut body: BodyReader,
        quiet: bool,
        progress: Progress,
    ) -> Result<(), ApiError> {
        let mut buf = String::new();
        body.read_to_string(&mut buf)
            .await
            .map_err(|e| ApiError::invalid_argument(e.to_string()))?;
        progress
            .send(ProgressMessage::stream(format!(
                "Loaded image: {buf} quiet={quiet}\n"
            )))
            .await
    }
    async fn save(&self, names: Vec<String>, mut out: TarWriter) -> Result<(), ApiError> {
        if names.iter().any(|n| n == "missing") {
            return Err(ApiError::not_found("No such image: missing"));
        }
        out.send(Bytes::from(format!("tar:{}", names.join(","))))
            .await?;
        out.write_all(b";end")
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?;
        if names.iter().any(|n| n == "breaks") {
            // fail once the first bytes are surely on the wire
            tokio::time::sleep(Duration::from_millis(100)).await;
            return Err(ApiError::internal("disk read failed mid-save"));
        }
        Ok(())
    }
    async fn prune(&self, filters: Filters) -> Result<PruneReport, ApiError> {
        Ok(PruneReport {
            images_deleted: vec![ImageDeleteItem::Deleted(filters.to_json())],
            space_reclaimed: 3,
        })
    }
}

struct Server {
    _dir: tempfile::TempDir,
    sock: PathBuf,
    backend: Arc<Echo>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("api.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let backend = Arc::new(Echo::default());
    let containers = Arc::new(fake::Fake::new().0);
    let backends = Backends {
        system: backend.clone(),
        images: backend.clone(),
        containers: containers.clone(),
        execs: containers.clone(),
        events: containers,
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(skiff_api::serve(listener, backends, async {
        let _ = stopped.await;
    }));
    Server {
        _dir: dir,
        sock,
        backend,
        stop: Some(stop),
        task,
    }
}

/// One HTTP/1.1 connection to the socket; the connection task is returned so tests can cut it.
async fn connect(
    sock: &Path,
) -> (
    hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    JoinHandle<()>,
) {
    let io = TokioIo::new(UnixStream::connect(sock).await.unwrap());
    let (sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
    let task = tokio::spawn(async move {
        let _ = conn.await;
    });
    (sender, task)
}

async fn send(
    sock: &Path,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> http::Response<Incoming> {
    let (mut sender, _conn) = connect(sock).await;
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "docker");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(Bytes::from(body.to_string()))).unwrap();
    sender.send_request(req).await.unwrap()
}

async fn call(sock: &Path, method: Method, path: &str) -> (StatusCode, HeaderMap, Bytes) {
    call_with(sock, method, path, &[], "").await
}

async fn call_with(
    sock: &Path,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (StatusCode, HeaderMap, Bytes) {
    let resp = send(sock, method, path, headers, body).await;
    let (parts, body) = resp.into_parts();
    (
        parts.status,
        parts.headers,
        body.collect().await.unwrap().to_bytes(),
    )
}

fn json(body: &Bytes) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)))
}

fn lines(body: &Bytes) -> Vec<Value> {
    body.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect()
}

fn assert_common_headers(h: &HeaderMap) {
    assert_eq!(h["api-version"], "1.47");
    assert_eq!(h["ostype"], "linux");
    assert_eq!(h["docker-experimental"], "false");
    assert!(
        h["server"].to_str().unwrap().starts_with("skiff/"),
        "{:?}",
        h["server"]
    );
    assert!(h["server"].to_str().unwrap().ends_with(" (linux)"));
}

#[tokio::test]
async fn ping_answers_head_and_get_with_dockers_headers() {
    let s = start();
    for (method, body) in [(Method::HEAD, ""), (Method::GET, "OK")] {
        let (status, h, b) = call(&s.sock, method.clone(), "/_ping").await;
        assert_eq!(status, 200, "{method}");
        assert_common_headers(&h);
        assert_eq!(h["cache-control"], "no-cache, no-store, must-revalidate");
        assert_eq!(h["pragma"], "no-cache");
        assert_eq!(h["builder-version"], "1");
        assert_eq!(h["swarm"], "inactive");
        assert!(h["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain"));
        assert_eq!(b, body);
        if method == Method::HEAD {
            assert_eq!(h["content-length"], "0");
        }
    }
    let (status, _, b) = call(&s.sock, Method::GET, "/v1.30/_ping").await;
    assert_eq!((status, b.as_ref()), (StatusCode::OK, b"OK".as_ref()));
}

#[tokio::test]
async fn versioned_and_unversioned_paths_and_version_bounds() {
    let s = start();
    for path in [
        "/version",
        "/v1.47/version",
        "/v1.24/version",
        "/v1.41/version",
    ] {
        let (status, h, b) = call(&s.sock, Method::GET, path).await;
        assert_eq!(status, 200, "{path}");
        assert_common_headers(&h);
        let v = json(&b);
        assert_eq!(v["ApiVersion"], "1.47");
        assert_eq!(v["MinAPIVersion"], "1.24");
        assert_eq!(v["Version"], "0.1.0-test");
    }
    let (status, h, b) = call(&s.sock, Method::GET, "/v1.99/version").await;
    assert_eq!(status, 400);
    assert_common_headers(&h);
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(
        json(&b)["message"],
        "client version 1.99 is too new. Maximum supported API version is 1.47"
    );
    let (status, _, b) = call(&s.sock, Method::GET, "/v1.12/version").await;
    assert_eq!(status, 400);
    assert_eq!(
        json(&b)["message"],
        "client version 1.12 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version"
    );
    let (status, _, b) = call(&s.sock, Method::GET, "/info").await;
    assert_eq!(status, 200);
    let info = json(&b);
    assert_eq!(info["Name"], "testhost");
    assert!(!info["SystemTime"].as_str().unwrap().is_empty());
    let (status, _, b) = call(&s.sock, Method::GET, "/v1.43/system/df?type=image").await;
    assert_eq!(status, 200);
    let df = json(&b);
    assert_eq!(df["Images"][0]["VirtualSize"], 10);
    assert!(df["Containers"].is_null());
    let (status, _, _) = call(&s.sock, Method::GET, "/system/df?type=nope").await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn unknown_paths_are_json_404_and_wrong_methods_405() {
    let s = start();
    for path in ["/nope", "/v1.47/containers/json/x/y", "/v1.4.7/_ping", "/"] {
        let (status, h, b) = call(&s.sock, Method::GET, path).await;
        assert_eq!(status, 404, "{path}");
        assert_common_headers(&h);
        assert_eq!(h["content-type"], "application/json");
        assert_eq!(json(&b)["message"], "page not found");
    }
    let (status, h, _) = call(&s.sock, Method::POST, "/version").await;
    assert_eq!(status, 405);
    assert_common_headers(&h);
}

#[tokio::test]
async fn image_names_with_slashes_colons_and_digests_route_to_the_right_handler() {
    let s = start();
    let cases = [
        (
            "/images/127.0.0.1:5000/foo/bar:1/json",
            "127.0.0.1:5000/foo/bar:1",
        ),
        (
            "/v1.47/images/127.0.0.1%3A5000%2Ffoo%2Fbar%3A1/json",
            "127.0.0.1:5000/foo/bar:1",
        ),
        (
            "/images/busybox@sha256:0123abcd/json",
            "busybox@sha256:0123abcd",
        ),
        ("/images/json/json", "json"),
    ];
    for (path, name) in cases {
        let (status, _, b) = call(&s.sock, Method::GET, path).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(json(&b)["RepoTags"][0], name, "{path}");
    }
    let (status, _, b) = call(&s.sock, Method::GET, "/images/a/b:c/history").await;
    assert_eq!(
        (status, json(&b)[0]["Id"].clone()),
        (StatusCode::OK, Value::from("a/b:c"))
    );
    let (status, _, b) = call(
        &s.sock,
        Method::DELETE,
        "/images/127.0.0.1:5000/foo:1?force=1",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        json(&b),
        serde_json::json!([{"Untagged": "127.0.0.1:5000/foo:1"}, {"Deleted": "force=true"}])
    );
    let (status, _, b) = call(&s.sock, Method::POST, "/images/a/b:c/tag?repo=x/y&tag=2").await;
    assert_eq!((status, b.len()), (StatusCode::CREATED, 0));
    let (status, _, b) = call(&s.sock, Method::POST, "/images/a/tag?repo=conflict").await;
    assert_eq!(status, 409);
    assert_eq!(json(&b)["message"], "cannot tag a");
    let (status, _, _) = call(&s.sock, Method::POST, "/images/a/tag").await;
    assert_eq!(status, 400);
    let (status, h, b) = call(&s.sock, Method::GET, "/images/missing/json").await;
    assert_eq!(status, 404);
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(json(&b)["message"], "No such image: missing");
}

#[tokio::test]
async fn responses_are_shaped_by_the_requested_version() {
    let s = start();
    let (_, _, b) = call(&s.sock, Method::GET, "/v1.43/images/x/json").await;
    let old = json(&b);
    assert_eq!(old["VirtualSize"], 9);
    assert!(old.get("ContainerConfig").is_some());
    let (_, _, b) = call(&s.sock, Method::GET, "/images/x/json").await;
    let new = json(&b);
    assert!(new.get("VirtualSize").is_none());
    assert!(new.get("ContainerConfig").is_none());
    assert_eq!(new["Size"], 9);
    let (_, _, b) = call(&s.sock, Method::GET, "/v1.40/images/json?filter=busy*").await;
    let list = json(&b);
    assert_eq!(list[0]["VirtualSize"], 5);
    assert_eq!(list[0]["Labels"]["filters"], r#"{"reference":["busy*"]}"#);
}

#[tokio::test]
async fn bad_queries_and_filters_are_400() {
    let s = start();
    let (status, _, b) = call(&s.sock, Method::GET, "/images/json?all=maybe").await;
    assert_eq!(status, 400);
    assert!(json(&b)["message"].as_str().unwrap().contains("'all'"));
    let (status, _, b) = call(
        &s.sock,
        Method::GET,
        "/images/json?filters=%7B%22nope%22%3A%5B%22x%22%5D%7D",
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(json(&b)["message"], "invalid filter 'nope'");
    let (status, _, _) = call(&s.sock, Method::GET, "/images/json?filters=%7Bbroken").await;
    assert_eq!(status, 400);
    // legacy filter form, accepted and normalised
    let legacy = "%7B%22label%22%3A%7B%22a%3Db%22%3Atrue%7D%7D";
    let (status, _, b) = call(
        &s.sock,
        Method::GET,
        &format!("/images/json?all=True&filters={legacy}"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(json(&b)[0]["Labels"]["filters"], r#"{"label":["a=b"]}"#);
    assert_eq!(json(&b)[0]["Labels"]["all"], "true");
    let (status, _, b) = call(
        &s.sock,
        Method::POST,
        "/images/prune?filters=%7B%22dangling%22%3A%5B%22false%22%5D%7D",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        json(&b)["ImagesDeleted"][0]["Deleted"],
        r#"{"dangling":["false"]}"#
    );
    assert_eq!(json(&b)["SpaceReclaimed"], 3);
    let (status, _, _) = call(
        &s.sock,
        Method::POST,
        "/images/prune?filters=%7B%22reference%22%3A%5B%22x%22%5D%7D",
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn pull_passes_query_and_registry_auth_and_maps_errors() {
    let s = start();
    let auth = "eyJ1c2VybmFtZSI6Im1lIiwicGFzc3dvcmQiOiJwdyJ9"; // {"username":"me","password":"pw"}, unpadded
    let (status, h, b) = call_with(
        &s.sock,
        Method::POST,
        "/images/create?fromImage=127.0.0.1:5000/a&tag=sha256:00ff&platform=linux/arm64",
        &[("x-registry-auth", auth)],
        "",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(
        lines(&b)[0]["status"],
        "ref=127.0.0.1:5000/a@sha256:00ff platform=linux/arm64 user=me"
    );

    let (status, _, b) = call_with(
        &s.sock,
        Method::POST,
        "/images/create?fromImage=a&tag=1",
        &[("x-registry-auth", "%%%")],
        "",
    )
    .await;
    assert_eq!(status, 400);
    assert!(json(&b)["message"]
        .as_str()
        .unwrap()
        .starts_with("invalid X-Registry-Auth header"));

    // an error before the first message keeps its status
    let (status, _, b) = call(
        &s.sock,
        Method::POST,
        "/images/create?fromImage=denied&tag=1",
    )
    .await;
    assert_eq!(status, 404);
    assert!(json(&b)["message"]
        .as_str()
        .unwrap()
        .starts_with("pull access denied for denied"));

    // after it, the error travels in the stream
    let (status, _, b) = call(
        &s.sock,
        Method::POST,
        "/images/create?fromImage=late-fail&tag=1",
    )
    .await;
    assert_eq!(status, 200);
    let l = lines(&b);
    assert_eq!(l[0]["status"], "Pulling fs layer");
    assert_eq!(
        l[1]["errorDetail"]["message"],
        "layer l1 failed verification"
    );
    assert_eq!(l[1]["error"], "layer l1 failed verification");

    for bad in ["/images/create?fromSrc=-", "/images/create?tag=1"] {
        let (status, _, _) = call(&s.sock, Method::POST, bad).await;
        assert_eq!(status, 400, "{bad}");
    }
}

#[tokio::test]
async fn push_passes_name_tag_and_registry_auth_and_maps_errors() {
    let s = start();
    let auth = "eyJ1c2VybmFtZSI6Im1lIiwicGFzc3dvcmQiOiJwdyJ9"; // {"username":"me","password":"pw"}, unpadded
    let (status, h, b) = call_with(
        &s.sock,
        Method::POST,
        "/images/127.0.0.1:5000/a/b/push?tag=v1",
        &[("x-registry-auth", auth)],
        "",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(
        lines(&b)[0]["status"],
        "push name=127.0.0.1:5000/a/b tag=v1 user=me"
    );
    let (status, _, b) = call(&s.sock, Method::POST, "/images/x/missing/push?tag=1").await;
    assert_eq!(status, 404);
    assert_eq!(
        json(&b)["message"],
        "An image does not exist locally with the tag: x/missing"
    );
    let (status, _, _) = call_with(
        &s.sock,
        Method::POST,
        "/images/a/push",
        &[("x-registry-auth", "%%%")],
        "",
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn json_lines_arrive_one_by_one_before_the_backend_finishes() {
    let s = start();
    let resp = send(
        &s.sock,
        Method::POST,
        "/images/create?fromImage=stream&tag=1",
        &[],
        "",
    )
    .await;
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    // the backend is parked until we release it, so this line can only come from a flush
    let first = tokio::time::timeout(Duration::from_secs(5), body.frame())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let first = first.into_data().unwrap();
    assert_eq!(
        lines(&first),
        vec![serde_json::json!({"status": "first", "id": "l1"})]
    );
    s.backend.release.notify_one();
    let rest = tokio::time::timeout(Duration::from_secs(5), body.collect())
        .await
        .unwrap()
        .unwrap()
        .to_bytes();
    assert_eq!(
        lines(&rest),
        vec![serde_json::json!({"status": "second", "id": "l1"})]
    );
}

#[tokio::test]
async fn closing_the_connection_mid_stream_cancels_the_backend() {
    let s = start();
    let (dropped_tx, dropped_rx) = oneshot::channel();
    *s.backend.dropped.lock().unwrap() = Some(dropped_tx);
    let (mut sender, conn) = connect(&s.sock).await;
    let req = Request::post("/images/create?fromImage=hang&tag=1")
        .header("host", "docker")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let mut body = resp.into_body();
    let first = tokio::time::timeout(Duration::from_secs(5), body.frame())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(lines(&first.into_data().unwrap())[0]["status"], "started");
    // hang up: the socket closes with the client's connection task
    drop(body);
    drop(sender);
    conn.abort();
    tokio::time::timeout(Duration::from_secs(5), dropped_rx)
        .await
        .expect("the backend future was not dropped after the client left")
        .unwrap();
}

#[tokio::test]
async fn closing_the_connection_before_the_first_message_cancels_the_backend() {
    // e.g. a pull stuck resolving the registry: no header has gone out yet
    let s = start();
    let (dropped_tx, dropped_rx) = oneshot::channel();
    *s.backend.dropped.lock().unwrap() = Some(dropped_tx);
    let (mut sender, conn) = connect(&s.sock).await;
    let req = Request::post("/images/create?fromImage=silent-hang&tag=1")
        .header("host", "docker")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let pending = tokio::spawn(async move { sender.send_request(req).await.map(|_| ()) });
    tokio::time::sleep(Duration::from_millis(200)).await;
    conn.abort();
    tokio::time::timeout(Duration::from_secs(5), dropped_rx)
        .await
        .expect("the backend future was not dropped after the client left")
        .unwrap();
    assert!(pending.await.unwrap().is_err());
}

#[tokio::test]
async fn save_and_load_stream_bodies() {
    let s = start();
    let (status, h, b) = call(&s.sock, Method::GET, "/images/get?names=a/b:1&names=c").await;
    assert_eq!(status, 200);
    assert_eq!(h["content-type"], "application/x-tar");
    assert_eq!(b, "tar:a/b:1,c;end");
    let (status, _, b) = call(&s.sock, Method::GET, "/images/127.0.0.1:5000/x:1/get").await;
    assert_eq!(
        (status, b),
        (StatusCode::OK, Bytes::from("tar:127.0.0.1:5000/x:1;end"))
    );
    // failing before the first byte: a real status
    let (status, h, b) = call(&s.sock, Method::GET, "/images/missing/get").await;
    assert_eq!(status, 404);
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(json(&b)["message"], "No such image: missing");
    // failing after it: the body is cut, the client sees an error instead of a short tar
    let resp = send(&s.sock, Method::GET, "/images/breaks/get", &[], "").await;
    assert_eq!(resp.status(), 200);
    assert!(resp.into_body().collect().await.is_err());
    let (status, _, _) = call(&s.sock, Method::GET, "/images/get").await;
    assert_eq!(status, 400);

    let (status, h, b) = call_with(
        &s.sock,
        Method::POST,
        "/images/load?quiet=0",
        &[("content-type", "application/x-tar")],
        "TARDATA",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(
        lines(&b),
        vec![serde_json::json!({"stream": "Loaded image: TARDATA quiet=false\n"})]
    );
}

#[tokio::test]
async fn keep_alive_serves_several_requests_on_one_connection() {
    let s = start();
    let (mut sender, _conn) = connect(&s.sock).await;
    for path in ["/_ping", "/version", "/images/x/json", "/nope"] {
        let req = Request::get(path)
            .header("host", "docker")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let resp = sender.send_request(req).await.unwrap();
        let want = if path == "/nope" { 404 } else { 200 };
        assert_eq!(resp.status(), want, "{path}");
        resp.into_body().collect().await.unwrap();
    }
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish_and_stops_accepting() {
    let mut s = start();
    let sock = s.sock.clone();
    let in_flight =
        tokio::spawn(async move { call(&sock, Method::GET, "/images/slow/json").await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.stop.take().unwrap().send(()).unwrap();
    let (status, _, b) = in_flight.await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(json(&b)["RepoTags"][0], "slow");
    tokio::time::timeout(Duration::from_secs(5), &mut s.task)
        .await
        .unwrap()
        .unwrap();
    assert!(UnixStream::connect(&s.sock).await.is_err());
}

#[tokio::test]
async fn raw_http_ping_matches_dockerd_bytes() {
    // what the docker CLI sees first, checked on the wire
    let s = start();
    let mut c = UnixStream::connect(&s.sock).await.unwrap();
    c.write_all(b"HEAD /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    let lower = out.to_ascii_lowercase();
    assert!(lower.contains("\r\ncontent-length: 0\r\n"), "{out}");
    assert!(lower.contains("\r\napi-version: 1.47\r\n"), "{out}");
    assert!(
        out.ends_with("\r\n\r\n"),
        "HEAD must not carry a body: {out}"
    );
}

/// Runs the docker CLI against the test socket; killed (by its own handle) after 60 s.
fn docker(sock: &Path, config: &Path, args: &[&str]) -> Output {
    let mut child = Command::new("docker")
        .args(args)
        .env("DOCKER_HOST", format!("unix://{}", sock.display()))
        .env("DOCKER_CONFIG", config)
        .env_remove("DOCKER_API_VERSION")
        .env_remove("DOCKER_CONTEXT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the docker CLI must be on PATH");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "docker {args:?} hung: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_docker_cli_completes_the_handshake() {
    let s = start();
    let config = tempfile::tempdir().unwrap();
    let (sock, cfg) = (s.sock.clone(), config.path().to_path_buf());
    let out = tokio::task::spawn_blocking(move || {
        docker(&sock, &cfg, &["version", "--format", "{{json .Server}}"])
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "docker version failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let server: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(server["ApiVersion"], "1.47");
    assert_eq!(server["MinAPIVersion"], "1.24");
    assert_eq!(server["Version"], "0.1.0-test");
    assert_eq!(server["Os"], "linux");

    let (sock, cfg) = (s.sock.clone(), config.path().to_path_buf());
    let out = tokio::task::spawn_blocking(move || {
        docker(
            &sock,
            &cfg,
            &[
                "image",
                "ls",
                "--format",
                "{{.Repository}}:{{.Tag}} {{.ID}}",
            ],
        )
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "docker image ls failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "busybox:latest 1111"
    );

    // the CLI decodes /info, /system/df and image inspect into its own types: any field of
    // the wrong type fails here
    let checks: [(&[&str], &str); 4] = [
        (
            &[
                "info",
                "--format",
                "{{.ServerVersion}} {{.Driver}} {{.Swarm.LocalNodeState}}",
            ],
            "0.1.0-test overlay2 inactive",
        ),
        (
            &["system", "df", "--format", "{{.Type}}"],
            "Images\nContainers\nLocal Volumes\nBuild Cache",
        ),
        (
            &[
                "image",
                "inspect",
                "--format",
                "{{index .RepoTags 0}} {{.Size}}",
                "127.0.0.1:5000/foo/bar:1",
            ],
            "127.0.0.1:5000/foo/bar:1 9",
        ),
        (&["tag", "busybox", "127.0.0.1:5000/x:2"], ""),
    ];
    for (args, want) in checks {
        let (sock, cfg) = (s.sock.clone(), config.path().to_path_buf());
        let out = tokio::task::spawn_blocking(move || docker(&sock, &cfg, args))
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "docker {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            want,
            "docker {args:?}"
        );
    }

    // save writes the tar body as is; load streams it back and prints the JSON lines
    let tar = config.path().join("img.tar");
    let tar_arg = tar.to_str().unwrap().to_string();
    let (sock, cfg) = (s.sock.clone(), config.path().to_path_buf());
    let out = tokio::task::spawn_blocking(move || {
        docker(&sock, &cfg, &["save", "-o", &tar_arg, "a/b:1"])
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "docker save failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(&tar).unwrap(), b"tar:a/b:1;end");
    let tar_arg = tar.to_str().unwrap().to_string();
    let (sock, cfg) = (s.sock.clone(), config.path().to_path_buf());
    let out = tokio::task::spawn_blocking(move || docker(&sock, &cfg, &["load", "-i", &tar_arg]))
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "docker load failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "Loaded image: tar:a/b:1;end quiet=true" // no TTY: the CLI asks for quiet
    );

    let (sock, cfg) = (s.sock.clone(), config.path().to_path_buf());
    let out = tokio::task::spawn_blocking(move || docker(&sock, &cfg, &["pull", "denied"]))
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("pull access denied for denied"), "{stderr}");
}

#[tokio::test]
async fn auth_passes_credentials_and_maps_refusal_to_401() {
    let s = start();
    let (status, _, b) = call_with(
        &s.sock,
        Method::POST,
        "/v1.47/auth",
        &[("content-type", "application/json")],
        r#"{"username":"good","password":"x","serveraddress":"127.0.0.1:5000"}"#,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(json(&b)["Status"], "Login Succeeded");
    let (status, _, b) =
        call_with(&s.sock, Method::POST, "/auth", &[], r#"{"username":"bad"}"#).await;
    assert_eq!(status, 401);
    assert_eq!(json(&b)["message"], "bad credentials");
    let (status, _, _) = call_with(&s.sock, Method::POST, "/auth", &[], "{not json").await;
    assert_eq!(status, 400);
    let (status, _, _) = call(&s.sock, Method::GET, "/auth").await;
    assert_eq!(status, 405);
}
