//! Image commands through the real docker CLI against the real daemon and a real registry:
//! pull (tag, digest, platform, up to date), images (filters, digests), inspect, history,
//! tag, rmi, save/load, system df, and what a pull leaves on disk (whiteouts, opaque dirs).

mod common;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use common::*;
use serde_json::{json, Value};
use skiff_integration::{test_images, IMAGE_NAMES};

/// Sum of the regular file sizes in an image's layer tars (hardlink entries carry no
/// size): what dockerd reports as an image's `Size`.
fn content_size(name: &str, arch: &str) -> u64 {
    let imgs = test_images().unwrap();
    let manifest = manifest_for(imgs, name, arch);
    let mut total = 0;
    for l in manifest["layers"].as_array().unwrap() {
        let blob = imgs.blob(name, l["digest"].as_str().unwrap()).unwrap();
        let tar_bytes = match l["mediaType"].as_str().unwrap() {
            m if m.ends_with("+gzip") => {
                let mut out = Vec::new();
                std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&blob[..]), &mut out)
                    .unwrap();
                out
            }
            m if m.ends_with("+zstd") => zstd::decode_all(&blob[..]).unwrap(),
            _ => blob,
        };
        let mut a = tar::Archive::new(&tar_bytes[..]);
        for e in a.entries().unwrap() {
            let e = e.unwrap();
            if e.header().entry_type().is_file() {
                total += e.header().size().unwrap();
            }
        }
    }
    total
}

#[test]
fn pull_by_tag_lists_and_inspects_every_image() {
    let mut e = env();
    let imgs = test_images().unwrap();
    for name in IMAGE_NAMES {
        let r = &e.refs[name];
        let out = e.daemon.docker_ok(&["pull", r]).unwrap();
        assert!(
            out.contains(&imgs.digest(name).unwrap()),
            "pull output lacks the digest: {out}"
        );
        let id = image_id(imgs, name, "amd64");
        assert!(
            listed(&e.daemon).contains(&format!("{r} {id}")),
            "{r} not listed: {:?}",
            listed(&e.daemon)
        );
        let v = inspect(&e.daemon, r).unwrap();
        let config = config_for(imgs, name, "amd64");
        assert_eq!(v["Id"], id, "{name}");
        assert_eq!(v["Architecture"], "amd64", "{name}");
        assert_eq!(v["Os"], "linux", "{name}");
        assert_eq!(v["RootFS"]["Type"], "layers", "{name}");
        assert_eq!(
            v["RootFS"]["Layers"], config["rootfs"]["diff_ids"],
            "{name}"
        );
        assert_eq!(v["Config"]["Cmd"], json!(["sh"]), "{name}");
        assert_eq!(v["Config"]["Env"], config["config"]["Env"], "{name}");
        assert_eq!(v["Config"]["Labels"], config["config"]["Labels"], "{name}");
        // multiarch's label names the variant: multiarch-amd64
        assert!(
            v["Config"]["Labels"]["org.skiff.test.image"]
                .as_str()
                .is_some_and(|l| l.starts_with(name)),
            "{name}"
        );
        assert_eq!(
            v["Size"].as_u64(),
            Some(content_size(name, "amd64")),
            "{name}: Size should be the files' total"
        );
        let repo_digest = format!("{}@{}", repo_of(r), imgs.digest(name).unwrap());
        assert_eq!(v["RepoDigests"], json!([repo_digest]), "{name}");
        assert_eq!(v["RepoTags"], json!([r]), "{name}");
    }
    // raw HTTP sees the same images
    let resp = e.daemon.http("GET", "/images/json", None).unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.json().unwrap().as_array().unwrap().len(),
        IMAGE_NAMES.len()
    );
    // pulling again is a no-op that still succeeds
    for name in ["single", "multiarch"] {
        let out = e.daemon.docker_ok(&["pull", &e.refs[name]]).unwrap();
        assert!(out.contains("Image is up to date"), "{name}: {out}");
    }
    assert_eq!(listed(&e.daemon).len(), IMAGE_NAMES.len());
    assert_check_clean(&mut e.daemon);
    // and everything survives the restart
    assert_eq!(listed(&e.daemon).len(), IMAGE_NAMES.len());
    let out = e.daemon.check_with(&[]).unwrap();
    assert!(
        !out.status.success(),
        "skiff check must refuse to run while the daemon holds the data root"
    );
}

