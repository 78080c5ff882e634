//! Container, exec and events routes on the real server over a temp unix socket, with the
//! test double in `fake/` as the backend (the routes and stream encodings are under test;
//! the engine's integration tests drive real containers).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use skiff_api::mux::{demux, Demuxer};
use skiff_api::types::event::EventMessage;
use skiff_api::Backends;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

mod fake;
use fake::Fake;

/// Whatever a test waits on must come within this, or the test fails (not a timing
/// assertion: only a guard against hanging forever).
const GUARD: Duration = Duration::from_secs(20);

struct Server {
    _dir: tempfile::TempDir,
    sock: PathBuf,
    fake: Arc<Fake>,
    events: mpsc::Sender<EventMessage>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.abort();
    }
}

/// The system and image areas are not exercised here: they reuse the container double
/// through a tiny adapter that refuses everything.
mod unused {
    use async_trait::async_trait;
    use skiff_api::types::image::*;
    use skiff_api::types::system::*;
    use skiff_api::*;

    pub struct Nothing;
    fn no() -> ApiError {
        ApiError::not_implemented("not part of this test")
    }
    #[async_trait]
    impl SystemBackend for Nothing {
        async fn version(&self) -> Result<SystemVersion, ApiError> {
            Err(no())
        }
        async fn info(&self) -> Result<SystemInfo, ApiError> {
            Err(no())
        }
        async fn disk_usage(&self, _v: ApiVersion) -> Result<DiskUsage, ApiError> {
            Err(no())
        }
        async fn auth(&self, _a: AuthConfig) -> Result<AuthResponse, ApiError> {
            Err(no())
        }
    }
    #[async_trait]
    impl ImageBackend for Nothing {
        async fn pull(&self, _r: PullRequest, _p: Progress) -> Result<(), ApiError> {
            Err(no())
        }
        async fn push(
            &self,
            _n: &str,
            _t: &str,
            _a: Option<AuthConfig>,
            _p: Progress,
        ) -> Result<(), ApiError> {
            Err(no())
        }
        async fn list(&self, _o: ImageListOptions) -> Result<Vec<ImageSummary>, ApiError> {
            Err(no())
        }
        async fn inspect(&self, _n: &str) -> Result<ImageInspect, ApiError> {
            Err(no())
        }
        async fn history(&self, _n: &str) -> Result<Vec<HistoryItem>, ApiError> {
            Err(no())
        }
        async fn tag(&self, _n: &str, _r: &str, _t: Option<&str>) -> Result<(), ApiError> {
            Err(no())
        }
        async fn remove(
            &self,
            _n: &str,
            _f: bool,
            _p: bool,
        ) -> Result<Vec<ImageDeleteItem>, ApiError> {
            Err(no())
        }
        async fn load(&self, _b: BodyReader, _q: bool, _p: Progress) -> Result<(), ApiError> {
            Err(no())
        }
        async fn save(&self, _n: Vec<String>, _o: TarWriter) -> Result<(), ApiError> {
            Err(no())
        }
        async fn prune(&self, _f: Filters) -> Result<PruneReport, ApiError> {
            Err(no())
        }
    }
}

fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("api.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let (fake, events) = Fake::new();
    let fake = Arc::new(fake);
    let nothing = Arc::new(unused::Nothing);
    let backends = Backends {
        system: nothing.clone(),
        images: nothing,
        containers: fake.clone(),
        execs: fake.clone(),
        events: fake.clone(),
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(skiff_api::serve(listener, backends, async {
        let _ = stopped.await;
    }));
    Server {
        _dir: dir,
        sock,
        fake,
        events,
        stop: Some(stop),
        task,
    }
}

async fn send(sock: &Path, method: Method, path: &str, body: &str) -> http::Response<Incoming> {
    let io = TokioIo::new(UnixStream::connect(sock).await.unwrap());
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "docker")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    sender.send_request(req).await.unwrap()
}

async fn call(
    sock: &Path,
    method: Method,
    path: &str,
    body: &str,
) -> (StatusCode, HeaderMap, Bytes) {
    let resp = tokio::time::timeout(GUARD, send(sock, method, path, body))
        .await
        .expect("response headers");
    let (parts, body) = resp.into_parts();
    let bytes = tokio::time::timeout(GUARD, body.collect())
        .await
        .expect("response body")
        .unwrap()
        .to_bytes();
    (parts.status, parts.headers, bytes)
}

fn json_of(b: &Bytes) -> Value {
    serde_json::from_slice(b).unwrap_or_else(|e| panic!("not JSON ({e}): {b:?}"))
}

