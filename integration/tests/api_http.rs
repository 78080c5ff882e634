//! The API handshake and error shapes by raw HTTP on the daemon's socket, plus
//! registry authentication (docker login, X-Registry-Auth).

mod common;

use base64::Engine as _;
use common::*;
use std::time::Duration;

use skiff_integration::{process, test_images, Daemon, DaemonOptions, Registry, Response};

fn header<'a>(r: &'a Response, name: &str) -> &'a str {
    r.header(name)
        .unwrap_or_else(|| panic!("no {name} header in {:?}", r.headers))
}

fn assert_common_headers(r: &Response) {
    let api = header(r, "Api-Version");
    let (major, minor) = api.split_once('.').unwrap();
    assert_eq!(major, "1");
    assert!(minor.parse::<u32>().unwrap() >= 47, "Api-Version {api}");
    assert_eq!(header(r, "Ostype"), "linux");
    let server = header(r, "Server");
    assert!(
        server.starts_with("skiff/") && server.ends_with("(linux)"),
        "Server: {server}"
    );
}

#[test]
fn ping_headers_and_versions() {
    let registry = Registry::start().unwrap();
    let d = Daemon::start(DaemonOptions::with_registry(&registry)).unwrap();
    for path in ["/_ping", "/v1.24/_ping", "/v1.44/_ping"] {
        let head = d.http("HEAD", path, None).unwrap();
        assert_eq!(head.status, 200, "HEAD {path}");
        assert_common_headers(&head);
        assert_eq!(header(&head, "Content-Length"), "0");
        assert_eq!(
            header(&head, "Cache-Control"),
            "no-cache, no-store, must-revalidate"
        );
        assert_eq!(header(&head, "Pragma"), "no-cache");
        assert_eq!(header(&head, "Swarm"), "inactive");
        assert!(head.header("Docker-Experimental").is_some());
        assert!(head.header("Builder-Version").is_some());

        let get = d.http("GET", path, None).unwrap();
        assert_eq!(get.status, 200, "GET {path}");
        assert_eq!(get.text(), "OK");
        assert_common_headers(&get);
        assert_eq!(
            header(&get, "Cache-Control"),
            "no-cache, no-store, must-revalidate"
        );
        assert_eq!(header(&get, "Pragma"), "no-cache");
    }
    // every response carries the version headers, errors too
    for path in ["/version", "/v1.41/version", "/v1.47/version"] {
        let r = d.http("GET", path, None).unwrap();
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert_common_headers(&r);
        let v = r.json().unwrap();
        assert!(v["ApiVersion"].is_string(), "{v}");
        assert_eq!(v["MinAPIVersion"], "1.24", "{v}");
        assert_eq!(v["Os"], "linux");
    }
    let too_new = d.http("GET", "/v1.99/version", None).unwrap();
    assert_eq!(too_new.status, 400);
    assert_common_headers(&too_new);
    let msg = too_new.json().unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        msg.starts_with("client version 1.99 is too new. Maximum supported API version is"),
        "{msg}"
    );
    let too_old = d.http("GET", "/v1.12/version", None).unwrap();
    assert_eq!(too_old.status, 400);
    let msg = too_old.json().unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        msg.starts_with("client version 1.12 is too old. Minimum supported API version is 1.24"),
        "{msg}"
    );

    // unknown paths and missing images: 404 with a JSON message
    for path in ["/nope", "/v1.44/nope/deeper", "/images/nope:never/json"] {
        let r = d.http("GET", path, None).unwrap();
        assert_eq!(r.status, 404, "{path}");
        assert_common_headers(&r);
        assert!(
            header(&r, "Content-Type").starts_with("application/json"),
            "{path}"
        );
        let msg = r.json().unwrap()["message"].as_str().unwrap().to_string();
        assert!(!msg.is_empty(), "{path}");
    }
    let r = d.http("GET", "/images/nope:never/json", None).unwrap();
    assert!(
        r.json().unwrap()["message"]
            .as_str()
            .unwrap()
            .contains("No such image: nope:never"),
        "{}",
        r.text()
    );

    // the CLI negotiates and works
    let out = d
        .docker_ok(&[
            "version",
            "--format",
            "{{.Server.APIVersion}} {{.Server.Os}}",
        ])
        .unwrap();
    assert!(out.trim().ends_with(" linux"), "{out}");
    assert!(out.starts_with("1."), "{out}");
    let out = d
        .docker_ok(&["info", "--format", "{{.Images}} {{.OSType}}"])
        .unwrap();
    assert_eq!(out.trim(), "0 linux");
}