#[test]
fn pull_by_digest_and_image_filters() {
    let e = env();
    let imgs = test_images().unwrap();
    let multi_repo = repo_of(&e.refs["multi"]);
    let multi_digest = imgs.digest("multi").unwrap();
    let by_digest = format!("{multi_repo}@{multi_digest}");
    e.daemon.docker_ok(&["pull", &by_digest]).unwrap();
    e.daemon.docker_ok(&["pull", &e.refs["single"]]).unwrap();
    let v = inspect(&e.daemon, &by_digest).unwrap();
    assert_eq!(v["Id"], image_id(imgs, "multi", "amd64"));
    assert_eq!(v["RepoTags"], json!([]));
    assert_eq!(v["RepoDigests"], json!([by_digest]));

    let digests = e
        .daemon
        .docker_ok(&[
            "images",
            "--digests",
            "--format",
            "{{.Repository}} {{.Tag}} {{.Digest}}",
        ])
        .unwrap();
    assert!(
        digests.contains(&format!("{multi_repo} <none> {multi_digest}")),
        "{digests}"
    );
    assert!(
        digests.contains(&format!(
            "{} latest {}",
            repo_of(&e.refs["single"]),
            imgs.digest("single").unwrap()
        )),
        "{digests}"
    );

    let ids = |filter: &str| -> Vec<String> {
        let mut v: Vec<String> = e
            .daemon
            .docker_ok(&["images", "-q", "--no-trunc", "--filter", filter])
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        v.sort();
        v
    };
    let single_id = image_id(imgs, "single", "amd64");
    let multi_id = image_id(imgs, "multi", "amd64");
    assert_eq!(
        ids(&format!("reference={}", e.refs["single"])),
        vec![single_id.clone()]
    );
    assert_eq!(ids("reference=*/skiff-test/sing*"), vec![single_id.clone()]);
    assert_eq!(ids("reference=nothing/like/this"), Vec::<String>::new());
    // untagged (only a digest) counts as dangling, as in dockerd
    assert_eq!(ids("dangling=true"), vec![multi_id.clone()]);
    let out = e
        .daemon
        .docker(&["images", "--filter", "dangling=maybe"])
        .unwrap();
    assert!(!out.status.success(), "dangling=maybe must be refused");

    assert_eq!(
        ids("label=org.skiff.test.image=single"),
        vec![single_id.clone()]
    );
    assert_eq!(ids("label=org.skiff.test.image"), {
        let mut both = vec![single_id.clone(), multi_id.clone()];
        both.sort();
        both
    });

    // a digest, tag or repository the registry does not have is a clear error
    let missing_tag = format!("{}:nope", repo_of(&e.refs["single"]));
    let missing_repo = format!("{}/skiff-test/nope:1", e.registry.host_port());
    let missing_digest = format!("{multi_repo}@sha256:{}", "0".repeat(64));
    for missing in [&missing_digest, &missing_tag, &missing_repo] {
        let out = e.daemon.docker(&["pull", missing]).unwrap();
        assert!(!out.status.success(), "{missing}");
        let err = stderr(&out);
        assert!(
            err.contains("not found") && err.contains(missing.as_str()),
            "unclear error for {missing}: {err}"
        );
    }
    assert_eq!(listed(&e.daemon).len(), 2);

    // prune removes the untagged image and its layers, keeps the tagged one
    let out = e.daemon.docker_ok(&["image", "prune", "-f"]).unwrap();
    assert!(out.contains(&multi_id), "{out}");
    assert_eq!(ids("dangling=false"), vec![single_id.clone()]);
    assert_eq!(
        layer_dirs(&e.daemon).len(),
        1,
        "{:?}",
        layer_dirs(&e.daemon)
    );
}

