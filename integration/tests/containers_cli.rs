//! Containers through the real docker CLI: run (output, exit codes, tty, stdin), detached
//! containers with ps/logs/exec/top/stats/rename/update/stop/kill/restart/wait/rm, images
//! with whiteouts, users, read-only roots, memory limits, restart policies and live restore
//! after a daemon SIGKILL. The core flow runs with both runtimes (embedded libcontainer,
//! the default, and runc).

mod containers_common;

use containers_common::*;

/// Everything a device user does with one runtime (`--runtime` value).
fn core_flow(runtime: &str) {
    let c = ctx();
    let d = &c.daemon;
    let rt = format!("--runtime={runtime}");
    let rt = rt.as_str();

    // run --rm: output and exit codes
    assert_eq!(ok(d, &["run", "--rm", rt, "single", "echo", "hi"]), "hi\n");
    assert_eq!(
        code(d, &["run", "--rm", rt, "single", "sh", "-c", "exit 3"]),
        3
    );
    assert_eq!(
        code(d, &["run", "--rm", rt, "single", "no-such-binary"]),
        127
    );

    // -i with piped stdin, -t with a pseudo terminal
    let out = d
        .docker_with_stdin(
            &["run", "-i", "--rm", rt, "single", "cat"],
            b"piped\n".to_vec(),
        )
        .unwrap();
    assert_eq!(stdout(&out), "piped\n", "{}", stderr(&out));
    let out = under_script(d, &format!("docker run -t --rm {rt} single busybox tty"));
    assert!(
        stdout(&out).contains("/dev/pts/0"),
        "run -t: {:?} {}",
        stdout(&out),
        stderr(&out)
    );

    // -it: an interactive shell on a terminal, typed into, with its exit code
    let out = under_script_typing(
        d,
        &format!("docker run -it --rm {rt} single sh"),
        "echo in-tty-$((6*7))\nexit 7\n",
    );
    assert!(
        stdout(&out).contains("in-tty-42"),
        "run -it: {:?} {}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(out.status.code(), Some(7), "run -it exit code");

    // a detached container: ps, logs, exec
    let id = ok(
        d,
        &[
            "run",
            "-d",
            rt,
            "--name",
            "web",
            "single",
            "sh",
            "-c",
            "echo started; trap 'exit 0' TERM; while true; do sleep 0.1; done",
        ],
    )
    .trim()
    .to_string();
    assert_eq!(id.len(), 64);
    assert!(ok(d, &["ps"]).contains("web"));
    assert!(eventually(10, || ok(d, &["logs", "web"]) == "started\n"));
    assert_eq!(ok(d, &["exec", "web", "echo", "from-exec"]), "from-exec\n");
    assert_eq!(code(d, &["exec", "web", "sh", "-c", "exit 5"]), 5);
    let out = under_script(d, "docker exec -it web busybox tty");
    assert!(
        stdout(&out).contains("/dev/pts/"),
        "exec -it: {:?}",
        stdout(&out)
    );
    let out = d
        .docker_with_stdin(&["exec", "-i", "web", "cat"], b"to-exec\n".to_vec())
        .unwrap();
    assert_eq!(stdout(&out), "to-exec\n");

    // exec with user, working directory and environment
    assert_eq!(
        ok(
            d,
            &[
                "exec",
                "-u",
                "1000",
                "-w",
                "/tmp",
                "-e",
                "X=42",
                "web",
                "sh",
                "-c",
                "id -u; pwd; echo $X"
            ]
        ),
        "1000\n/tmp\n42\n"
    );
    // top, stats, rename, update
    let top = ok(d, &["top", "web"]);
    assert!(top.lines().next().unwrap().contains("PID"), "{top}");
    assert!(top.contains("sh -c"), "{top}");
    let stats = ok(d, &["stats", "--no-stream", "web"]);
    assert!(stats.contains("web"), "{stats}");
    ok(d, &["rename", "web", "web2"]);
    assert_eq!(inspect(d, "web2")["Name"], "/web2");
    ok(d, &["update", "--memory", "64m", "web2"]);
    assert_eq!(inspect(d, "web2")["HostConfig"]["Memory"], 64 << 20);

    // pause/unpause
    ok(d, &["pause", "web2"]);
    assert_eq!(inspect(d, "web2")["State"]["Status"], "paused");
    ok(d, &["unpause", "web2"]);

    // stop (TERM handled: exit 0), start, restart, kill, wait, rm -f
    ok(d, &["stop", "web2"]);
    let st = &inspect(d, "web2")["State"];
    assert_eq!(st["Status"], "exited");
    assert_eq!(st["ExitCode"], 0);
    ok(d, &["start", "web2"]);
    let pid1 = inspect(d, "web2")["State"]["Pid"].as_u64().unwrap();
    ok(d, &["restart", "-t", "2", "web2"]);
    let pid2 = inspect(d, "web2")["State"]["Pid"].as_u64().unwrap();
    assert!(pid1 != 0 && pid2 != 0 && pid1 != pid2);
    ok(d, &["kill", "web2"]);
    assert_eq!(ok(d, &["wait", "web2"]).trim(), "137");
    let out = d.docker(&["kill", "web2"]).unwrap();
    assert!(!out.status.success() && stderr(&out).contains("is not running"));
    ok(d, &["start", "web2"]);
    ok(d, &["rm", "-f", "web2"]);
    assert!(!ok(d, &["ps", "-a"]).contains("web2"));
    assert_no_container_state(d);
}

#[test]
fn core_flow_with_the_embedded_libcontainer() {
    core_flow("libcontainer");
}

#[test]
fn core_flow_with_runc() {
    core_flow("runc");
}

#[test]
fn images_users_read_only_roots_and_memory_limits() {
    let c = ctx();
    let d = &c.daemon;
    // whiteouts and an opaque directory of the multi-layer image
    let out = ok(
        d,
        &[
            "run",
            "--rm",
            "multi",
            "sh",
            "-c",
            "ls /data; echo --; ls /opt/app; cat /etc/image",
        ],
    );
    let (data, rest) = out.split_once("--\n").unwrap();
    assert!(
        data.contains("keep.txt") && data.contains("layer3.txt"),
        "{out}"
    );
    assert!(
        !data.contains("del.txt") && !data.contains("deldir") && !data.contains("hl-b"),
        "{out}"
    );
    assert_eq!(rest, "new.txt\nmulti\n");
    // a non-root user, by number and by name
    assert_eq!(
        ok(
            d,
            &["run", "--rm", "--user", "1000:1000", "single", "id", "-u"]
        ),
        "1000\n"
    );
    assert_eq!(
        ok(
            d,
            &["run", "--rm", "--user", "nobody", "single", "id", "-un"]
        ),
        "nobody\n"
    );
    // --init runs the built-in init as PID 1; host networking shows the host's name
    let ps = ok(d, &["run", "--rm", "--init", "single", "ps"]);
    assert!(ps.contains("1 root") && ps.contains("docker-init"), "{ps}");
    let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let host_name = host_name.trim();
    assert_eq!(
        ok(
            d,
            &["run", "--rm", "--network", "host", "single", "hostname"]
        )
        .trim(),
        host_name
    );
    // a named volume outlives its containers; a bind mount shows the host directory
    ok(
        d,
        &[
            "run",
            "--rm",
            "-v",
            "vol1:/v",
            "single",
            "sh",
            "-c",
            "echo kept > /v/f",
        ],
    );
    assert_eq!(
        ok(
            d,
            &["run", "--rm", "-v", "vol1:/v:ro", "single", "cat", "/v/f"]
        ),
        "kept\n"
    );
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("h"), "from host").unwrap();
    let bind = format!("{}:/h", host.path().display());
    assert_eq!(
        ok(d, &["run", "--rm", "-v", &bind, "single", "cat", "/h/h"]),
        "from host"
    );
    // read-only root
    let out = d
        .docker(&["run", "--rm", "--read-only", "single", "touch", "/x"])
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("Read-only file system"),
        "{}",
        stderr(&out)
    );
    // writes go to the container's own layer only
    ok(
        d,
        &[
            "run",
            "--name",
            "writer",
            "single",
            "sh",
            "-c",
            "echo x > /etc/image",
        ],
    );
    assert_eq!(
        ok(d, &["run", "--rm", "single", "cat", "/etc/image"]),
        "single\n"
    );
    // a memory hog over its limit is OOM-killed and says so
    let out = d
        .docker(&[
            "run",
            "--name",
            "hog",
            "--memory",
            "10m",
            "single",
            "sh",
            "-c",
            "x=$(head -c 60000000 /dev/zero | busybox tr '\\0' a); echo survived",
        ])
        .unwrap();
    assert_eq!(out.status.code(), Some(137), "{}", stderr(&out));
    let st = &inspect(d, "hog")["State"];
    assert_eq!(st["OOMKilled"], true, "{st}");
    assert_eq!(st["ExitCode"], 137);
    // images used by containers keep their layers: rmi is refused, prune skips them
    let out = d.docker(&["rmi", "single"]).unwrap();
    assert!(!out.status.success(), "rmi of a used image succeeded");
    assert!(
        stderr(&out).contains("is using its referenced image"),
        "{}",
        stderr(&out)
    );
    ok(d, &["image", "prune", "-a", "-f"]);
    assert!(ok(d, &["images"]).contains("single"));
    assert_eq!(ok(d, &["start", "-a", "writer"]), "");
    ok(d, &["rm", "writer", "hog"]);
    ok(d, &["rmi", "single"]);
}

