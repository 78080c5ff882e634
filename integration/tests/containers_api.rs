//! Containers over raw HTTP: the inspect round trip device agents rely on, status codes
//! (304, 404, 409), and bad input that must be refused with nothing left behind.

mod containers_common;

use std::path::Path;

use containers_common::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use skiff_integration::Daemon;

fn post(d: &Daemon, path: &str, body: &Value) -> (u16, Value) {
    let bytes = serde_json::to_vec(body).unwrap();
    let r = d
        .http_with_headers(
            "POST",
            path,
            &[("Content-Type", "application/json")],
            Some(&bytes),
        )
        .unwrap();
    let v = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    (r.status, v)
}

fn get(d: &Daemon, path: &str) -> (u16, Value) {
    let r = d.http("GET", path, None).unwrap();
    (
        r.status,
        serde_json::from_slice(&r.body).unwrap_or(Value::Null),
    )
}

#[test]
fn inspect_returns_the_create_body_unchanged() {
    let c = ctx();
    let d = &c.daemon;
    let config = json!({
        "Hostname": "agent-host",
        "User": "",
        "Env": ["A=1", "B=two words"],
        "Cmd": ["sleep", "30"],
        "Entrypoint": [],
        "Image": "single",
        "Labels": {"io.balena.app-id": "42", "tier": "web"},
        "WorkingDir": "/tmp",
        "StopSignal": "SIGINT",
        "StopTimeout": 3,
        "Tty": false,
        "OpenStdin": false,
        "Volumes": {},
        "ExposedPorts": {"80/tcp": {}}
    });
    let host_config = json!({
        "NetworkMode": "none",
        "RestartPolicy": {"Name": "unless-stopped", "MaximumRetryCount": 0},
        "Memory": 67108864,
        "CpuShares": 512,
        "PidsLimit": 100,
        "Tmpfs": {"/run": "rw,size=16m"},
        "CapAdd": ["NET_ADMIN"],
        "CapDrop": ["MKNOD"],
        "LogConfig": {"Type": "json-file", "Config": {"max-size": "1m", "max-file": "2"}},
        "Init": false
    });
    let networking = json!({"EndpointsConfig": {"none": {"Aliases": ["main"]}}});
    let mut body = config.clone();
    body["HostConfig"] = host_config.clone();
    body["NetworkingConfig"] = networking.clone();
    let (status, created) = post(d, "/containers/create?name=agent", &body);
    assert_eq!(status, 201, "{created}");
    let id = created["Id"].as_str().unwrap().to_string();
    let (status, v) = get(d, "/containers/agent/json");
    assert_eq!(status, 200);
    for (k, want) in config.as_object().unwrap() {
        assert_eq!(&v["Config"][k], want, "Config.{k}");
    }
    for (k, want) in host_config.as_object().unwrap() {
        assert_eq!(&v["HostConfig"][k], want, "HostConfig.{k}");
    }
    assert_eq!(
        v["NetworkSettings"]["Networks"]["none"]["Aliases"],
        json!(["main"])
    );
    assert_eq!(v["Id"], id);
    assert_eq!(v["Name"], "/agent");
    assert_eq!(v["Path"], "sleep");
    assert_eq!(v["Args"], json!(["30"]));
    assert_eq!(v["State"]["Status"], "created");
    assert_eq!(v["State"]["StartedAt"], "0001-01-01T00:00:00Z");
    assert_eq!(v["RestartCount"], 0);
    // start: 204 then 304; the state carries RFC 3339 nano times and a pid
    let r = d.http("POST", "/containers/agent/start", None).unwrap();
    assert_eq!(r.status, 204);
    let r = d.http("POST", "/containers/agent/start", None).unwrap();
    assert_eq!(r.status, 304);
    let (_, v) = get(d, "/containers/agent/json");
    let started = v["State"]["StartedAt"].as_str().unwrap();
    assert!(
        started.ends_with('Z') && started.split('.').nth(1).unwrap().len() == 10,
        "{started}"
    );
    assert!(v["State"]["Pid"].as_u64().unwrap() > 0);
    // the round trip holds while running too
    for (k, want) in host_config.as_object().unwrap() {
        assert_eq!(&v["HostConfig"][k], want, "HostConfig.{k} after start");
    }
    // stop: 204 then 304; kill of a stopped container: 409
    let r = d.http("POST", "/containers/agent/stop?t=1", None).unwrap();
    assert_eq!(r.status, 204);
    let r = d.http("POST", "/containers/agent/stop", None).unwrap();
    assert_eq!(r.status, 304);
    let r = d.http("POST", "/containers/agent/kill", None).unwrap();
    assert_eq!(r.status, 409);
    // list: limit=-1 is everything, label filter, short-ID lookups
    let (status, list) = get(d, "/containers/json?all=1&limit=-1");
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (_, list) = get(
        d,
        "/containers/json?all=1&filters=%7B%22label%22%3A%5B%22tier%3Dweb%22%5D%7D",
    );
    assert_eq!(list[0]["Id"], id);
    assert_eq!(list[0]["Names"], json!(["/agent"]));
    let (status, _) = get(d, &format!("/containers/{}/json", &id[..12]));
    assert_eq!(status, 200);
    let (status, _) = get(d, "/containers/nope/json");
    assert_eq!(status, 404);
    let r = d.http("DELETE", "/containers/agent", None).unwrap();
    assert_eq!(r.status, 204);
    assert_no_container_state(d);
}