#[test]
fn image_inspect_is_shaped_by_api_version() {
    let e = env();
    let r = e.refs["single"].clone();
    e.daemon.docker_ok(&["pull", &r]).unwrap();
    let old = e
        .daemon
        .http("GET", &format!("/v1.43/images/{r}/json"), None)
        .unwrap();
    assert_eq!(old.status, 200, "{}", old.text());
    let old = old.json().unwrap();
    assert!(old["VirtualSize"].is_u64(), "{old}");
    assert_eq!(old["VirtualSize"], old["Size"]);
    let new = e
        .daemon
        .http("GET", &format!("/v1.44/images/{r}/json"), None)
        .unwrap()
        .json()
        .unwrap();
    assert!(new.get("VirtualSize").is_none(), "{new}");
    assert_eq!(new["Id"], old["Id"]);
    // unversioned means the daemon's own (newest) version
    let plain = e
        .daemon
        .http("GET", &format!("/images/{r}/json"), None)
        .unwrap()
        .json()
        .unwrap();
    assert!(plain.get("VirtualSize").is_none(), "{plain}");
    let list = e
        .daemon
        .http("GET", "/v1.43/images/json", None)
        .unwrap()
        .json()
        .unwrap();
    assert!(list[0]["VirtualSize"].is_u64(), "{list}");
}

fn registry_auth(registry: &Registry, user: &str, pass: &str) -> String {
    let json = serde_json::json!({"username": user, "password": pass,
        "serveraddress": registry.host_port()});
    base64::engine::general_purpose::URL_SAFE.encode(json.to_string())
}

/// A pull failed when the status says so or the JSON-lines stream carries an error.
fn pull_failed(resp: &Response) -> bool {
    resp.status >= 400
        || resp
            .json_lines()
            .map(|l| {
                l.iter()
                    .any(|v| v.get("error").is_some() || v.get("errorDetail").is_some())
            })
            .unwrap_or(true)
}

#[test]
fn x_registry_auth_decides_and_garbage_is_refused() {
    let imgs = test_images().unwrap();
    let registry = Registry::start_with_auth("skiff", "s3cret").unwrap();
    imgs.push(&registry).unwrap();
    let daemon = Daemon::start(DaemonOptions::with_registry(&registry)).unwrap();
    let image = format!("{}/skiff-test/single", registry.host_port());
    let path = format!("/images/create?fromImage={image}&tag=latest");

    let none = daemon.http("POST", &path, None).unwrap();
    assert!(
        pull_failed(&none),
        "pull without credentials: {}",
        none.text()
    );
    let wrong = daemon
        .http_with_headers(
            "POST",
            &path,
            &[(
                "X-Registry-Auth",
                &registry_auth(&registry, "skiff", "wrong"),
            )],
            None,
        )
        .unwrap();
    assert!(
        pull_failed(&wrong),
        "pull with a wrong password: {}",
        wrong.text()
    );
    let text = wrong.text().to_lowercase();
    assert!(
        text.contains("unauthorized") || text.contains("authentication"),
        "{}",
        wrong.text()
    );
    for garbage in ["%%%not-base64%%%", "bm90IGpzb24", "e30K-but-not"] {
        let r = daemon
            .http_with_headers("POST", &path, &[("X-Registry-Auth", garbage)], None)
            .unwrap();
        assert_eq!(r.status, 400, "X-Registry-Auth {garbage:?}: {}", r.text());
        assert!(r.json().unwrap()["message"].is_string());
    }
    assert!(listed(&daemon).is_empty());
    let good = daemon
        .http_with_headers(
            "POST",
            &path,
            &[(
                "X-Registry-Auth",
                &registry_auth(&registry, "skiff", "s3cret"),
            )],
            None,
        )
        .unwrap();
    assert!(!pull_failed(&good), "{}", good.text());
    assert!(inspect(&daemon, &format!("{image}:latest")).is_some());
}