#[test]
fn restart_policy_on_failure_is_counted() {
    let c = ctx();
    let d = &c.daemon;
    ok(
        d,
        &[
            "run",
            "-d",
            "--name",
            "flaky",
            "--restart",
            "on-failure:2",
            "single",
            "sh",
            "-c",
            "exit 1",
        ],
    );
    assert!(eventually(30, || {
        let v = inspect(d, "flaky");
        v["RestartCount"] == 2 && v["State"]["Status"] == "exited"
    }));
    // the policy stops after two restarts
    std::thread::sleep(std::time::Duration::from_secs(1));
    let v = inspect(d, "flaky");
    assert_eq!(v["RestartCount"], 2);
    assert_eq!(v["State"]["ExitCode"], 1);
    // `always` restarts a container that exits 0, and a manual stop ends it
    ok(
        d,
        &[
            "run",
            "-d",
            "--name",
            "loop",
            "--restart",
            "always",
            "single",
            "sh",
            "-c",
            "sleep 0.2",
        ],
    );
    assert!(eventually(30, || inspect(d, "loop")["RestartCount"]
        .as_u64()
        >= Some(2)));
    ok(d, &["stop", "loop"]);
    let n = inspect(d, "loop")["RestartCount"].clone();
    std::thread::sleep(std::time::Duration::from_secs(1));
    assert_eq!(inspect(d, "loop")["RestartCount"], n);
    assert_eq!(inspect(d, "loop")["State"]["Running"], false);
}

