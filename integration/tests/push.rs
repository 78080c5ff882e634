//! `docker push` through skiff, with the real docker CLI and real registries: push to a
//! second registry, what the registry then holds (skopeo), pulling it back on an empty
//! daemon (same image ID), pushing again (layers already exist), unknown images, and a
//! registry with Basic auth.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use skiff_integration::{process, test_images, Daemon, DaemonOptions, Registry};

/// `skopeo inspect` of a pushed reference (plain HTTP registry).
fn skopeo_inspect(reference: &str, creds: Option<&str>) -> Value {
    let mut cmd = Command::new("skopeo");
    cmd.args(["inspect", "--tls-verify=false"]);
    if let Some(c) = creds {
        cmd.args(["--creds", c]);
    }
    cmd.arg(format!("docker://{reference}"));
    let out = process::run_ok(cmd, None, Duration::from_secs(60)).unwrap();
    serde_json::from_slice(&out).unwrap()
}

/// The `TAG: digest: sha256:… size: N` line's digest.
fn pushed_digest(out: &str, tag: &str) -> String {
    let line = out
        .lines()
        .find(|l| l.starts_with(&format!("{tag}: digest: sha256:")))
        .unwrap_or_else(|| panic!("no digest line in push output: {out}"));
    let digest = line.split_whitespace().nth(2).unwrap().to_string();
    assert!(line.contains(" size: "), "{line}");
    digest
}

#[test]
fn push_to_another_registry_then_pull_back_on_an_empty_daemon() {
    let e = env();
    let imgs = test_images().unwrap();
    let target_registry = Registry::start().unwrap();
    let b = target_registry.host_port().to_string();
    let fresh = Daemon::start(DaemonOptions::with_registry(&target_registry)).unwrap();

    // multi: several gzip layers; zstd: layers that must be recompressed to gzip
    for name in ["multi", "zstd"] {
        let source = &e.refs[name];
        e.daemon.docker_ok(&["pull", source]).unwrap();
        let target = format!("{b}/pushed/{name}:v1");
        e.daemon.docker_ok(&["tag", source, &target]).unwrap();
        let layers = diff_ids(imgs, name, "amd64");

        let out = e.daemon.docker_ok(&["push", &target]).unwrap();
        assert!(
            out.contains(&format!(
                "The push refers to repository [{b}/pushed/{name}]"
            )),
            "{out}"
        );
        for d in &layers {
            let short = &d["sha256:".len()..][..12];
            assert!(
                out.contains(&format!("{short}: Pushed")),
                "{short} not pushed: {out}"
            );
        }
        let digest = pushed_digest(&out, "v1");

        // what the registry holds: a schema2 manifest with gzip layers, one per diff ID
        let inspected = skopeo_inspect(&target, None);
        assert_eq!(inspected["Digest"], digest.as_str(), "{inspected}");
        assert_eq!(
            inspected["Layers"].as_array().unwrap().len(),
            layers.len(),
            "{inspected}"
        );
        let resp = target_registry
            .manifest(&format!("pushed/{name}"), "v1")
            .unwrap();
        let manifest = resp.json().unwrap();
        assert_eq!(
            manifest["mediaType"],
            "application/vnd.docker.distribution.manifest.v2+json"
        );
        for l in manifest["layers"].as_array().unwrap() {
            assert_eq!(
                l["mediaType"],
                "application/vnd.docker.image.rootfs.diff.tar.gzip"
            );
        }
        assert_eq!(manifest["config"]["digest"], image_id(imgs, name, "amd64"));

        // the local image now carries the pushed digest
        let v = inspect(&e.daemon, &target).unwrap();
        let repo_digest = format!("{b}/pushed/{name}@{digest}");
        assert!(
            v["RepoDigests"]
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d == repo_digest.as_str()),
            "{repo_digest} not in {}",
            v["RepoDigests"]
        );

        // an empty daemon pulls it back as the same image
        let pulled = fresh.docker_ok(&["pull", &target]).unwrap();
        assert!(pulled.contains(&digest), "{pulled}");
        let v = inspect(&fresh, &target).unwrap();
        assert_eq!(v["Id"], image_id(imgs, name, "amd64"), "{name}");
        assert_eq!(v["RootFS"]["Layers"], serde_json::json!(layers), "{name}");

        // pushing again sends nothing and gives the same manifest
        let again = e.daemon.docker_ok(&["push", &target]).unwrap();
        assert!(!again.contains("Pushed"), "{again}");
        assert_eq!(
            again.matches("Layer already exists").count(),
            layers.len(),
            "{again}"
        );
        assert_eq!(pushed_digest(&again, "v1"), digest);
    }
    assert_no_temp_blobs(&e.daemon);

    // an image that is not there is an error, not an empty push
    let out = e
        .daemon
        .docker(&["push", &format!("{b}/pushed/nothing:v1")])
        .unwrap();
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("An image does not exist locally with the tag"),
        "{}",
        stderr(&out)
    );
    let r = e
        .daemon
        .http(
            "POST",
            &format!("/images/{b}/pushed/nothing/push?tag=v1"),
            None,
        )
        .unwrap();
    assert_eq!(r.status, 404, "{}", r.text());
}