/// dockerode aborts a pull by closing the connection: the daemon must stop downloading,
/// record nothing, and pull fine afterwards.
#[test]
fn closing_the_connection_aborts_the_pull() {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};

    let imgs = test_images().unwrap();
    let registry = Registry::start().unwrap();
    imgs.push(&registry).unwrap();
    // about 1.6 MB/s: the multi image takes about two seconds
    let proxy =
        common::proxy::SlowProxy::start(registry.host_port(), 8 << 10, Duration::from_millis(10));
    let mut d = Daemon::start(DaemonOptions {
        insecure_registries: vec![proxy.addr().to_string()],
        ..DaemonOptions::default()
    })
    .unwrap();
    let manifest = manifest_for(imgs, "multi", "amd64");
    let total: u64 = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["size"].as_u64().unwrap())
        .sum();
    let image = format!("{}/skiff-test/multi", proxy.addr());

    let mut conn = std::os::unix::net::UnixStream::connect(d.socket_path()).unwrap();
    write!(
        conn,
        "POST /images/create?fromImage={image}&tag=latest HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut first = [0u8; 64];
    let n = conn.read(&mut first).unwrap();
    assert!(
        String::from_utf8_lossy(&first[..n]).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&first[..n])
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while proxy.sent() < total / 4 {
        assert!(Instant::now() < deadline, "the pull never got going");
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(conn);
    let at_abort = proxy.sent();
    // long enough for the rest of the image at the proxy's pace
    std::thread::sleep(Duration::from_millis(total / 1600 + 1000));
    let after = proxy.sent();
    eprintln!("abort: {at_abort} bytes sent at the abort, {after} later, image {total}");
    assert!(
        after < total,
        "the daemon kept downloading after the client left ({after} of {total} bytes)"
    );
    assert!(listed(&d).is_empty(), "{:?}", listed(&d));
    assert_eq!(d.http("GET", "/_ping", None).unwrap().status, 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !tmp_entries(&d).is_empty() {
        assert!(
            Instant::now() < deadline,
            "tmp/ not cleaned after the abort: {:?}",
            tmp_entries(&d)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // and a new pull completes
    d.docker_ok(&["pull", &format!("{image}:latest")]).unwrap();
    assert!(inspect(&d, &format!("{image}:latest")).is_some());
    let status = d.stop().unwrap();
    assert!(status.success());
    assert_check_clean_stopped(&d, "after the aborted pull");
}

#[test]
fn docker_login_then_pull() {
    let imgs = test_images().unwrap();
    let registry = Registry::start_with_auth("skiff", "s3cret").unwrap();
    imgs.push(&registry).unwrap();
    let daemon = Daemon::start(DaemonOptions::with_registry(&registry)).unwrap();
    let image = format!("{}/skiff-test/single:latest", registry.host_port());
    let host = registry.host_port().to_string();

    // dockerd answers a registry's 401 with 500: a daemon 401 sends the CLI into an
    // interactive login prompt, which hangs without a terminal
    let out = process::run(
        daemon.docker_command(&["pull", &image]),
        None,
        Duration::from_secs(30),
    )
    .expect("docker pull without login hung (a 401 from the daemon makes the CLI prompt)");
    assert!(!out.status.success(), "pull without login succeeded");
    assert!(
        stderr(&out).to_lowercase().contains("unauthorized")
            || stderr(&out).to_lowercase().contains("authentication"),
        "{}",
        stderr(&out)
    );

    let out = daemon
        .docker_with_stdin(
            &["login", &host, "-u", "skiff", "--password-stdin"],
            b"wrong\n".to_vec(),
        )
        .unwrap();
    assert!(
        !out.status.success(),
        "login with a wrong password succeeded"
    );
    assert!(
        stderr(&out).to_lowercase().contains("unauthorized")
            || stderr(&out).to_lowercase().contains("credentials"),
        "{}",
        stderr(&out)
    );

    let out = daemon
        .docker_with_stdin(
            &["login", &host, "-u", "skiff", "--password-stdin"],
            b"s3cret\n".to_vec(),
        )
        .unwrap();
    assert!(out.status.success(), "login: {}", stderr(&out));
    daemon.docker_ok(&["pull", &image]).unwrap();
    assert!(inspect(&daemon, &image).is_some());
}