#[test]
fn live_restore_after_daemon_sigkill() {
    let mut c = ctx();
    let names = ["one", "two", "three"];
    let mut pids = Vec::new();
    for n in names {
        ok(
            &c.daemon,
            &[
                "run",
                "-d",
                "--name",
                n,
                "single",
                "sh",
                "-c",
                "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done",
            ],
        );
        pids.push(inspect(&c.daemon, n)["State"]["Pid"].as_u64().unwrap());
    }
    ok(
        &c.daemon,
        &[
            "run",
            "-d",
            "--name",
            "brief",
            "single",
            "sh",
            "-c",
            "sleep 2; exit 7",
        ],
    );
    c.daemon.kill().unwrap();
    // "brief" exits while the daemon is down
    std::thread::sleep(std::time::Duration::from_secs(3));
    c.daemon.restart().unwrap();
    let d = &c.daemon;
    for (n, pid) in names.iter().zip(&pids) {
        let v = inspect(d, n);
        assert_eq!(v["State"]["Status"], "running", "{n}");
        assert_eq!(v["State"]["Pid"].as_u64().unwrap(), *pid, "{n} changed PID");
    }
    let brief = inspect(d, "brief");
    assert_eq!(brief["State"]["Status"], "exited");
    assert_eq!(brief["State"]["ExitCode"], 7);
    // logs continue across the restart
    let count = || ok(d, &["logs", "one"]).lines().count();
    let before = count();
    assert!(eventually(10, || count() > before + 3));
    // a clean SIGTERM of the daemon leaves them running too
    c.daemon.stop().unwrap();
    c.daemon.restart().unwrap();
    let d = &c.daemon;
    for (n, pid) in names.iter().zip(&pids) {
        assert_eq!(
            inspect(d, n)["State"]["Pid"].as_u64().unwrap(),
            *pid,
            "{n} after SIGTERM"
        );
    }
    // the restored containers are fully controllable
    ok(d, &["exec", "two", "true"]);
    ok(d, &["stop", "-t", "1", "one", "two", "three"]);
    for n in names {
        assert_eq!(inspect(d, n)["State"]["Running"], false);
    }
}