#[tokio::test]
async fn lifecycle_routes_answer_dockers_status_codes() {
    let s = start();
    let cases: &[(Method, &str, u16)] = &[
        (Method::POST, "/containers/stopped/start", 204),
        (Method::POST, "/v1.41/containers/web/start", 304),
        (Method::POST, "/containers/nope/start", 404),
        (Method::POST, "/containers/web/stop?t=5&signal=SIGTERM", 204),
        (Method::POST, "/containers/stopped/stop", 304),
        (Method::POST, "/containers/nope/stop", 404),
        (Method::POST, "/containers/web/restart?t=1", 204),
        (Method::POST, "/containers/web/kill?signal=HUP", 204),
        (Method::POST, "/containers/stopped/kill", 409),
        (Method::POST, "/containers/web/pause", 204),
        (Method::POST, "/containers/stopped/pause", 409),
        (Method::POST, "/containers/web/unpause", 204),
        (Method::POST, "/containers/web/rename?name=web2", 204),
        (Method::POST, "/containers/web/rename", 400),
        (Method::POST, "/containers/web/rename?name=bad%2Fname", 400),
        (Method::POST, "/containers/create?name=-x", 400),
        (Method::POST, "/containers/web/resize?h=40&w=100", 200),
        (Method::POST, "/containers/web/resize?h=40", 400),
        (Method::DELETE, "/containers/web", 409),
        (Method::DELETE, "/containers/web?force=1&v=true", 204),
        (Method::DELETE, "/containers/nope", 404),
        (Method::GET, "/containers/web/start", 405),
        (Method::GET, "/containers/web/changes", 501),
        (Method::PUT, "/containers/web/archive?path=/", 501),
        (Method::POST, "/containers/web/stop?t=soon", 400),
    ];
    for (m, path, want) in cases {
        let (status, h, body) = call(&s.sock, m.clone(), path, "").await;
        assert_eq!(status.as_u16(), *want, "{m} {path}: {body:?}");
        assert_eq!(h["api-version"], "1.47");
        match *want {
            204 | 304 => assert!(body.is_empty(), "{m} {path}: {body:?}"),
            200 => {}
            _ => assert!(
                json_of(&body)["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty()),
                "{m} {path}: {body:?}"
            ),
        }
    }
    let calls = s.fake.calls();
    for want in [
        "stop web Some(\"SIGTERM\") Some(5)",
        "restart web None Some(1)",
        "kill web Some(\"HUP\")",
        "rename web web2",
        "resize web 40x100",
        "remove web force=true v=true link=false",
    ] {
        assert!(calls.iter().any(|c| c == want), "{want} not in {calls:?}");
    }
    let (_, _, body) = call(&s.sock, Method::POST, "/containers/nope/kill", "").await;
    assert_eq!(json_of(&body)["message"], "No such container: nope");
}

#[tokio::test]
async fn create_then_inspect_echoes_config_and_host_config() {
    let s = start();
    let body = json!({
        "Hostname": "", "Image": "busybox", "Cmd": ["sh"], "Entrypoint": [], "Env": null,
        "Labels": {"a": "b"}, "StopTimeout": 3, "NewerField": [1],
        "HostConfig": {"Binds": ["/a:/b"], "Memory": 1024, "RestartPolicy": {"Name": "always", "MaximumRetryCount": 0},
                       "PidsLimit": null, "Dns": [], "FutureHostField": {"x": 1}},
        "NetworkingConfig": {"EndpointsConfig": {"net": {"Aliases": ["a"]}}}
    });
    let (status, h, resp) = call(
        &s.sock,
        Method::POST,
        "/v1.44/containers/create?name=web&platform=linux/amd64",
        &body.to_string(),
    )
    .await;
    assert_eq!(status, 201, "{resp:?}");
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(json_of(&resp), json!({"Id": "c1", "Warnings": []}));
    let (name, platform, _) = s.fake.created.lock().unwrap().clone().unwrap();
    assert_eq!(name.as_deref(), Some("web"));
    assert_eq!(platform.as_deref(), Some("linux/amd64"));

    let (status, _, resp) =
        call(&s.sock, Method::GET, "/v1.44/containers/c1/json?size=1", "").await;
    assert_eq!(status, 200);
    let v = json_of(&resp);
    let mut want_config = body.clone();
    let obj = want_config.as_object_mut().unwrap();
    let want_host = obj.remove("HostConfig").unwrap();
    obj.remove("NetworkingConfig");
    // Go's nil slices and maps without omitempty come back as null, as from dockerd
    obj.insert("OnBuild".into(), Value::Null);
    obj.insert("Volumes".into(), Value::Null);
    assert_eq!(v["Config"], want_config);
    let mut want_host = want_host;
    for k in [
        "BlkioDeviceReadBps",
        "BlkioDeviceReadIOps",
        "BlkioDeviceWriteBps",
        "BlkioDeviceWriteIOps",
        "BlkioWeightDevice",
        "CapAdd",
        "CapDrop",
        "DeviceCgroupRules",
        "DeviceRequests",
        "Devices",
        "DnsOptions",
        "DnsSearch",
        "ExtraHosts",
        "GroupAdd",
        "Links",
        "MaskedPaths",
        "MemorySwappiness",
        "OomKillDisable",
        "PortBindings",
        "ReadonlyPaths",
        "SecurityOpt",
        "Ulimits",
        "VolumesFrom",
    ] {
        want_host[k] = Value::Null;
    }
    assert_eq!(v["HostConfig"], want_host);
    assert_eq!(v["SizeRw"], 12);
    assert!(s
        .fake
        .calls()
        .contains(&"inspect c1 size=true version=1.44".to_string()));

    // client mistakes are 400 with a clear message; backend refusals keep their status
    let bad = [
        (
            "",
            400,
            "config cannot be empty in order to create a container",
        ),
        ("{", 400, "invalid JSON in the request body"),
        (r#"{"Image": 5}"#, 400, "invalid JSON in the request body"),
        (
            r#"{"Image": "x", "HostConfig": {"Memory": "lots"}}"#,
            400,
            "invalid JSON",
        ),
        (r#"{"Cmd": ["sh"]}"#, 400, "no image given"),
        (r#"{"Image": "missing"}"#, 404, "No such image"),
    ];
    for (body, want, msg) in bad {
        let (status, _, resp) = call(&s.sock, Method::POST, "/containers/create", body).await;
        assert_eq!(status.as_u16(), want, "{body}: {resp:?}");
        let m = json_of(&resp)["message"].as_str().unwrap().to_string();
        assert!(m.starts_with(msg), "{body}: {m}");
    }
}

#[tokio::test]
async fn list_prune_top_update_pass_their_arguments() {
    let s = start();
    let (status, _, body) = call(
        &s.sock,
        Method::GET,
        r#"/containers/json?all=1&limit=-1&size=true&filters=%7B%22label%22%3A%7B%22a%3Db%22%3Atrue%7D%7D"#,
        "",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(json_of(&body)[0]["Names"][0], "/web");
    let (status, _, body) = call(
        &s.sock,
        Method::GET,
        "/containers/json?filters=%7B%22bogus%22%3A%5B%22x%22%5D%7D",
        "",
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(json_of(&body)["message"], "invalid filter 'bogus'");
    let (status, _, _) = call(&s.sock, Method::GET, "/containers/json?all=maybe", "").await;
    assert_eq!(status, 400);

    let (status, _, body) = call(
        &s.sock,
        Method::POST,
        "/containers/prune?filters=%7B%22until%22%3A%5B%2210m%22%5D%7D",
        "",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        json_of(&body),
        json!({"ContainersDeleted": ["old"], "SpaceReclaimed": 5})
    );
    let (status, _, _) = call(
        &s.sock,
        Method::POST,
        "/containers/prune?filters=%7B%22name%22%3A%5B%22x%22%5D%7D",
        "",
    )
    .await;
    assert_eq!(status, 400);

    let (status, _, body) = call(&s.sock, Method::GET, "/containers/web/top?ps_args=aux", "").await;
    assert_eq!(status, 200);
    assert_eq!(
        json_of(&body),
        json!({"Titles": ["PID", "CMD"], "Processes": [["1", "aux"]]})
    );

    let (status, _, body) = call(
        &s.sock,
        Method::POST,
        "/containers/web/update",
        r#"{"Memory": 2048, "RestartPolicy": {"Name": "unless-stopped"}}"#,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(json_of(&body), json!({"Warnings": []}));
    let calls = s.fake.calls();
    for want in [
        r#"list all=true limit=None size=true filters={"label":["a=b"]}"#,
        r#"prune {"until":["10m"]}"#,
        r#"update web memory=Some(2048) restart=Some("unless-stopped")"#,
    ] {
        assert!(calls.iter().any(|c| c == want), "{want} not in {calls:?}");
    }
}

#[tokio::test]
async fn wait_sends_headers_before_the_container_exits() {
    let s = start();
    let resp = tokio::time::timeout(
        GUARD,
        send(
            &s.sock,
            Method::POST,
            "/containers/web/wait?condition=next-exit",
            "",
        ),
    )
    .await
    .expect("wait must answer with headers before the exit");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    // nothing has exited yet: the body is still open
    s.fake.exit.notify_one();
    let body = tokio::time::timeout(GUARD, resp.into_body().collect())
        .await
        .unwrap()
        .unwrap()
        .to_bytes();
    assert_eq!(json_of(&body), json!({"StatusCode": 7}));
    assert!(s.fake.calls().contains(&"wait web NextExit".to_string()));

    let (status, _, body) = call(&s.sock, Method::POST, "/containers/stopped/wait", "").await;
    assert_eq!(status, 200);
    assert_eq!(json_of(&body)["StatusCode"], 3);
    let (status, _, _) = call(&s.sock, Method::POST, "/containers/nope/wait", "").await;
    assert_eq!(status, 404);
    let (status, _, body) = call(
        &s.sock,
        Method::POST,
        "/containers/web/wait?condition=soon",
        "",
    )
    .await;
    assert_eq!(status, 400, "{body:?}");
}

#[tokio::test]
async fn logs_are_multiplexed_without_tty_and_raw_with_it() {
    let s = start();
    let (status, h, body) = call(
        &s.sock,
        Method::GET,
        "/containers/web/logs?stdout=1&stderr=1&tail=5&since=1700000000&timestamps=1",
        "",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        h["content-type"],
        "application/vnd.docker.multiplexed-stream"
    );
    let frames = demux(&body).expect("whole frames");
    assert_eq!(
        frames,
        vec![(1, Bytes::from("out\n")), (2, Bytes::from("err\n"))]
    );
    assert!(s.fake.calls().contains(
        &"logs web follow=false tail=Some(5) since=Some(1700000000) ts=true".to_string()
    ));

    let (_, h, _) = call(
        &s.sock,
        Method::GET,
        "/v1.41/containers/web/logs?stdout=1",
        "",
    )
    .await;
    assert_eq!(h["content-type"], "application/vnd.docker.raw-stream");

    let (status, h, body) = call(
        &s.sock,
        Method::GET,
        "/containers/tty/logs?stdout=1&stderr=1",
        "",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(h["content-type"], "application/vnd.docker.raw-stream");
    assert_eq!(body, "out\nerr\n");

    let (status, _, body) = call(&s.sock, Method::GET, "/containers/web/logs", "").await;
    assert_eq!(status, 400);
    assert_eq!(
        json_of(&body)["message"],
        "Bad parameters: you must choose at least one stream"
    );
    let (status, _, _) = call(&s.sock, Method::GET, "/containers/nope/logs?stdout=1", "").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn stats_stream_by_default_and_once_when_asked() {
    let s = start();
    let (status, _, body) = call(&s.sock, Method::GET, "/containers/web/stats", "").await;
    assert_eq!(status, 200);
    let docs: Vec<Value> = body
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(docs.len(), 3);
    assert_eq!(docs[2]["n"], 2);

    let (status, h, body) = call(
        &s.sock,
        Method::GET,
        "/containers/web/stats?stream=false&one-shot=true",
        "",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(
        json_of(&body),
        json!({"id": "web", "n": 0, "one_shot": true})
    );
    let (status, _, _) = call(&s.sock, Method::GET, "/containers/nope/stats?stream=0", "").await;
    assert_eq!(status, 404);
    let (status, _, _) = call(&s.sock, Method::GET, "/containers/nope/stats", "").await;
    assert_eq!(status, 404);
}

/// Sends a raw HTTP request on a fresh connection and returns the stream after the
/// response head, with the head.
async fn raw_request(sock: &Path, head: &str) -> (UnixStream, String, Vec<u8>) {
    let mut c = UnixStream::connect(sock).await.unwrap();
    c.write_all(head.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let end = loop {
        let n = tokio::time::timeout(GUARD, c.read(&mut buf))
            .await
            .expect("response head")
            .unwrap();
        assert!(
            n > 0,
            "connection closed before the head: {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
        if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let rest = got.split_off(end);
    (c, String::from_utf8(got).unwrap(), rest)
}

/// Reads until EOF (bounded by GUARD).
async fn read_to_end(c: &mut UnixStream, mut have: Vec<u8>) -> Vec<u8> {
    tokio::time::timeout(GUARD, c.read_to_end(&mut have))
        .await
        .expect("stream end")
        .unwrap();
    have
}

/// Reads whole frames until `want` frames are in.
async fn read_frames(c: &mut UnixStream, d: &mut Demuxer, want: usize) -> Vec<(u8, Bytes)> {
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    while out.len() < want {
        while let Some(f) = d.next_frame() {
            out.push(f);
        }
        if out.len() >= want {
            break;
        }
        let n = tokio::time::timeout(GUARD, c.read(&mut buf))
            .await
            .expect("frame")
            .unwrap();
        assert!(n > 0, "closed after {out:?}");
        d.push(&buf[..n]);
    }
    out
}

const UPGRADE: &str = "Connection: Upgrade\r\nUpgrade: tcp\r\n";

#[tokio::test]
async fn attach_upgrades_to_a_duplex_multiplexed_stream() {
    let s = start();
    let (mut c, head, rest) = raw_request(
        &s.sock,
        &format!("POST /v1.47/containers/web/attach?stream=1&stdin=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: docker\r\n{UPGRADE}Content-Length: 0\r\n\r\n"),
    )
    .await;
    assert!(
        head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{head}"
    );
    let lower = head.to_ascii_lowercase();
    assert!(
        lower.contains("content-type: application/vnd.docker.multiplexed-stream\r\n"),
        "{head}"
    );
    assert!(lower.contains("upgrade: tcp\r\n"), "{head}");
    assert!(lower.contains("connection: upgrade\r\n"), "{head}");
    assert!(lower.contains("api-version: 1.47\r\n"), "{head}");

    let mut d = Demuxer::new();
    d.push(&rest);
    assert_eq!(
        read_frames(&mut c, &mut d, 1).await,
        vec![(1, Bytes::from("attached\n"))]
    );
    c.write_all(b"ping\n").await.unwrap();
    assert_eq!(
        read_frames(&mut c, &mut d, 1).await,
        vec![(1, Bytes::from("ping\n"))]
    );
    // half-close like the CLI on stdin EOF: output keeps coming until the process is done
    c.shutdown().await.unwrap();
    let tail = read_to_end(&mut c, Vec::new()).await;
    d.push(&tail);
    assert_eq!(d.next_frame(), Some((2, Bytes::from("bye\n"))));
    assert_eq!(d.pending(), 0);
    assert!(s
        .fake
        .calls()
        .contains(&"attach web stdin=true stream=true".to_string()));
}

#[tokio::test]
async fn attach_with_tty_is_raw_and_old_versions_say_raw_stream() {
    let s = start();
    let (mut c, head, rest) = raw_request(
        &s.sock,
        &format!("POST /containers/tty/attach?stream=1&stdin=1&stdout=1 HTTP/1.1\r\nHost: docker\r\n{UPGRADE}\r\n"),
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(head
        .to_ascii_lowercase()
        .contains("content-type: application/vnd.docker.raw-stream\r\n"));
    c.write_all(b"typed").await.unwrap();
    c.shutdown().await.unwrap();
    assert_eq!(read_to_end(&mut c, rest).await, b"attached\ntyped");

    let (_c, head, _) = raw_request(
        &s.sock,
        &format!("POST /v1.41/containers/web/attach?stream=1&stdout=1 HTTP/1.1\r\nHost: docker\r\n{UPGRADE}\r\n"),
    )
    .await;
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/vnd.docker.raw-stream\r\n"),
        "{head}"
    );
}

#[tokio::test]
async fn attach_errors_before_the_stream_keep_their_status() {
    let s = start();
    for (path, want) in [
        ("/containers/nope/attach?stream=1", "404"),
        ("/containers/stopped/attach?stream=1", "409"),
        // the backend failed before touching the connection: a real status, no upgrade
        ("/containers/fail-attach/attach?stream=1", "409"),
    ] {
        let (mut c, head, rest) = raw_request(
            &s.sock,
            &format!("POST {path} HTTP/1.1\r\nHost: docker\r\n{UPGRADE}Connection: close\r\n\r\n"),
        )
        .await;
        assert!(
            head.starts_with(&format!("HTTP/1.1 {want}")),
            "{path}: {head}"
        );
        let body = read_to_end(&mut c, rest).await;
        assert!(
            String::from_utf8_lossy(&body).contains("\"message\""),
            "{path}"
        );
    }
}

#[tokio::test]
async fn attach_without_upgrade_streams_a_200() {
    let s = start();
    // no Upgrade header: stdin is the request body, output the response body
    let (status, h, body) = call(
        &s.sock,
        Method::POST,
        "/containers/web/attach?stream=1&stdin=1&stdout=1",
        "from body\n",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(h["content-type"], "application/vnd.docker.raw-stream");
    assert_eq!(
        demux(&body).unwrap(),
        vec![
            (1, Bytes::from("attached\n")),
            (1, Bytes::from("from body\n")),
            (2, Bytes::from("bye\n"))
        ]
    );
}

#[tokio::test]
async fn exec_create_start_resize_inspect() {
    let s = start();
    let (status, _, body) = call(
        &s.sock,
        Method::POST,
        "/containers/web/exec",
        r#"{"AttachStdin":true,"AttachStdout":true,"Tty":false,"Cmd":["cat"]}"#,
    )
    .await;
    assert_eq!(status, 201, "{body:?}");
    assert_eq!(json_of(&body), json!({"Id": "e1"}));
    for (path, body, want) in [
        ("/containers/stopped/exec", r#"{"Cmd":["sh"]}"#, 409),
        ("/containers/nope/exec", r#"{"Cmd":["sh"]}"#, 404),
        ("/containers/web/exec", r#"{"Cmd":[]}"#, 400),
        ("/containers/web/exec", r#"{}"#, 400),
        ("/containers/web/exec", r#"{"Cmd":"sh"}"#, 400),
    ] {
        let (status, _, resp) = call(&s.sock, Method::POST, path, body).await;
        assert_eq!(status.as_u16(), want, "{path} {body}: {resp:?}");
    }

    let start_body = r#"{"Detach":false,"Tty":false}"#;
    let (mut c, head, rest) = raw_request(
        &s.sock,
        &format!(
            "POST /exec/e1/start HTTP/1.1\r\nHost: docker\r\n{UPGRADE}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{start_body}",
            start_body.len()
        ),
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(head
        .to_ascii_lowercase()
        .contains("application/vnd.docker.multiplexed-stream"));
    let mut d = Demuxer::new();
    d.push(&rest);
    assert_eq!(
        read_frames(&mut c, &mut d, 1).await,
        vec![(1, Bytes::from("exec\n"))]
    );
    c.write_all(b"abc").await.unwrap();
    assert_eq!(
        read_frames(&mut c, &mut d, 1).await,
        vec![(1, Bytes::from("abc"))]
    );
    c.shutdown().await.unwrap();
    d.push(&read_to_end(&mut c, Vec::new()).await);
    assert_eq!(d.next_frame(), Some((2, Bytes::from("bye\n"))));

    let (status, _, body) = call(
        &s.sock,
        Method::POST,
        "/exec/e1/start",
        r#"{"Detach":true}"#,
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.is_empty());
    assert!(s
        .fake
        .calls()
        .contains(&"exec-start e1 detach=true".to_string()));
    for (path, body, want) in [
        ("/exec/nope/start", "{}", 404),
        ("/exec/done/start", "{}", 409),
        ("/exec/e1/start", "{", 400),
    ] {
        let (status, _, resp) = call(&s.sock, Method::POST, path, body).await;
        assert_eq!(status.as_u16(), want, "{path}: {resp:?}");
    }

    let (status, _, _) = call(&s.sock, Method::POST, "/exec/e1/resize?h=10&w=20", "").await;
    assert_eq!(status, 200);
    assert!(s.fake.calls().contains(&"exec-resize e1 10x20".to_string()));
    let (status, _, _) = call(&s.sock, Method::POST, "/exec/e1/resize?w=20", "").await;
    assert_eq!(status, 400);
    let (status, _, body) = call(&s.sock, Method::GET, "/exec/e1/json", "").await;
    assert_eq!(status, 200);
    let v = json_of(&body);
    assert_eq!(v["ExitCode"], 0);
    assert_eq!(v["ContainerID"], "web");
    let (status, _, _) = call(&s.sock, Method::GET, "/exec/nope/json", "").await;
    assert_eq!(status, 404);
    let (status, _, _) = call(&s.sock, Method::GET, "/exec/e1/start", "").await;
    assert_eq!(status, 405);
}

#[tokio::test]
async fn events_flush_headers_before_the_first_event() {
    let s = start();
    let resp = tokio::time::timeout(
        GUARD,
        send(
            &s.sock,
            Method::GET,
            "/events?since=1700000000.000000001&filters=%7B%22type%22%3A%5B%22container%22%5D%7D",
            "",
        ),
    )
    .await
    .expect("events must answer before any event happens");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let mut body = resp.into_body();
    s.events
        .send(EventMessage::new(
            "container",
            "start",
            "web",
            Default::default(),
            2_000_000_000,
        ))
        .await
        .unwrap();
    let frame = tokio::time::timeout(GUARD, body.frame())
        .await
        .expect("event line")
        .unwrap()
        .unwrap();
    let line = frame.into_data().unwrap();
    assert!(line.ends_with(b"\n"));
    let v = json_of(&line);
    assert_eq!(v["status"], "start");
    assert_eq!(v["Action"], "start");
    assert_eq!(v["id"], "web");
    assert_eq!(v["time"], 2);
    assert!(s.fake.calls().contains(
        &r#"events since=Some(Some(1700000000000000001)) until=None filters={"type":["container"]}"#
            .to_string()
    ));
}

#[tokio::test]
async fn a_client_leaving_the_event_stream_drops_the_subscription() {
    let s = start();
    let (tx, rx) = oneshot::channel();
    *s.fake.events_dropped.lock().unwrap() = Some(tx);
    let (c, head, _) = raw_request(&s.sock, "GET /events HTTP/1.1\r\nHost: docker\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    drop(c);
    tokio::time::timeout(GUARD, rx)
        .await
        .expect("the backend stream must be dropped when the client goes")
        .unwrap();
}

#[tokio::test]
async fn events_with_until_end_and_bad_queries_are_400() {
    let s = start();
    let (status, _, body) = call(
        &s.sock,
        Method::GET,
        "/events?since=1&until=2026-12-06T03:00:00Z",
        "",
    )
    .await;
    assert_eq!(status, 200);
    let v = json_of(&body);
    assert_eq!(v["Action"], "create");
    assert_eq!(v["from"], "busybox");
    for q in [
        "since=yesterday",
        "until=x",
        "since=5&until=4",
        "filters=%7B%22colour%22%3A%5B%22x%22%5D%7D",
    ] {
        let (status, _, body) = call(&s.sock, Method::GET, &format!("/events?{q}"), "").await;
        assert_eq!(status, 400, "{q}");
        assert!(json_of(&body)["message"].is_string());
    }
    let (_, _, body) = call(
        &s.sock,
        Method::GET,
        "/events?filters=%7B%22colour%22%3A%5B%22x%22%5D%7D",
        "",
    )
    .await;
    assert_eq!(json_of(&body)["message"], "invalid filter 'colour'");
    let (status, _, _) = call(&s.sock, Method::POST, "/events", "").await;
    assert_eq!(status, 405);
}

/// Runs the docker CLI against the test socket with `stdin` piped in; killed (by its own
/// handle) if it hangs.
fn docker(sock: &Path, args: &[&str], stdin: &[u8]) -> std::process::Output {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let config = tempfile::tempdir().unwrap();
    let mut child = Command::new("docker")
        .args(args)
        .env("DOCKER_HOST", format!("unix://{}", sock.display()))
        .env("DOCKER_CONFIG", config.path())
        .env_remove("DOCKER_API_VERSION")
        .env_remove("DOCKER_CONTEXT")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the docker CLI must be on PATH");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin).unwrap();
    drop(input);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
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

/// What one CLI command printed: (exit code, stdout, stderr).
async fn cli(
    sock: &Path,
    args: &'static [&'static str],
    stdin: &'static [u8],
) -> (i32, String, String) {
    let sock = sock.to_path_buf();
    let out = tokio::task::spawn_blocking(move || docker(&sock, args, stdin))
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_docker_cli_drives_logs_exec_attach_run_and_friends() {
    let s = start();
    let (code, out, err) = cli(&s.sock, &["logs", "web"], b"").await;
    assert_eq!((code, out.as_str(), err.as_str()), (0, "out\n", "err\n"));
    let (code, out, _) = cli(&s.sock, &["logs", "tty"], b"").await;
    assert_eq!((code, out.as_str()), (0, "out\nerr\n"));

    // exec: hijacked duplex, then the exit code from exec inspect
    let (code, out, err) = cli(&s.sock, &["exec", "-i", "web", "cat"], b"hello\n").await;
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (0, "exec\nhello\n", "bye\n"),
        "exec"
    );

    // run: create, attach (before start), wait, start; the exit code comes from wait
    s.fake.exit.notify_one();
    let (code, out, err) = cli(
        &s.sock,
        &["run", "-i", "--name", "r1", "busybox", "cat"],
        b"hi\n",
    )
    .await;
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (7, "attached\nhi\n", "bye\n"),
        "run"
    );
    let calls = s.fake.calls();
    let attach = calls
        .iter()
        .position(|c| c.starts_with("attach c1"))
        .expect("attach");
    let wait = calls
        .iter()
        .position(|c| c.starts_with("wait c1"))
        .expect("wait");
    assert!(attach < calls.len() && wait < calls.len());

    let (code, out, err) = cli(&s.sock, &["ps", "--format", "{{.Names}} {{.State}}"], b"").await;
    assert_eq!((code, out.trim()), (0, "web running"), "{err}");
    let (code, out, _) = cli(&s.sock, &["wait", "stopped"], b"").await;
    assert_eq!((code, out.trim()), (0, "3"));
    let (code, out, _) = cli(&s.sock, &["stop", "stopped"], b"").await;
    assert_eq!(
        (code, out.trim()),
        (0, "stopped"),
        "304 is success for the CLI"
    );
    let (code, _, err) = cli(&s.sock, &["kill", "stopped"], b"").await;
    assert_eq!(code, 1);
    assert!(err.contains("is not running"), "{err}");
    let (code, _, err) = cli(&s.sock, &["start", "nope"], b"").await;
    assert_eq!(code, 1);
    assert!(err.contains("No such container: nope"), "{err}");
    let (code, out, _) = cli(&s.sock, &["top", "web"], b"").await;
    assert_eq!(code, 0);
    assert!(out.contains("PID") && out.contains("-ef"), "{out}");
    let (code, out, err) = cli(
        &s.sock,
        &[
            "events",
            "--since",
            "1",
            "--until",
            "2",
            "--format",
            "{{.Type}} {{.Action}} {{.Actor.ID}}",
        ],
        b"",
    )
    .await;
    assert_eq!((code, out.trim()), (0, "container create web"), "{err}");

    // the CLI decodes these answers into its own Go types: a wrong field type fails here
    let checks: [(&'static [&'static str], &str); 7] = [
        (
            &[
                "inspect",
                "--format",
                "{{.Name}} {{.State.Status}} {{.Config.Image}} {{.HostConfig.Memory}}",
                "c1",
            ],
            "/r1 running busybox 0",
        ),
        (&["update", "--memory", "64m", "web"], "web"),
        (&["rename", "web", "web2"], ""),
        (&["pause", "web"], "web"),
        (&["rm", "-f", "web"], "web"),
        (
            &["container", "prune", "-f"],
            "Deleted Containers:\nold\n\nTotal reclaimed space: 5B",
        ),
        (
            &["top", "tty", "aux"],
            "PID                 CMD\n1                   aux",
        ),
    ];
    for (args, want) in checks {
        let (code, out, err) = cli(&s.sock, args, b"").await;
        assert_eq!((code, out.trim()), (0, want), "docker {args:?}: {err}");
    }
}

/// `docker run -it` under `script`, which gives the CLI a terminal: raw stream both ways.
/// Input is typed only once the greeting shows, when the CLI has put
/// the terminal in raw mode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_run_it_gets_a_raw_stream_on_a_terminal() {
    use std::io::{Read, Write};
    use std::process::{Command, Stdio};
    let s = start();
    s.fake.exit.notify_one();
    let sock = s.sock.clone();
    let out = tokio::task::spawn_blocking(move || {
        let config = tempfile::tempdir().unwrap();
        let mut child = Command::new("script")
            .args([
                "-qec",
                "docker run -it --name ttyrun busybox cat",
                "/dev/null",
            ])
            .env("DOCKER_HOST", format!("unix://{}", sock.display()))
            .env("DOCKER_CONFIG", config.path())
            .env_remove("DOCKER_API_VERSION")
            .env_remove("DOCKER_CONTEXT")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("script (util-linux) must be on PATH");
        let mut stdin = child.stdin.take().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let pid = child.id();
        // a guard against hanging: kill our own child after 60 s
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let guard = std::thread::spawn(move || {
            if done_rx.recv_timeout(Duration::from_secs(60)).is_err() {
                let _ = Command::new("kill").arg(pid.to_string()).status();
            }
        });
        let mut seen = Vec::new();
        let mut buf = [0u8; 256];
        while !String::from_utf8_lossy(&seen).contains("attached") {
            let n = stdout.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
        }
        stdin.write_all(b"hi\x04").unwrap();
        stdin.flush().unwrap();
        stdout.read_to_end(&mut seen).unwrap();
        drop(stdin);
        let status = child.wait().unwrap();
        let _ = done_tx.send(());
        guard.join().unwrap();
        (status.code(), String::from_utf8_lossy(&seen).into_owned())
    })
    .await
    .unwrap();
    let (code, text) = out;
    assert!(text.contains("attached"), "{text:?}");
    assert!(text.contains("hi"), "{text:?}");
    assert!(
        !text.contains("bye"),
        "no stderr frame with a tty: {text:?}"
    );
    assert_eq!(code, Some(7), "{text:?}");
    let (_, _, body) = s.fake.created.lock().unwrap().clone().unwrap();
    assert_eq!(body.config.tty, Some(true));
    assert_eq!(body.config.open_stdin, Some(true));
    let calls = s.fake.calls();
    let at = |p: &str| calls.iter().position(|c| c.starts_with(p)).expect(p);
    assert!(at("attach ttyrun") < at("start ttyrun"), "{calls:?}");
    // (no resize call: under `script` without a terminal the pty is 0x0, which the CLI skips)
}