#[test]
fn history_follows_the_config() {
    let e = env();
    let imgs = test_images().unwrap();
    e.daemon.docker_ok(&["pull", &e.refs["multi"]]).unwrap();
    let config = config_for(imgs, "multi", "amd64");
    let mut expected: Vec<String> = config["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["created_by"].as_str().unwrap().to_string())
        .collect();
    expected.reverse();
    let out = e
        .daemon
        .docker_ok(&[
            "history",
            "--no-trunc",
            "--format",
            "{{.ID}}|{{.CreatedBy}}",
            &e.refs["multi"],
        ])
        .unwrap();
    let rows: Vec<(&str, &str)> = out.lines().map(|l| l.split_once('|').unwrap()).collect();
    assert_eq!(
        rows.iter().map(|r| r.1).collect::<Vec<_>>(),
        expected,
        "{out}"
    );
    // newest first; the top row carries the image ID
    assert_eq!(rows[0].0, image_id(imgs, "multi", "amd64"), "{out}");
    let resp = e
        .daemon
        .http("GET", &format!("/images/{}/history", e.refs["multi"]), None)
        .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(
        resp.json().unwrap().as_array().unwrap().len(),
        expected.len()
    );
}

#[test]
fn tag_and_rmi_untag_delete_and_conflict() {
    let mut e = env();
    let r = e.refs["single"].clone();
    e.daemon.docker_ok(&["pull", &r]).unwrap();
    let id = inspect(&e.daemon, &r).unwrap()["Id"]
        .as_str()
        .unwrap()
        .to_string();
    e.daemon.docker_ok(&["tag", &r, "other/name:1"]).unwrap();
    e.daemon.docker_ok(&["tag", &id, "other/name:2"]).unwrap();
    assert_eq!(inspect(&e.daemon, "other/name:1").unwrap()["Id"], id);
    let tags = inspect(&e.daemon, &r).unwrap()["RepoTags"].clone();
    assert_eq!(tags.as_array().unwrap().len(), 3, "{tags}");

    // an ID referenced by more than one repository: 409 without -f
    let out = e.daemon.docker(&["rmi", &id]).unwrap();
    assert!(!out.status.success(), "rmi of a shared ID succeeded");
    assert!(
        stderr(&out).contains("must be forced") || stderr(&out).contains("conflict"),
        "{}",
        stderr(&out)
    );
    let resp = e
        .daemon
        .http("DELETE", &format!("/images/{id}"), None)
        .unwrap();
    assert_eq!(resp.status, 409, "{}", resp.text());
    assert!(resp.json().unwrap()["message"].is_string());
    assert_eq!(listed(&e.daemon).len(), 3);

    // untag one name: the image stays
    let out = e.daemon.docker_ok(&["rmi", "other/name:1"]).unwrap();
    assert!(out.contains("Untagged: other/name:1"), "{out}");
    assert!(!out.contains("Deleted"), "{out}");
    assert!(inspect(&e.daemon, &r).is_some());
    assert!(inspect(&e.daemon, "other/name:1").is_none());

    // -f on the ID untags everything and deletes the image and its layers
    let out = e.daemon.docker_ok(&["rmi", "-f", &id]).unwrap();
    assert!(out.contains(&format!("Deleted: {id}")), "{out}");
    assert!(out.contains("Untagged: other/name:2"), "{out}");
    assert!(listed(&e.daemon).is_empty());
    assert!(
        layer_dirs(&e.daemon).is_empty(),
        "{:?}",
        layer_dirs(&e.daemon)
    );

    // pull, then rmi the last tag: deletes
    e.daemon.docker_ok(&["pull", &r]).unwrap();
    let out = e.daemon.docker_ok(&["rmi", &r]).unwrap();
    assert!(out.contains(&format!("Untagged: {r}")), "{out}");
    assert!(out.contains(&format!("Deleted: {id}")), "{out}");
    assert!(listed(&e.daemon).is_empty());

    // unknown names: a clear error, not a crash
    let out = e.daemon.docker(&["rmi", "nope:never"]).unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("No such image"), "{}", stderr(&out));
    let out = e.daemon.docker(&["tag", "nope:never", "x:y"]).unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("No such image"), "{}", stderr(&out));
    assert_check_clean(&mut e.daemon);
}

