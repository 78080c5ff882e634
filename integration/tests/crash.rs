//! SIGKILL the daemon at random moments during pulls: after each kill `skiff check` is
//! clean, and after restart every image is either whole (inspect works, all its layers
//! are in the store) or absent; a final pull of everything succeeds.
//!
//! SIGKILL leaves the page cache intact, so this shows the commit order is right for a
//! process crash, not that data reaches the disk before a power cut.
//!
//! Knobs: SKIFF_CRASH_ITERS (default 30), SKIFF_CRASH_SEED (replay a run's choices).

mod common;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;
use rand::{Rng, SeedableRng};
use skiff_integration::{process, test_images, Daemon};

const NAMES: [&str; 4] = ["single", "multi", "zstd", "multiarch"];

fn spawn_pull(d: &Daemon, reference: &str) -> Child {
    d.docker_command(&["pull", reference])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Present means whole: its ID and layers match the config and every layer is stored.
fn assert_whole_or_absent(d: &Daemon, name: &str, reference: &str, what: &str) -> bool {
    let imgs = test_images().unwrap();
    let Some(v) = inspect(d, reference) else {
        return false;
    };
    let ids = diff_ids(imgs, name, "amd64");
    assert_eq!(v["Id"], image_id(imgs, name, "amd64"), "{what}: {name}");
    assert_eq!(
        v["RootFS"]["Layers"],
        serde_json::json!(ids),
        "{what}: {name} is listed but not whole"
    );
    for chain in chain_ids(&ids) {
        let dir = layer_dir(d, &chain);
        assert!(
            dir.join("layer.json").is_file() && dir.join("diff").is_dir(),
            "{what}: {name} is listed but its layer {chain} is not in the store"
        );
    }
    true
}

fn iterations() -> u32 {
    std::env::var("SKIFF_CRASH_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30)
}

fn seed() -> u64 {
    std::env::var("SKIFF_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random)
}

/// After a kill: the store as left is consistent, restart cleans tmp/, and `skiff check`
/// (daemon stopped) is clean; leaves the daemon running.
fn recover_and_check(d: &mut Daemon, what: &str) {
    // read the store as the kill left it: recovery would hide a bad commit order
    let problems = store_invariants(d);
    assert!(problems.is_empty(), "{what}: {problems:#?}");
    d.restart().unwrap();
    let tmp = tmp_entries(d);
    assert!(tmp.is_empty(), "{what}: tmp/ not emptied on start: {tmp:?}");
    let status = d.stop().unwrap();
    assert!(status.success(), "{what}: daemon exited with {status}");
    assert_check_clean_stopped(d, what);
    d.restart().unwrap();
}

#[test]
fn sigkill_during_pulls_leaves_whole_images_or_none() {
    let iters = iterations();
    let seed = seed();
    eprintln!("crash test: {iters} iterations, SKIFF_CRASH_SEED={seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut e = env();

    // how long pulling everything at once takes: kills land within that window
    let t0 = Instant::now();
    let mut clients: Vec<Child> = NAMES
        .iter()
        .map(|n| spawn_pull(&e.daemon, &e.refs[*n]))
        .collect();
    for c in &mut clients {
        assert!(c.wait().unwrap().success());
    }
    let window = t0.elapsed().max(Duration::from_millis(50));
    eprintln!("crash test: a full pull takes {window:?}");
    for n in NAMES {
        e.daemon.docker_ok(&["rmi", &e.refs[n]]).unwrap();
    }

    let mut whole = 0;
    for i in 0..iters {
        let mut clients: Vec<Child> = NAMES
            .iter()
            .filter(|_| rng.gen_bool(0.7))
            .map(|n| spawn_pull(&e.daemon, &e.refs[*n]))
            .collect();
        let delay = window.mul_f64(rng.gen_range(0.0..1.2));
        std::thread::sleep(delay);
        e.daemon.kill().unwrap();
        for c in &mut clients {
            let _ = process::terminate(c, Duration::from_secs(5));
        }
        let what = format!("iteration {i} (SKIFF_CRASH_SEED={seed}, kill after {delay:?})");
        recover_and_check(&mut e.daemon, &what);
        for n in NAMES {
            if assert_whole_or_absent(&e.daemon, n, &e.refs[n], &what) {
                whole += 1;
                if rng.gen_bool(0.5) {
                    e.daemon.docker_ok(&["rmi", &e.refs[n]]).unwrap();
                }
            }
        }
    }
    eprintln!("crash test: {whole} whole images seen after kills");
    for n in NAMES {
        e.daemon.docker_ok(&["pull", &e.refs[n]]).unwrap();
        assert!(assert_whole_or_absent(
            &e.daemon,
            n,
            &e.refs[n],
            "final pull"
        ));
    }
    assert_check_clean(&mut e.daemon);
    let out = e.daemon.docker_ok(&["images", "-q"]).unwrap();
    assert_eq!(out.lines().count(), NAMES.len(), "{out}");
}

/// The same for `docker load` and `rmi` running when the kill lands.
#[test]
fn sigkill_during_load_and_rmi_leaves_whole_images_or_none() {
    let iters = (iterations() / 3).max(5);
    let seed = seed();
    eprintln!("load crash test: {iters} iterations, SKIFF_CRASH_SEED={seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut e = env();
    let names = ["single", "multi", "zstd"];
    for n in names {
        e.daemon.docker_ok(&["pull", &e.refs[n]]).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("all.tar");
    let mut args = vec!["save", "-o", archive.to_str().unwrap()];
    args.extend(names.iter().map(|n| e.refs[*n].as_str()));
    e.daemon.docker_ok(&args).unwrap();
    for n in names {
        e.daemon.docker_ok(&["rmi", &e.refs[n]]).unwrap();
    }
    let t0 = Instant::now();
    e.daemon
        .docker_ok(&["load", "-i", archive.to_str().unwrap()])
        .unwrap();
    let window = t0.elapsed().max(Duration::from_millis(50));
    eprintln!("load crash test: a load takes {window:?}");

    for i in 0..iters {
        let mut clients: Vec<Child> = Vec::new();
        for n in names {
            if inspect(&e.daemon, &e.refs[n]).is_some() && rng.gen_bool(0.5) {
                clients.push(
                    e.daemon
                        .docker_command(&["rmi", &e.refs[n]])
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .spawn()
                        .unwrap(),
                );
            }
        }
        clients.push(
            e.daemon
                .docker_command(&["load", "-i", archive.to_str().unwrap()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let delay = window.mul_f64(rng.gen_range(0.0..1.2));
        std::thread::sleep(delay);
        e.daemon.kill().unwrap();
        for c in &mut clients {
            let _ = process::terminate(c, Duration::from_secs(5));
        }
        let what = format!("load iteration {i} (SKIFF_CRASH_SEED={seed}, kill after {delay:?})");
        recover_and_check(&mut e.daemon, &what);
        for n in names {
            assert_whole_or_absent(&e.daemon, n, &e.refs[n], &what);
        }
    }
    e.daemon
        .docker_ok(&["load", "-i", archive.to_str().unwrap()])
        .unwrap();
    for n in names {
        assert!(assert_whole_or_absent(
            &e.daemon,
            n,
            &e.refs[n],
            "final load"
        ));
    }
}