/// No compressed layer may stay behind in the store's tmp dir after a push.
fn assert_no_temp_blobs(d: &Daemon) {
    let left: Vec<_> = std::fs::read_dir(d.data_root().join("tmp"))
        .map(|r| r.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        !left
            .iter()
            .any(|n| n.to_string_lossy().starts_with("push-")),
        "{left:?}"
    );
}

/// A `docker save` tar of a one-layer image whose layer holds `bytes` random (so
/// incompressible) bytes.
fn random_image_tar(tag: &str, bytes: usize) -> Vec<u8> {
    let payload: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
    let mut layer = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(payload.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    layer.append_data(&mut h, "big.bin", &payload[..]).unwrap();
    let layer = layer.into_inner().unwrap();
    let diff_id = format!("sha256:{}", hex::encode(Sha256::digest(&layer)));
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }))
    .unwrap();
    let config_name = format!("{}.json", hex::encode(Sha256::digest(&config)));
    let manifest = serde_json::to_vec(&json!([{
        "Config": config_name,
        "RepoTags": [tag],
        "Layers": ["layer/layer.tar"],
    }]))
    .unwrap();
    let mut out = tar::Builder::new(Vec::new());
    for (name, data) in [
        (config_name.as_str(), &config),
        ("layer/layer.tar", &layer),
        ("manifest.json", &manifest),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        out.append_data(&mut h, name, &data[..]).unwrap();
    }
    out.into_inner().unwrap()
}

#[test]
fn a_layer_larger_than_one_upload_chunk_arrives_whole() {
    let target_registry = Registry::start().unwrap();
    let b = target_registry.host_port().to_string();
    let daemon = Daemon::start(DaemonOptions::with_registry(&target_registry)).unwrap();
    let fresh = Daemon::start(DaemonOptions::with_registry(&target_registry)).unwrap();
    let target = format!("{b}/pushed/big:1");
    // 3.5 MiB of random data: four upload chunks after gzip
    let out = daemon
        .docker_with_stdin(&["load"], random_image_tar(&target, 7 << 19))
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let id = inspect(&daemon, &target).unwrap()["Id"].clone();

    let out = daemon.docker_ok(&["push", &target]).unwrap();
    assert!(out.contains("Pushed"), "{out}");
    let digest = pushed_digest(&out, "1");
    assert_no_temp_blobs(&daemon);
    let inspected = skopeo_inspect(&target, None);
    assert_eq!(inspected["Digest"], digest.as_str());

    fresh.docker_ok(&["pull", &target]).unwrap();
    let v = inspect(&fresh, &target).unwrap();
    assert_eq!(v["Id"], id);
}

#[test]
fn push_to_a_registry_with_basic_auth_after_docker_login() {
    let e = env();
    let secured = Registry::start_with_auth("skiff", "s3cret").unwrap();
    let host = secured.host_port().to_string();
    let source = &e.refs["single"];
    e.daemon.docker_ok(&["pull", source]).unwrap();
    let target = format!("{host}/private/single:1");
    e.daemon.docker_ok(&["tag", source, &target]).unwrap();

    // without credentials: refused, and no interactive prompt (the CLI prompts on a 401)
    let out = process::run(
        e.daemon.docker_command(&["push", &target]),
        None,
        Duration::from_secs(60),
    )
    .expect("docker push without login hung");
    assert!(!out.status.success(), "push without login succeeded");
    let err = stderr(&out).to_lowercase();
    assert!(
        err.contains("denied") || err.contains("unauthorized"),
        "{err}"
    );

    let out = e
        .daemon
        .docker_with_stdin(
            &["login", &host, "-u", "skiff", "--password-stdin"],
            b"s3cret\n".to_vec(),
        )
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let out = e.daemon.docker_ok(&["push", &target]).unwrap();
    let digest = pushed_digest(&out, "1");
    let inspected = skopeo_inspect(&target, Some("skiff:s3cret"));
    assert_eq!(inspected["Digest"], digest.as_str());
    assert_eq!(
        inspected["Layers"].as_array().unwrap().len(),
        diff_ids(test_images().unwrap(), "single", "amd64").len()
    );
}