#[test]
fn save_then_load_keeps_image_ids() {
    let mut e = env();
    let imgs = test_images().unwrap();
    let names = ["single", "multi", "zstd"];
    for n in names {
        e.daemon.docker_ok(&["pull", &e.refs[n]]).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("images.tar");
    let mut args = vec!["save", "-o", archive.to_str().unwrap()];
    args.extend(names.iter().map(|n| e.refs[*n].as_str()));
    e.daemon.docker_ok(&args).unwrap();
    let saved = std::fs::read(&archive).unwrap();
    let files = untar(&saved);
    let manifest: Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    assert_eq!(manifest.as_array().unwrap().len(), names.len());

    // load over the existing images: same IDs, nothing duplicated
    let out = e
        .daemon
        .docker_with_stdin(&["load"], saved.clone())
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(listed(&e.daemon).len(), names.len());

    // load after rmi brings back the same IDs, tags and layers
    for n in names {
        e.daemon.docker_ok(&["rmi", &e.refs[n]]).unwrap();
    }
    assert!(listed(&e.daemon).is_empty());
    let out = e.daemon.docker_with_stdin(&["load"], saved).unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    for n in names {
        assert!(
            stdout(&out).contains(&format!("Loaded image: {}", e.refs[n])),
            "{}",
            stdout(&out)
        );
        let v = inspect(&e.daemon, &e.refs[n]).unwrap();
        assert_eq!(
            v["Id"],
            image_id(imgs, n, "amd64"),
            "{n} changed ID through save/load"
        );
        assert_eq!(
            v["RootFS"]["Layers"],
            config_for(imgs, n, "amd64")["rootfs"]["diff_ids"]
        );
        for chain in chain_ids(&diff_ids(imgs, n, "amd64")) {
            assert!(layer_dir(&e.daemon, &chain).join("layer.json").is_file());
        }
    }

    // save by ID (no names): loads back as a dangling image with the same ID
    let single_id = image_id(imgs, "single", "amd64");
    let archive2 = dir.path().join("by-id.tar");
    e.daemon
        .docker_ok(&["save", "-o", archive2.to_str().unwrap(), &single_id])
        .unwrap();
    e.daemon.docker_ok(&["rmi", &e.refs["single"]]).unwrap();
    assert!(inspect(&e.daemon, &single_id).is_none());
    let out = e
        .daemon
        .docker(&["load", "-i", archive2.to_str().unwrap()])
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v = inspect(&e.daemon, &single_id).unwrap();
    assert_eq!(v["RepoTags"], json!([]));
    let dangling = e
        .daemon
        .docker_ok(&["images", "-q", "--no-trunc", "--filter", "dangling=true"])
        .unwrap();
    assert_eq!(dangling.trim(), single_id);
    // garbage is refused
    let out = e
        .daemon
        .docker_with_stdin(&["load"], b"this is not a tar archive".repeat(40))
        .unwrap();
    assert!(!out.status.success(), "loading garbage succeeded");
    assert_check_clean(&mut e.daemon);
}

#[test]
fn system_df_counts_images_and_layers() {
    let e = env();
    let imgs = test_images().unwrap();
    for n in ["single", "multi"] {
        e.daemon.docker_ok(&["pull", &e.refs[n]]).unwrap();
    }
    let out = e
        .daemon
        .docker_ok(&["system", "df", "--format", "{{.Type}}|{{.TotalCount}}"])
        .unwrap();
    assert!(out.lines().any(|l| l == "Images|2"), "{out}");
    let resp = e.daemon.http("GET", "/system/df", None).unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    let v = resp.json().unwrap();
    let images = v["Images"].as_array().unwrap();
    assert_eq!(images.len(), 2, "{v}");
    let expected: u64 = ["single", "multi"]
        .iter()
        .map(|n| content_size(n, "amd64"))
        .sum();
    // single's layer is not multi's first layer, so nothing is shared
    assert_eq!(v["LayersSize"].as_u64(), Some(expected), "{v}");
    for img in images {
        let id = img["Id"].as_str().unwrap();
        let name = ["single", "multi"]
            .into_iter()
            .find(|n| image_id(imgs, n, "amd64") == id)
            .unwrap();
        assert_eq!(img["Size"].as_u64(), Some(content_size(name, "amd64")));
    }
}

#[test]
fn platform_arm64_pulls_the_arm64_variant() {
    let e = env();
    let imgs = test_images().unwrap();
    let r = &e.refs["multiarch"];
    e.daemon
        .docker_ok(&["pull", "--platform", "linux/arm64", r])
        .unwrap();
    let v = inspect(&e.daemon, r).unwrap();
    assert_eq!(v["Architecture"], "arm64");
    assert_eq!(v["Variant"], "v8");
    assert_eq!(v["Id"], image_id(imgs, "multiarch", "arm64"));
    // the files are arm64's too
    let chain = chain_ids(&diff_ids(imgs, "multiarch", "arm64"));
    let arch =
        std::fs::read_to_string(layer_dir(&e.daemon, &chain[0]).join("diff/etc/arch")).unwrap();
    assert_eq!(arch, "arm64\n");
    // and the default platform is amd64: the tag moves to the amd64 image
    let out = e.daemon.docker_ok(&["pull", r]).unwrap();
    assert!(!out.contains("Image is up to date"), "{out}");
    let v = inspect(&e.daemon, r).unwrap();
    assert_eq!(v["Architecture"], "amd64");
    assert_eq!(v["Id"], image_id(imgs, "multiarch", "amd64"));
    // a platform the index does not have is a clear error
    let out = e
        .daemon
        .docker(&["pull", "--platform", "linux/s390x", r])
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("s390x") || stderr(&out).contains("platform"),
        "{}",
        stderr(&out)
    );
}

fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let p = CString::new(path.as_os_str().as_bytes()).unwrap();
    let n = CString::new(name).unwrap();
    let mut buf = vec![0u8; 256];
    // SAFETY: both strings are NUL-terminated and buf is valid for buf.len() bytes.
    let len =
        unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    let len = usize::try_from(len).ok()?;
    buf.truncate(len);
    Some(buf)
}

fn assert_whiteout(path: &Path) {
    let meta =
        std::fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        meta.file_type().is_char_device(),
        "{} is not a whiteout char device",
        path.display()
    );
    assert_eq!(meta.rdev(), 0, "{} is not device 0:0", path.display());
}

#[test]
fn multi_layer_pull_writes_overlay_whiteouts_and_opaque_dirs() {
    let e = env();
    let imgs = test_images().unwrap();
    e.daemon.docker_ok(&["pull", &e.refs["multi"]]).unwrap();
    let chain = chain_ids(&diff_ids(imgs, "multi", "amd64"));
    assert_eq!(chain.len(), 4);
    for c in &chain {
        assert!(layer_dir(&e.daemon, c).join("diff").is_dir(), "{c}");
    }
    let l1 = layer_dir(&e.daemon, &chain[0]).join("diff");
    let l2 = layer_dir(&e.daemon, &chain[1]).join("diff");
    let l3 = layer_dir(&e.daemon, &chain[2]).join("diff");
    let l4 = layer_dir(&e.daemon, &chain[3]).join("diff");
    // layer 1 holds what later layers delete
    assert!(l1.join("data/del.txt").is_file());
    assert!(l1.join("opt/app/old1").is_file());
    // layer 2 (uncompressed tar): whiteouts become char devices 0:0, no .wh. files remain
    assert_whiteout(&l2.join("data/del.txt"));
    assert_whiteout(&l2.join("data/deldir"));
    assert!(!l2.join("data/.wh.del.txt").exists());
    assert!(std::fs::symlink_metadata(l2.join("opt/app/.wh..wh..opq")).is_err());
    assert_eq!(
        xattr(&l2.join("opt/app"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..]),
        "opt/app is not marked opaque"
    );
    assert!(xattr(&l2.join("data"), "trusted.overlay.opaque").is_none());
    assert!(l2.join("opt/app/new.txt").is_file());
    assert!(l2.join("data/replaced/inside.txt").is_file());
    // hardlinks stay hardlinks, symlinks stay as written, owners/modes/xattrs kept
    let a = std::fs::metadata(l2.join("data/hl-a")).unwrap();
    let b = std::fs::metadata(l2.join("data/hl-b")).unwrap();
    assert_eq!(a.ino(), b.ino());
    assert_eq!(
        std::fs::read_link(l2.join("data/link-abs")).unwrap(),
        Path::new("/data/keep.txt")
    );
    assert_eq!(
        std::fs::read_link(l2.join("data/link-dangling")).unwrap(),
        Path::new("../../nonexistent")
    );
    assert_eq!(
        xattr(&l2.join("data/xattr.txt"), "user.skiff.test").as_deref(),
        Some(&b"hello"[..])
    );
    let suid = std::fs::symlink_metadata(l2.join("usr/bin/suid-busybox")).unwrap();
    assert_eq!(suid.mode() & 0o7777, 0o4755);
    let owned = std::fs::symlink_metadata(l2.join("home/nobody/owned.txt")).unwrap();
    assert_eq!(
        (owned.uid(), owned.gid(), owned.mode() & 0o777),
        (1000, 1000, 0o640)
    );
    // layer 3 whites out one half of the hardlink pair and the dangling link
    assert_whiteout(&l3.join("data/hl-b"));
    assert_whiteout(&l3.join("data/link-dangling"));
    assert_eq!(
        std::fs::read_to_string(l3.join("etc/image")).unwrap(),
        "multi\n"
    );
    // layer 4: only the new empty directory
    assert!(l4.join("data/empty-dir").is_dir());
    assert_eq!(
        std::fs::read_dir(l4.join("data/empty-dir"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn zstd_layer_is_decompressed_into_the_store() {
    let e = env();
    let imgs = test_images().unwrap();
    let out = e.daemon.docker_ok(&["pull", &e.refs["zstd"]]).unwrap();
    assert!(out.contains(&imgs.digest("zstd").unwrap()), "{out}");
    let chain = chain_ids(&diff_ids(imgs, "zstd", "amd64"));
    let diff = layer_dir(&e.daemon, &chain[0]).join("diff");
    assert_eq!(
        std::fs::read_to_string(diff.join("etc/image")).unwrap(),
        "zstd\n"
    );
    assert!(diff.join("bin/busybox").is_file());
    assert_eq!(
        std::fs::read_link(diff.join("bin/sh")).unwrap(),
        Path::new("busybox")
    );
}

#[test]
fn concurrent_pulls_of_one_image_all_succeed() {
    let mut e = env();
    let imgs = test_images().unwrap();
    let r = e.refs["multi"].clone();
    let clients: Vec<_> = (0..3)
        .map(|_| {
            e.daemon
                .docker_command(&["pull", &r])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in clients {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(
            stdout(&out).contains(&imgs.digest("multi").unwrap()),
            "{}",
            stdout(&out)
        );
    }
    assert_eq!(
        listed(&e.daemon),
        vec![format!("{r} {}", image_id(imgs, "multi", "amd64"))]
    );
    assert_eq!(layer_dirs(&e.daemon).len(), 4);
    assert!(tmp_entries(&e.daemon).is_empty());
    assert_check_clean(&mut e.daemon);
}

/// The agent's way to pull by digest (`tag=sha256:…`), its progress stream, and lookups by
/// ID, short ID and digest.
#[test]
fn raw_pull_by_digest_tag_and_lookups() {
    let e = env();
    let imgs = test_images().unwrap();
    let repo = repo_of(&e.refs["single"]);
    let digest = imgs.digest("single").unwrap();
    let resp = e
        .daemon
        .http(
            "POST",
            &format!("/images/create?fromImage={repo}&tag={digest}"),
            None,
        )
        .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(
        resp.header("Content-Type")
            .unwrap()
            .starts_with("application/json"),
        "{:?}",
        resp.headers
    );
    let lines = resp.json_lines().unwrap();
    assert!(
        lines.iter().all(|l| l.get("error").is_none()),
        "{}",
        resp.text()
    );
    assert!(
        lines.iter().any(|l| l["aux"]["Digest"] == digest.as_str()),
        "no aux.Digest: {}",
        resp.text()
    );
    assert!(
        lines.iter().any(|l| l["status"] == "Pull complete"),
        "{}",
        resp.text()
    );
    let id = image_id(imgs, "single", "amd64");
    let by_digest = format!("{repo}@{digest}");
    for name in [
        &id,
        &id["sha256:".len()..],
        &id["sha256:".len().."sha256:".len() + 12],
        &by_digest,
    ] {
        let v = inspect(&e.daemon, name).unwrap_or_else(|| panic!("inspect {name}"));
        assert_eq!(v["Id"], id, "{name}");
    }
    // legacy filter format {"k":{"v":true}}
    let resp = e
        .daemon
        .http(
            "GET",
            "/images/json?filters=%7B%22dangling%22%3A%7B%22true%22%3Atrue%7D%7D",
            None,
        )
        .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    let ids: Vec<Value> = resp
        .json()
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["Id"].clone())
        .collect();
    assert_eq!(ids, vec![json!(id)]);
    // an invalid new name is a 400 that says why
    let resp = e
        .daemon
        .http(
            "POST",
            &format!("/images/{id}/tag?repo=Bad/Name&tag=x"),
            None,
        )
        .unwrap();
    assert_eq!(resp.status, 400, "{}", resp.text());
    assert!(resp.text().contains("lowercase"), "{}", resp.text());
    // rmi by digest removes the digest-only image
    let out = e.daemon.docker_ok(&["rmi", &by_digest]).unwrap();
    assert!(out.contains(&format!("Deleted: {id}")), "{out}");
    assert!(listed(&e.daemon).is_empty());
}

#[test]
fn unreachable_registry_is_a_clear_error() {
    let e = env();
    // a port nobody listens on
    let port = skiff_integration::free_port().unwrap();
    let r = format!("127.0.0.1:{port}/nothing/here:1");
    let out = e.daemon.docker(&["pull", &r]).unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&format!("127.0.0.1:{port}")) && err.contains("refused"),
        "{err}"
    );
    assert_eq!(e.daemon.http("GET", "/_ping", None).unwrap().status, 200);
    assert!(listed(&e.daemon).is_empty());
    assert!(tmp_entries(&e.daemon).is_empty());
}