#[test]
fn logs_follow_events_and_attach() {
    let c = ctx();
    let d = &c.daemon;
    // events: headers at once, then the lifecycle of a container, with the legacy fields
    let mut events = d.docker_command(&["events", "--format", "{{json .}}"]);
    events
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let events = events.spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    ok(d, &["run", "--rm", "--name", "evented", "single", "true"]);
    // logs -f follows until the container stops
    ok(
        d,
        &[
            "run",
            "-d",
            "--name",
            "talker",
            "single",
            "sh",
            "-c",
            "for i in 1 2 3; do echo out $i; echo err $i >&2; sleep 0.3; done",
        ],
    );
    let out = d.docker(&["logs", "-f", "talker"]).unwrap();
    assert_eq!(stdout(&out), "out 1\nout 2\nout 3\n");
    assert_eq!(stderr(&out), "err 1\nerr 2\nerr 3\n");
    // tail counts lines of both streams: the last two are "out 3" and "err 3"
    let tail = ok(d, &["logs", "--tail", "2", "talker"]);
    assert_eq!(tail, "out 3\n");
    let ts = ok(d, &["logs", "-t", "--tail", "2", "talker"]);
    assert!(ts.starts_with("20") && ts.contains("Z out 3"), "{ts}");
    // start -a attaches before the start: nothing is lost
    ok(
        d,
        &[
            "create",
            "--name",
            "attached",
            "single",
            "echo",
            "first words",
        ],
    );
    assert_eq!(ok(d, &["start", "-a", "attached"]), "first words\n");
    ok(d, &["rm", "attached"]);
    std::thread::sleep(std::time::Duration::from_millis(500));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(events.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let out = events.wait_with_output().unwrap();
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let actions: Vec<String> = lines
        .iter()
        .filter(|e| e["Actor"]["Attributes"]["name"] == "evented")
        .map(|e| e["Action"].as_str().unwrap().to_string())
        .collect();
    for want in ["create", "start", "die", "destroy"] {
        assert!(
            actions.iter().any(|a| a == want),
            "no {want} in {actions:?}"
        );
    }
    let die = lines
        .iter()
        .find(|e| e["Action"] == "die" && e["Actor"]["Attributes"]["name"] == "evented")
        .unwrap();
    assert_eq!(die["status"], "die");
    assert_eq!(die["from"], "single");
    assert_eq!(die["Actor"]["Attributes"]["exitCode"], "0");
}

#[test]
fn restore_after_a_shim_died_and_restart_policies_at_daemon_start() {
    let mut c = ctx();
    ok(
        &c.daemon,
        &[
            "run",
            "-d",
            "--name",
            "orphan",
            "single",
            "sh",
            "-c",
            "while true; do sleep 0.1; done",
        ],
    );
    ok(
        &c.daemon,
        &[
            "run",
            "-d",
            "--name",
            "keeper",
            "--restart",
            "always",
            "single",
            "sh",
            "-c",
            "while true; do sleep 0.1; done",
        ],
    );
    // manually stopped: `always` comes back when the daemon starts, `unless-stopped` does not
    for (name, policy) in [("back", "always"), ("stays", "unless-stopped")] {
        ok(
            &c.daemon,
            &[
                "run",
                "-d",
                "--name",
                name,
                "--restart",
                policy,
                "single",
                "sh",
                "-c",
                "trap 'exit 0' TERM; while true; do sleep 0.1; done",
            ],
        );
        ok(&c.daemon, &["stop", name]);
    }
    let orphan = inspect(&c.daemon, "orphan");
    let orphan_pid = orphan["State"]["Pid"].as_u64().unwrap() as i32;
    let keeper = inspect(&c.daemon, "keeper");
    let keeper_pid = keeper["State"]["Pid"].as_u64().unwrap() as i32;
    let shim_pid = |id: &str| -> i32 {
        let p = c
            .daemon
            .exec_root()
            .join("c")
            .join(&id[..12])
            .join("shim.pid");
        std::fs::read_to_string(p).unwrap().trim().parse().unwrap()
    };
    let orphan_shim = shim_pid(orphan["Id"].as_str().unwrap());
    c.daemon.kill().unwrap();
    // while the daemon is away: one shim dies without recording anything, and the
    // always-restart container's process is killed (its shim records the exit)
    let kill9 = |pid: i32| {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    };
    kill9(orphan_shim);
    kill9(keeper_pid);
    std::thread::sleep(std::time::Duration::from_secs(1));
    c.daemon.restart().unwrap();
    let d = &c.daemon;
    let v = inspect(d, "orphan");
    assert_eq!(v["State"]["Status"], "exited");
    assert_eq!(v["State"]["ExitCode"], 255);
    // its processes do not outlive the lost shim
    assert!(eventually(10, || !std::path::Path::new(&format!(
        "/proc/{orphan_pid}"
    ))
    .exists()
        || std::fs::read_to_string(format!("/proc/{orphan_pid}/stat"))
            .map(|s| s.contains(") Z"))
            .unwrap_or(true)));
    // the always container came back with a new process
    assert!(eventually(20, || {
        let v = inspect(d, "keeper");
        v["State"]["Running"] == true && v["State"]["Pid"].as_u64() != Some(keeper_pid as u64)
    }));
    assert!(inspect(d, "keeper")["RestartCount"].as_u64().unwrap() >= 1);
    assert!(eventually(10, || inspect(d, "back")["State"]["Running"] == true));
    assert_eq!(inspect(d, "stays")["State"]["Running"], false);
}