/// An OCI layout like `single` whose image config has `config` fields replaced.
fn layout_with_config(src: &Path, dst: &Path, patch: Value) {
    let cp = std::process::Command::new("cp")
        .arg("-a")
        .arg(src)
        .arg(dst)
        .status()
        .unwrap();
    assert!(cp.success());
    let blob = |digest: &str| {
        dst.join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    };
    let put = |bytes: &[u8]| -> (String, usize) {
        let hex = hex::encode(Sha256::digest(bytes));
        std::fs::write(dst.join("blobs/sha256").join(&hex), bytes).unwrap();
        (format!("sha256:{hex}"), bytes.len())
    };
    let mut index: Value =
        serde_json::from_slice(&std::fs::read(dst.join("index.json")).unwrap()).unwrap();
    let mdigest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let mut manifest: Value =
        serde_json::from_slice(&std::fs::read(blob(&mdigest)).unwrap()).unwrap();
    let cdigest = manifest["config"]["digest"].as_str().unwrap().to_string();
    let mut config: Value =
        serde_json::from_slice(&std::fs::read(blob(&cdigest)).unwrap()).unwrap();
    for (k, v) in patch.as_object().unwrap() {
        config["config"][k] = v.clone();
    }
    let (d, n) = put(&serde_json::to_vec(&config).unwrap());
    manifest["config"]["digest"] = json!(d);
    manifest["config"]["size"] = json!(n);
    let (d, n) = put(&serde_json::to_vec(&manifest).unwrap());
    index["manifests"][0]["digest"] = json!(d);
    index["manifests"][0]["size"] = json!(n);
    std::fs::write(dst.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

#[test]
fn bad_input_is_refused_and_leaves_nothing_behind() {
    let c = ctx();
    let d = &c.daemon;
    let tmp = tempfile::tempdir().unwrap();
    let single = skiff_integration::test_images().unwrap().layout("single");
    let fd_workdir = tmp.path().join("fd-workdir");
    layout_with_config(
        &single,
        &fd_workdir,
        json!({"WorkingDir": "/proc/self/fd/3"}),
    );
    load(d, &fd_workdir, "bad-workdir");
    let dotdot = tmp.path().join("dotdot-volume");
    layout_with_config(
        &single,
        &dotdot,
        json!({"Volumes": {"/data/../../escape": {}}}),
    );
    load(d, &dotdot, "bad-volume");

    let create =
        |name: &str, body: Value| post(d, &format!("/containers/create?name={name}"), &body);
    let base = || json!({"Image": "single", "Cmd": ["true"]});
    let with_host = |hc: Value| {
        let mut b = base();
        b["HostConfig"] = hc;
        b
    };
    let cases: Vec<(&str, &str, Value, u16)> = vec![
        ("bad name", "-bad", base(), 400),
        ("bad name chars", "a%20b", base(), 400),
        (
            "missing image",
            "x1",
            json!({"Image": "no-such-image:1"}),
            404,
        ),
        (
            "unknown runtime",
            "x2",
            with_host(json!({"Runtime": "nope"})),
            400,
        ),
        (
            "missing bind source",
            "x3",
            with_host(
                json!({"Mounts": [{"Type": "bind", "Source": "/no/such/dir", "Target": "/mnt"}]}),
            ),
            400,
        ),
        (
            "relative bind target",
            "x4",
            with_host(json!({"Binds": ["/tmp:mnt"]})),
            400,
        ),
        (
            "dotdot mount target",
            "x5",
            with_host(json!({"Mounts": [{"Type": "tmpfs", "Target": "/mnt/../etc"}]})),
            400,
        ),
        ("tiny memory", "x6", with_host(json!({"Memory": 1024})), 400),
        (
            "too many cpus",
            "x7",
            with_host(json!({"NanoCpus": 1_000_000_000_000_i64})),
            400,
        ),
        (
            "swap below memory",
            "x8",
            with_host(json!({"Memory": 67108864, "MemorySwap": 1048576})),
            400,
        ),
        (
            "unknown capability",
            "x9",
            with_host(json!({"CapAdd": ["NOT_A_CAP"]})),
            400,
        ),
        (
            "bad restart policy",
            "x10",
            with_host(json!({"RestartPolicy": {"Name": "sometimes"}})),
            400,
        ),
        (
            "image workdir under /proc/self/fd",
            "x11",
            json!({"Image": "bad-workdir", "Cmd": ["true"]}),
            400,
        ),
        (
            "image volume with ..",
            "x12",
            json!({"Image": "bad-volume", "Cmd": ["true"]}),
            400,
        ),
        ("not json", "x13", json!("just a string"), 400),
    ];
    for (what, name, body, want) in cases {
        let (status, v) = create(name, body);
        assert_eq!(status, want, "{what}: {v}");
        let msg = v["message"].as_str().unwrap_or("");
        assert!(
            !msg.is_empty() && msg.len() < 600,
            "{what}: unclear message {v}"
        );
        assert_no_container_state(d);
    }
    // a name conflict is 409 with dockerd's words
    let (status, _) = create("taken", base());
    assert_eq!(status, 201);
    let (status, v) = create("taken", base());
    assert_eq!(status, 409);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("is already in use by container"),
        "{v}"
    );
    // a failed start (missing binary) leaves no mount and no shim, and says why
    let (status, _) = create(
        "nobin",
        json!({"Image": "single", "Cmd": ["/no/such/binary"]}),
    );
    assert_eq!(status, 201);
    let r = d.http("POST", "/containers/nobin/start", None).unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
    let (_, v) = get(d, "/containers/nobin/json");
    assert_eq!(v["State"]["ExitCode"], 127);
    assert!(!v["State"]["Error"].as_str().unwrap().is_empty());
    assert!(skiff_integration::mounts::mounts_under(&d.data_root()).is_empty());
    for name in ["taken", "nobin"] {
        assert_eq!(
            d.http("DELETE", &format!("/containers/{name}"), None)
                .unwrap()
                .status,
            204
        );
    }
    assert_no_container_state(d);
    // the daemon still serves
    assert_eq!(
        ok(d, &["run", "--rm", "single", "echo", "alive"]),
        "alive\n"
    );
}
