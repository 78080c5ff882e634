//! Unit tests of the Docker rules, against a fixed host description.

use std::collections::BTreeMap;
use std::path::Path;

use oci_spec::runtime::{LinuxNamespaceType, Mount, PosixRlimitType, Spec};

use super::*;

fn host() -> HostInfo {
    HostInfo {
        ncpu: 2,
        online_cpus: vec![0, 1],
        online_mems: vec![0],
        // like this sandbox: no CAP_SYS_RESOURCE in the bounding set
        capabilities: caps::ALL
            .iter()
            .filter(|c| **c != "CAP_SYS_RESOURCE")
            .map(|c| c.to_string())
            .collect(),
        hard_limits: vec![("nofile".to_string(), 20_000), ("nproc".to_string(), 4096)],
        swap_limit: true,
        blkio_weight: true,
        sysctls: strings(&["net.ipv4.ping_group_range"]),
    }
}

fn target() -> Target {
    Target {
        arch: "amd64",
        seccomp_arch: "SCMP_ARCH_X86_64",
        kernel: (6, 1),
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn base() -> SpecRequest {
    SpecRequest {
        id: "c0ffee".to_string(),
        hostname: "c0ffee".to_string(),
        cmd: Some(strings(&["sh"])),
        ..SpecRequest::default()
    }
}

fn rootfs() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("etc")).unwrap();
    std::fs::write(
        dir.path().join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\n# comment\nwww:x:33:33:www:/var/www:/bin/false\nbob:x:1000:1001::/home/bob:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("etc/group"),
        "root:x:0:\nwww:x:33:\nstaff:x:50:bob,alice\nbobs:x:1001:\nvideo:x:44:bob\n",
    )
    .unwrap();
    dir
}

fn build(req: &SpecRequest) -> Result<Spec, SpecError> {
    let root = rootfs();
    build_spec_with(req, root.path(), &host(), &target())
}

fn invalid_message(req: &SpecRequest) -> String {
    match validate_with(req, &host(), &target()) {
        Err(SpecError::InvalidArgument(m)) => m,
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

fn dests(mounts: &[Mount]) -> Vec<String> {
    mounts
        .iter()
        .map(|m| m.destination().to_string_lossy().into_owned())
        .collect()
}

fn mount_of<'a>(spec: &'a Spec, dest: &str) -> &'a Mount {
    spec.mounts()
        .as_ref()
        .unwrap()
        .iter()
        .find(|m| m.destination() == Path::new(dest))
        .unwrap_or_else(|| panic!("no mount at {dest}"))
}

fn options(m: &Mount) -> Vec<String> {
    m.options().clone().unwrap_or_default()
}

#[test]
fn args_follow_docker_entrypoint_and_cmd_rules() {
    let image = ImageRuntimeConfig {
        entrypoint: Some(strings(&["/entry", "-x"])),
        cmd: Some(strings(&["image-cmd"])),
        ..ImageRuntimeConfig::default()
    };
    type Case<'a> = (
        Option<&'a [&'a str]>,
        Option<&'a [&'a str]>,
        Result<&'a [&'a str], ()>,
    );
    let cases: &[Case] = &[
        // (request entrypoint, request cmd, expected argv)
        (None, None, Ok(&["/entry", "-x", "image-cmd"])),
        (None, Some(&["run"]), Ok(&["/entry", "-x", "run"])),
        (None, Some(&[]), Ok(&["/entry", "-x", "image-cmd"])),
        (Some(&["/other"]), None, Ok(&["/other"])),
        (Some(&["/other"]), Some(&["a"]), Ok(&["/other", "a"])),
        (Some(&[]), Some(&["echo", "hi"]), Ok(&["echo", "hi"])),
        (Some(&[""]), Some(&["echo", "hi"]), Ok(&["echo", "hi"])),
        (Some(&[]), None, Err(())),
        (Some(&[""]), None, Err(())),
    ];
    for (entrypoint, cmd, expected) in cases {
        let req = SpecRequest {
            image: image.clone(),
            entrypoint: entrypoint.map(strings),
            cmd: cmd.map(strings),
            ..SpecRequest::default()
        };
        let got = process_args::command(&req);
        match expected {
            Ok(argv) => assert_eq!(got.unwrap(), strings(argv), "{entrypoint:?} {cmd:?}"),
            Err(()) => {
                let err = got.unwrap_err();
                assert!(err.to_string().starts_with("no command specified"), "{err}");
                assert_eq!(err.kind(), skiff_api::ErrorKind::InvalidArgument);
            }
        }
    }
    // no entrypoint anywhere and no cmd
    let req = SpecRequest::default();
    assert!(process_args::command(&req).is_err());
}

#[test]
fn env_merges_image_and_request_with_defaults() {
    let req = SpecRequest {
        hostname: "web".to_string(),
        domainname: Some("example.org".to_string()),
        tty: true,
        image: ImageRuntimeConfig {
            env: Some(strings(&["PATH=/opt/bin", "A=image", "B=image"])),
            ..ImageRuntimeConfig::default()
        },
        env: strings(&["A=request", "C=new", "B"]),
        ..base()
    };
    assert_eq!(
        process_args::environment(&req),
        strings(&[
            "PATH=/opt/bin",
            "HOSTNAME=web",
            "TERM=xterm",
            "A=request",
            "C=new"
        ])
    );
    let plain = base();
    assert_eq!(
        process_args::environment(&plain),
        vec![
            format!("PATH={DEFAULT_PATH}"),
            "HOSTNAME=c0ffee".to_string()
        ]
    );
}

#[test]
fn user_lookup_resolves_names_ids_and_groups() {
    let root = rootfs();
    let r = |spec: &str, add: &[&str]| resolve_user(root.path(), spec, &strings(add));
    assert_eq!(r("", &[]).unwrap().uid, 0);
    let bob = r("bob", &[]).unwrap();
    assert_eq!((bob.uid, bob.gid), (1000, 1001));
    assert_eq!(bob.additional_gids, vec![50, 44]);
    assert_eq!(bob.home, "/home/bob");
    // numeric uid found in passwd takes its primary group
    assert_eq!(r("33", &[]).unwrap().gid, 33);
    // numeric uid not in passwd: gid 0
    let anon = r("4242", &[]).unwrap();
    assert_eq!((anon.uid, anon.gid), (4242, 0));
    // explicit group: no supplementary groups from membership
    let explicit = r("bob:video", &[]).unwrap();
    assert_eq!(
        (explicit.gid, explicit.additional_gids.clone()),
        (44, vec![])
    );
    assert_eq!(r("4242:4343", &[]).unwrap().gid, 4343);
    assert_eq!(
        r("www", &["staff", "777"]).unwrap().additional_gids,
        vec![50, 777]
    );
    assert_eq!(
        r("nobody", &[]).unwrap_err().to_string(),
        "unable to find user nobody: no matching entries in passwd file"
    );
    assert_eq!(
        r("bob:nogroup", &[]).unwrap_err().to_string(),
        "unable to find group nogroup: no matching entries in group file"
    );
    assert!(r("bob", &["ghosts"]).is_err());
}

#[test]
fn user_lookup_stays_inside_the_rootfs() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("etc")).unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("passwd"), "evil:x:0:0::/:/bin/sh\n").unwrap();
    // an absolute symlink to a host file resolves inside the rootfs, where it is missing
    std::os::unix::fs::symlink(
        outside.path().join("passwd"),
        root.path().join("etc/passwd"),
    )
    .unwrap();
    let err = resolve_user(root.path(), "evil", &[]).unwrap_err();
    assert!(err.to_string().contains("no matching entries"), "{err}");
}

#[test]
fn ensure_workdir_creates_owned_dirs_without_escaping() {
    let root = tempfile::tempdir().unwrap();
    ensure_workdir(root.path(), "/srv/app/data", 1000, 1001).unwrap();
    let md = std::fs::metadata(root.path().join("srv/app/data")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert!(md.is_dir());
    if nix::unistd::geteuid().is_root() {
        assert_eq!((md.uid(), md.gid()), (1000, 1001));
    }
    // an absolute symlink inside the image must resolve inside the rootfs
    let host_dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(host_dir.path(), root.path().join("link")).unwrap();
    ensure_workdir(root.path(), "/link/created", 0, 0).unwrap();
    assert!(!host_dir.path().join("created").exists());
    let inside = root
        .path()
        .join(host_dir.path().strip_prefix("/").unwrap())
        .join("created");
    assert!(inside.is_dir());
    // a file in the way is a clear 400
    std::fs::write(root.path().join("file"), b"x").unwrap();
    let err = ensure_workdir(root.path(), "/file/sub", 0, 0).unwrap_err();
    assert_eq!(err.kind(), skiff_api::ErrorKind::InvalidArgument, "{err}");
    assert!(ensure_workdir(root.path(), "/proc/self/fd/3", 0, 0).is_err());
}

#[test]
fn default_spec_matches_docker() {
    let mut req = base();
    req.image.user = Some("bob".to_string());
    let spec = build(&req).unwrap();
    let process = spec.process().as_ref().unwrap();
    assert_eq!(process.user().uid(), 1000);
    assert_eq!(process.cwd(), Path::new("/"));
    assert_eq!(process.args().as_ref().unwrap(), &strings(&["sh"]));
    let caps = process.capabilities().as_ref().unwrap();
    assert_eq!(caps.bounding().as_ref().unwrap().len(), 14);
    // a non-root user keeps the set only as bounding, like after execve
    assert!(caps.effective().as_ref().unwrap().is_empty());
    assert!(caps.permitted().as_ref().unwrap().is_empty());
    assert!(caps.inheritable().as_ref().unwrap().is_empty());
    let root_spec = build(&base()).unwrap();
    let root_caps = root_spec
        .process()
        .as_ref()
        .unwrap()
        .capabilities()
        .clone()
        .unwrap();
    assert_eq!(root_caps.effective().as_ref().unwrap().len(), 14);
    assert_eq!(root_caps.permitted(), root_caps.bounding());
    let linux = spec.linux().as_ref().unwrap();
    let ns: Vec<LinuxNamespaceType> = linux
        .namespaces()
        .as_ref()
        .unwrap()
        .iter()
        .map(|n| n.typ())
        .collect();
    assert_eq!(
        ns,
        vec![
            LinuxNamespaceType::Mount,
            LinuxNamespaceType::Network,
            LinuxNamespaceType::Uts,
            LinuxNamespaceType::Pid,
            LinuxNamespaceType::Ipc
        ]
    );
    assert_eq!(
        linux.cgroups_path().as_deref(),
        Some(Path::new("/skiff/c0ffee"))
    );
    assert!(linux
        .masked_paths()
        .as_ref()
        .unwrap()
        .contains(&"/proc/kcore".to_string()));
    assert!(linux
        .readonly_paths()
        .as_ref()
        .unwrap()
        .contains(&"/proc/sys".to_string()));
    assert!(linux.seccomp().is_some());
    let rules = linux
        .resources()
        .as_ref()
        .unwrap()
        .devices()
        .as_ref()
        .unwrap();
    assert!(!rules[0].allow());
    assert_eq!(spec.hostname().as_deref(), Some("c0ffee"));
    let rlimits = process.rlimits().as_ref().unwrap();
    let nofile = rlimits
        .iter()
        .find(|r| r.typ() == PosixRlimitType::RlimitNofile)
        .unwrap();
    // Docker's 1048576 clamped to the host's hard limit
    assert_eq!((nofile.soft(), nofile.hard()), (20_000, 20_000));
    // the JSON is what runc reads: spot-check field names
    let json = serde_json::to_value(&spec).unwrap();
    assert_eq!(json["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
    assert_eq!(
        json["process"]["user"]["additionalGids"],
        serde_json::json!([50, 44])
    );
}

#[test]
fn mounts_are_ordered_and_optioned_like_docker() {
    let src = tempfile::tempdir().unwrap();
    let src_path = src.path().to_string_lossy().into_owned();
    let mut req = base();
    req.binds = vec![
        format!("{src_path}:/data/deep/er:ro"),
        format!("{src_path}:/data:rshared"),
        "myvol:/var/lib/db".to_string(),
    ];
    req.volume_paths.insert(
        "myvol".to_string(),
        "/var/lib/skiff/volumes/myvol/_data".into(),
    );
    req.mounts = vec![MountRequest {
        kind: MountKind::Tmpfs,
        target: "/run".to_string(),
        tmpfs_size: Some(1 << 20),
        tmpfs_mode: Some(0o700),
        ..MountRequest::default()
    }];
    req.tmpfs
        .insert("/cache".to_string(), "exec,size=2m".to_string());
    req.shm_size = Some(128 << 20);
    req.etc_files = EtcFiles {
        hostname: "/run/skiff/c/hostname".into(),
        hosts: "/run/skiff/c/hosts".into(),
        resolv_conf: "/run/skiff/c/resolv.conf".into(),
    };
    let spec = build(&req).unwrap();
    let mounts = spec.mounts().as_ref().unwrap();
    let d = dests(mounts);
    // defaults first in Docker's order, then user mounts by depth (stable)
    assert_eq!(
        &d[..6],
        &strings(&[
            "/proc",
            "/dev",
            "/dev/pts",
            "/sys",
            "/sys/fs/cgroup",
            "/dev/mqueue"
        ])
    );
    let user = &d[6..];
    let depth = |s: &String| s.matches('/').count();
    assert!(
        user.windows(2).all(|w| depth(&w[0]) <= depth(&w[1])),
        "{user:?}"
    );
    assert!(
        user.iter().position(|x| x == "/data") < user.iter().position(|x| x == "/data/deep/er")
    );
    assert_eq!(
        options(mount_of(&spec, "/data/deep/er")),
        strings(&["rbind", "ro", "rprivate"])
    );
    assert_eq!(
        options(mount_of(&spec, "/data")),
        strings(&["rbind", "rshared"])
    );
    assert_eq!(
        mount_of(&spec, "/var/lib/db").source().as_deref(),
        Some(Path::new("/var/lib/skiff/volumes/myvol/_data"))
    );
    assert_eq!(
        options(mount_of(&spec, "/run")),
        strings(&[
            "noexec",
            "nosuid",
            "nodev",
            "rprivate",
            "size=1048576",
            "mode=700"
        ])
    );
    // "exec" overrides the default noexec
    assert_eq!(
        options(mount_of(&spec, "/cache")),
        strings(&["nosuid", "nodev", "rprivate", "exec", "size=2m"])
    );
    assert!(options(mount_of(&spec, "/dev/shm")).contains(&format!("size={}", 128 << 20)));
    assert_eq!(mount_of(&spec, "/etc/hosts").typ().as_deref(), Some("bind"));
    assert_eq!(
        spec.linux()
            .as_ref()
            .unwrap()
            .rootfs_propagation()
            .as_deref(),
        Some("rshared")
    );
}

#[test]
fn read_only_and_privileged_tweak_default_mounts() {
    let mut req = base();
    req.readonly_rootfs = true;
    req.etc_files.hosts = "/run/hosts".into();
    let spec = build(&req).unwrap();
    assert_eq!(spec.root().as_ref().unwrap().readonly(), Some(true));
    assert!(options(mount_of(&spec, "/etc/hosts")).contains(&"ro".to_string()));
    assert!(!options(mount_of(&spec, "/dev")).contains(&"ro".to_string()));
    assert!(options(mount_of(&spec, "/sys")).contains(&"ro".to_string()));

    let mut req = base();
    req.privileged = true;
    let spec = build(&req).unwrap();
    let sys = options(mount_of(&spec, "/sys"));
    assert!(sys.contains(&"rw".to_string()) && !sys.contains(&"ro".to_string()));
    let linux = spec.linux().as_ref().unwrap();
    assert!(linux.seccomp().is_none());
    assert!(linux.masked_paths().as_ref().unwrap().is_empty());
    let rules = linux
        .resources()
        .as_ref()
        .unwrap()
        .devices()
        .as_ref()
        .unwrap();
    assert!(rules.len() == 1 && rules[0].allow());
    let caps = spec
        .process()
        .as_ref()
        .unwrap()
        .capabilities()
        .as_ref()
        .unwrap();
    assert_eq!(
        caps.bounding().as_ref().unwrap().len(),
        host().capabilities.len()
    );

    // a user mount on /dev/shm replaces the default one
    let mut req = base();
    req.tmpfs.insert("/dev/shm".to_string(), String::new());
    let spec = build(&req).unwrap();
    let shm: Vec<_> = spec
        .mounts()
        .as_ref()
        .unwrap()
        .iter()
        .filter(|m| m.destination() == Path::new("/dev/shm"))
        .collect();
    assert_eq!(shm.len(), 1);
    assert_eq!(shm[0].source().as_deref(), Some(Path::new("tmpfs")));
}

#[test]
fn capabilities_add_and_drop() {
    let h = host();
    let caps = |add: &[&str], drop: &[&str]| {
        caps::capabilities(&strings(add), &strings(drop), false, &h.capabilities)
    };
    assert_eq!(caps(&[], &[]).unwrap(), strings(caps::DEFAULT));
    let c = caps(&["net_admin", "CAP_SYS_PTRACE"], &["chown", "CAP_KILL"]).unwrap();
    assert!(c.contains(&"CAP_NET_ADMIN".to_string()) && c.contains(&"CAP_SYS_PTRACE".to_string()));
    assert!(!c.contains(&"CAP_CHOWN".to_string()) && !c.contains(&"CAP_KILL".to_string()));
    assert_eq!(c.len(), 14);
    assert_eq!(
        caps(&["NET_ADMIN"], &["ALL"]).unwrap(),
        strings(&["CAP_NET_ADMIN"])
    );
    let all_but = caps(&["all"], &["MKNOD"]).unwrap();
    assert_eq!(all_but.len(), h.capabilities.len() - 1);
    assert!(!all_but.contains(&"CAP_MKNOD".to_string()));
    assert_eq!(
        caps(&["FOO"], &[]).unwrap_err().to_string(),
        "unknown capability: \"CAP_FOO\""
    );
    // known to the kernel but not available here
    assert!(caps(&["SYS_RESOURCE"], &[])
        .unwrap_err()
        .to_string()
        .contains("not available"));
    // every name converts to oci-spec's enum
    super::to_capabilities(&strings(caps::ALL)).unwrap();
}

#[test]
fn resources_map_to_linux_resources() {
    let mut req = base();
    req.resources = Resources {
        memory: 64 << 20,
        memory_reservation: 32 << 20,
        nano_cpus: 1_500_000_000,
        cpu_shares: 512,
        cpuset_cpus: "0-1".to_string(),
        pids_limit: Some(100),
        blkio_weight: 300,
        ..Resources::default()
    };
    req.oom_score_adj = Some(-500);
    let spec = build(&req).unwrap();
    let r = spec.linux().as_ref().unwrap().resources().as_ref().unwrap();
    let mem = r.memory().as_ref().unwrap();
    assert_eq!(mem.limit(), Some(64 << 20));
    assert_eq!(mem.swap(), Some(128 << 20));
    assert_eq!(mem.reservation(), Some(32 << 20));
    let cpu = r.cpu().as_ref().unwrap();
    assert_eq!((cpu.quota(), cpu.period()), (Some(150_000), Some(100_000)));
    assert_eq!(cpu.shares(), Some(512));
    assert_eq!(cpu.cpus().as_deref(), Some("0-1"));
    assert_eq!(r.pids().as_ref().unwrap().limit(), 100);
    assert_eq!(r.block_io().as_ref().unwrap().weight(), Some(300));
    assert_eq!(spec.process().as_ref().unwrap().oom_score_adj(), Some(-500));

    req.resources = Resources {
        memory: 64 << 20,
        memory_swap: -1,
        cpu_quota: 50_000,
        cpu_period: 100_000,
        pids_limit: Some(-1),
        ..Resources::default()
    };
    let spec = build(&req).unwrap();
    let r = spec.linux().as_ref().unwrap().resources().as_ref().unwrap();
    assert_eq!(r.memory().as_ref().unwrap().swap(), Some(-1));
    assert_eq!(r.cpu().as_ref().unwrap().quota(), Some(50_000));
    assert!(r.pids().is_none());
}

#[test]
fn ulimits_are_clamped_to_the_host() {
    let limits = rlimits::rlimits(
        &[
            Ulimit {
                name: "nofile".to_string(),
                soft: 1024,
                hard: 1_048_576,
            },
            Ulimit {
                name: "nproc".to_string(),
                soft: -1,
                hard: -1,
            },
            Ulimit {
                name: "core".to_string(),
                soft: 0,
                hard: 0,
            },
        ],
        &host().hard_limits,
    );
    let get = |t| {
        let l = limits.iter().find(|l| l.typ() == t).unwrap();
        (l.soft(), l.hard())
    };
    assert_eq!(get(PosixRlimitType::RlimitNofile), (1024, 20_000));
    assert_eq!(get(PosixRlimitType::RlimitNproc), (4096, 4096));
    assert_eq!(get(PosixRlimitType::RlimitCore), (0, 0));
    assert_eq!(limits.len(), 3);
}

#[test]
fn validate_reports_docker_messages() {
    type Tweak = Box<dyn Fn(&mut SpecRequest)>;
    let cases: Vec<(Tweak, &str)> = vec![
        (Box::new(|r| r.resources.memory = 1 << 20), "Minimum memory limit allowed is 6MB"),
        (
            Box::new(|r| {
                r.resources.memory = 64 << 20;
                r.resources.memory_swap = 32 << 20;
            }),
            "Minimum memoryswap limit should be larger than memory limit, see usage",
        ),
        (
            Box::new(|r| r.resources.memory_swap = 64 << 20),
            "You should always set the Memory limit when using Memoryswap limit, see usage",
        ),
        (Box::new(|r| r.resources.memory = -5), "invalid memory limit -5: must not be negative"),
        (
            Box::new(|r| r.resources.nano_cpus = 3_000_000_000),
            "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available",
        ),
        (
            Box::new(|r| r.resources.cpuset_cpus = "0-5".to_string()),
            "Requested CPUs are not available - requested 0-5, available: 0-1",
        ),
        (
            Box::new(|r| r.resources.blkio_weight = 5),
            "Range of blkio weight is from 10 to 1000",
        ),
        (Box::new(|r| r.cap_add = strings(&["BOGUS"])), "unknown capability: \"CAP_BOGUS\""),
        (
            Box::new(|r| r.security_opt = strings(&["bogus=1"])),
            "invalid --security-opt 2: \"bogus=1\"",
        ),
        (
            Box::new(|r| r.security_opt = strings(&["nonsense"])),
            "invalid --security-opt 1: \"nonsense\"",
        ),
        (
            Box::new(|r| {
                r.sysctls.insert("kernel.pid_max".to_string(), "1".to_string());
            }),
            "sysctl \"kernel.pid_max\" is not namespaced",
        ),
        (
            Box::new(|r| {
                r.network_mode = "host".to_string();
                r.sysctls.insert("net.ipv4.ip_forward".to_string(), "1".to_string());
            }),
            "sysctl \"net.ipv4.ip_forward\" is not allowed in host network mode",
        ),
        (
            Box::new(|r| {
                r.ulimits = vec![Ulimit {
                    name: "nofile".to_string(),
                    soft: 10,
                    hard: 5,
                }]
            }),
            "ulimit soft limit must be less than or equal to hard limit: 10 > 5",
        ),
        (
            Box::new(|r| {
                r.ulimits = vec![Ulimit {
                    name: "bogus".to_string(),
                    soft: 1,
                    hard: 1,
                }]
            }),
            "invalid ulimit type: \"bogus\"",
        ),
        (
            Box::new(|r| r.working_dir = Some("rel/dir".to_string())),
            "the working directory 'rel/dir' is invalid, it needs to be an absolute path",
        ),
        (
            Box::new(|r| r.image.working_dir = Some("/proc/self/fd/7".to_string())),
            "the working directory '/proc/self/fd/7' is invalid, it must not be under /proc/<pid>/fd",
        ),
        (
            Box::new(|r| {
                r.image.volumes = Some(BTreeMap::from([(
                    "/data/../../etc".to_string(),
                    serde_json::json!({}),
                )]))
            }),
            "the image volume '/data/../../etc' is invalid, it must not contain '..'",
        ),
        (
            Box::new(|r| r.binds = strings(&["/tmp:relative"])),
            "invalid mount config for type \"bind\": invalid mount path: 'relative' mount path must be absolute",
        ),
        (
            Box::new(|r| r.binds = strings(&["/tmp:/"])),
            "invalid mount config for type \"bind\": invalid specification: destination can't be '/'",
        ),
        (
            Box::new(|r| r.binds = strings(&["/tmp:/a/../b"])),
            "invalid mount config for type \"bind\": invalid mount path: '/a/../b' must not contain '..'",
        ),
        (
            Box::new(|r| r.binds = strings(&["/tmp:/x:bogus"])),
            "invalid mode: bogus",
        ),
        (
            Box::new(|r| r.binds = strings(&["/tmp"])),
            "invalid volume specification: '/tmp'",
        ),
        (
            Box::new(|r| {
                r.mounts = vec![MountRequest {
                    kind: MountKind::Bind,
                    source: "/nonexistent/skiff-spec-test".to_string(),
                    target: "/x".to_string(),
                    ..MountRequest::default()
                }]
            }),
            "invalid mount config for type \"bind\": bind source path does not exist: /nonexistent/skiff-spec-test",
        ),
        (
            Box::new(|r| r.binds = strings(&["/tmp:/x", "/var:/x/"])),
            "Duplicate mount point: /x",
        ),
        (
            Box::new(|r| r.oom_score_adj = Some(2000)),
            "Invalid value 2000, range for oom score adj is [-1000, 1000]",
        ),
        (
            Box::new(|r| r.stop_signal = Some("SIGBOGUS".to_string())),
            "invalid signal: \"SIGBOGUS\"",
        ),
        (Box::new(|r| r.pid_mode = "weird".to_string()), "invalid PID mode: \"weird\""),
        (
            Box::new(|r| r.security_opt = strings(&["seccomp=/path/to/file.json"])),
            "invalid seccomp profile",
        ),
        (
            Box::new(|r| r.security_opt = strings(&["seccomp={\"defaultAction\": 5}"])),
            "invalid seccomp profile",
        ),
        (
            Box::new(|r| {
                r.devices = vec![DeviceRequest {
                    path_on_host: "/dev/null".to_string(),
                    path_in_container: "/dev/n".to_string(),
                    cgroup_permissions: "rwx".to_string(),
                }]
            }),
            "invalid device specification: /dev/null:/dev/n:rwx",
        ),
        (Box::new(|r| r.cmd = None), "no command specified"),
        (
            Box::new(|r| r.env = strings(&["=oops"])),
            "invalid environment variable: \"=oops\"",
        ),
        (
            Box::new(|r| r.cmd = Some(strings(&["echo", "a\0b"]))),
            "invalid command: arguments must not contain NUL bytes",
        ),
    ];
    for (tweak, expected) in cases {
        let mut req = base();
        tweak(&mut req);
        let message = invalid_message(&req);
        assert!(
            message.starts_with(expected),
            "expected {expected:?}, got {message:?}"
        );
    }
    validate_with(&base(), &host(), &target()).unwrap();
}

#[test]
fn signals_parse_like_docker() {
    assert_eq!(parse_signal("SIGTERM").unwrap(), 15);
    assert_eq!(parse_signal("term").unwrap(), 15);
    assert_eq!(parse_signal("9").unwrap(), 9);
    assert_eq!(parse_signal("SIGRTMIN+3").unwrap(), 37);
    assert_eq!(parse_signal("RTMAX-1").unwrap(), 63);
    assert_eq!(parse_signal("SIGWINCH").unwrap(), libc::SIGWINCH);
    assert!(parse_signal("0").is_err());
    assert!(parse_signal("65").is_err());
    assert!(parse_signal("SIGRTMAX+1").is_err());
    assert!(parse_signal("SIGRTMIN+2147483647").is_err());
    assert!(parse_signal("RTMIN-2147483647").is_err());
    assert!(parse_signal("").is_err());
    let mut req = base();
    assert_eq!(stop_signal(&req).unwrap(), 15);
    req.image.stop_signal = Some("SIGQUIT".to_string());
    assert_eq!(stop_signal(&req).unwrap(), libc::SIGQUIT);
    req.stop_signal = Some("SIGINT".to_string());
    assert_eq!(stop_signal(&req).unwrap(), libc::SIGINT);
}

#[test]
fn seccomp_rules_follow_capabilities() {
    let t = target();
    let names = |s: &oci_spec::runtime::LinuxSeccomp| -> Vec<(String, Option<u32>, bool)> {
        s.syscalls()
            .iter()
            .flatten()
            .flat_map(|r| {
                r.names()
                    .iter()
                    .map(|n| (n.clone(), r.errno_ret(), r.args().is_some()))
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let default = seccomp::default_profile(&strings(caps::DEFAULT), &t).unwrap();
    let arches = serde_json::to_value(default.architectures()).unwrap();
    assert_eq!(
        arches,
        serde_json::json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
    );
    let n = names(&default);
    assert!(n.iter().any(|(s, _, _)| s == "read"));
    assert!(n.iter().any(|(s, _, _)| s == "arch_prctl"));
    assert!(!n.iter().any(|(s, _, _)| s == "mount"));
    assert!(!n.iter().any(|(s, _, _)| s == "s390_runtime_instr"));
    // clone only with namespace flags masked out, clone3 answers ENOSYS so libc falls back
    assert!(n.iter().any(|(s, _, args)| s == "clone" && *args));
    assert!(n
        .iter()
        .any(|(s, errno, _)| s == "clone3" && *errno == Some(38)));
    // chroot comes with CAP_SYS_CHROOT (a default cap)
    assert!(n.iter().any(|(s, _, _)| s == "chroot"));

    let mut admin = strings(caps::DEFAULT);
    admin.push("CAP_SYS_ADMIN".to_string());
    let n = names(&seccomp::default_profile(&admin, &t).unwrap());
    assert!(n.iter().any(|(s, _, _)| s == "mount"));
    assert!(n.iter().any(|(s, _, args)| s == "clone" && !*args));
    assert!(!n
        .iter()
        .any(|(s, errno, _)| s == "clone3" && errno.is_some()));

    // kernel too old for the 4.8 rule
    let old = Target {
        kernel: (4, 4),
        ..target()
    };
    let n = names(&seccomp::default_profile(&strings(caps::DEFAULT), &old).unwrap());
    assert!(!n.iter().any(|(s, _, _)| s == "ptrace"));

    let mut req = base();
    req.security_opt = strings(&["no-new-privileges"]);
    let spec = build(&req).unwrap();
    assert_eq!(
        spec.process().as_ref().unwrap().no_new_privileges(),
        Some(true)
    );
    req.security_opt = strings(&[
        "seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"chmod\"],\"action\":\"SCMP_ACT_ERRNO\"}]}",
    ]);
    let spec = build(&req).unwrap();
    let custom = spec.linux().as_ref().unwrap().seccomp().as_ref().unwrap();
    assert_eq!(names(custom), vec![("chmod".to_string(), None, false)]);
}

#[test]
fn namespaces_follow_modes() {
    let ns_types = |spec: &Spec| -> Vec<LinuxNamespaceType> {
        spec.linux()
            .as_ref()
            .unwrap()
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .map(|n| n.typ())
            .collect()
    };
    let mut req = base();
    req.network_mode = "host".to_string();
    req.uts_mode = "host".to_string();
    req.ipc_mode = "host".to_string();
    let spec = build(&req).unwrap();
    assert_eq!(
        ns_types(&spec),
        vec![LinuxNamespaceType::Mount, LinuxNamespaceType::Pid]
    );
    assert!(spec.hostname().is_none());
    assert_eq!(mount_of(&spec, "/dev/shm").typ().as_deref(), Some("bind"));

    for mode in ["none", "bridge", "default", "mynet", ""] {
        let mut req = base();
        req.network_mode = mode.to_string();
        assert!(ns_types(&build(&req).unwrap()).contains(&LinuxNamespaceType::Network));
    }

    let mut req = base();
    req.ipc_mode = "container:db".to_string();
    assert_eq!(
        build(&req).unwrap_err().kind(),
        skiff_api::ErrorKind::Internal
    );
    req.namespace_paths.ipc = Some("/proc/42/ns/ipc".into());
    let spec = build(&req).unwrap();
    let ipc = spec
        .linux()
        .as_ref()
        .unwrap()
        .namespaces()
        .as_ref()
        .unwrap()
        .iter()
        .find(|n| n.typ() == LinuxNamespaceType::Ipc)
        .unwrap()
        .clone();
    assert_eq!(ipc.path().as_deref(), Some(Path::new("/proc/42/ns/ipc")));
}

#[test]
fn init_wraps_the_command_and_mounts_the_binary() {
    let mut req = base();
    req.init = true;
    req.init_path = Some("/run/skiff/docker-init".into());
    let spec = build(&req).unwrap();
    assert_eq!(
        spec.process().as_ref().unwrap().args().as_ref().unwrap(),
        &strings(&["/sbin/docker-init", "--", "sh"])
    );
    let m = mount_of(&spec, "/sbin/docker-init");
    assert_eq!(
        m.source().as_deref(),
        Some(Path::new("/run/skiff/docker-init"))
    );
    assert!(options(m).contains(&"ro".to_string()));
}

#[test]
fn devices_are_added_with_cgroup_rules() {
    let mut req = base();
    req.devices = vec![DeviceRequest {
        path_on_host: "/dev/null".to_string(),
        path_in_container: "/dev/mynull".to_string(),
        cgroup_permissions: "rw".to_string(),
    }];
    let spec = build(&req).unwrap();
    let linux = spec.linux().as_ref().unwrap();
    let dev = &linux.devices().as_ref().unwrap()[0];
    assert_eq!(dev.path(), Path::new("/dev/mynull"));
    assert_eq!((dev.major(), dev.minor()), (1, 3));
    let rules = linux
        .resources()
        .as_ref()
        .unwrap()
        .devices()
        .as_ref()
        .unwrap();
    let last = rules.last().unwrap();
    assert!(last.allow());
    assert_eq!(
        (last.major(), last.minor(), last.access().as_deref()),
        (Some(1), Some(3), Some("rw"))
    );

    req.devices[0].path_on_host = "/dev/skiff-no-such-device".to_string();
    let err = build(&req).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("error gathering device information"),
        "{err}"
    );
}

#[test]
fn image_config_parses_and_lists_uncovered_volumes() {
    let json = br#"{"architecture":"amd64","config":{"Env":["A=1"],"Cmd":null,"Entrypoint":["/e"],
        "WorkingDir":"/w","User":"bob","StopSignal":"SIGQUIT","Volumes":{"/data":{},"/logs":{}}}}"#;
    let image = ImageRuntimeConfig::from_image_config(json).unwrap();
    assert_eq!(image.entrypoint, Some(strings(&["/e"])));
    assert_eq!(image.cmd, None);
    assert_eq!(image.working_dir.as_deref(), Some("/w"));
    let mut req = base();
    req.image = image;
    req.binds = strings(&["/tmp:/logs"]);
    assert_eq!(uncovered_image_volumes(&req), strings(&["/data"]));
    assert!(ImageRuntimeConfig::from_image_config(b"not json").is_err());
    assert_eq!(
        ImageRuntimeConfig::from_image_config(b"{}").unwrap(),
        ImageRuntimeConfig::default()
    );
}

#[test]
fn exec_process_inherits_the_container_settings() {
    let root = rootfs();
    let mut req = base();
    req.env = strings(&["A=1", "B=2"]);
    req.working_dir = Some("/srv".to_string());
    let spec = build_spec_with(&req, root.path(), &host(), &target()).unwrap();
    let exec = ExecRequest {
        cmd: strings(&["ls", "-l"]),
        env: strings(&["B=3"]),
        user: Some("bob:video".to_string()),
        tty: true,
        ..ExecRequest::default()
    };
    let p = exec_process(&spec, root.path(), &exec).unwrap();
    assert_eq!(p.args().as_ref().unwrap(), &strings(&["ls", "-l"]));
    let env = p.env().as_ref().unwrap();
    assert!(env.contains(&"A=1".to_string()) && env.contains(&"B=3".to_string()));
    assert!(env.contains(&"TERM=xterm".to_string()));
    assert_eq!(p.cwd(), Path::new("/srv"));
    assert_eq!((p.user().uid(), p.user().gid()), (1000, 44));
    assert_eq!(p.terminal(), Some(true));
    assert_eq!(
        p.capabilities()
            .as_ref()
            .unwrap()
            .bounding()
            .as_ref()
            .unwrap()
            .len(),
        14
    );
    let err = exec_process(&spec, root.path(), &ExecRequest::default()).unwrap_err();
    assert_eq!(err.kind(), skiff_api::ErrorKind::InvalidArgument);
}

#[test]
fn docker_details_of_ipc_none_pid_host_volumes_and_sysctls() {
    let mut req = base();
    req.ipc_mode = "none".to_string();
    req.pid_mode = "host".to_string();
    req.init = true;
    req.init_path = Some("/run/skiff/docker-init".into());
    req.binds = strings(&["data:/data:ro"]);
    req.volume_paths
        .insert("data".to_string(), "/vol/data".into());
    req.sysctls
        .insert("net.ipv4.ping_group_range".to_string(), "1 1".to_string());
    let spec = build(&req).unwrap();
    let d = dests(spec.mounts().as_ref().unwrap());
    assert!(!d.contains(&"/dev/shm".to_string()), "{d:?}");
    // init only in a private pid namespace
    assert!(!d.contains(&"/sbin/docker-init".to_string()));
    assert_eq!(
        spec.process().as_ref().unwrap().args().as_ref().unwrap(),
        &strings(&["sh"])
    );
    assert_eq!(options(mount_of(&spec, "/data")), strings(&["rbind", "ro"]));
    let sysctl = spec.linux().as_ref().unwrap().sysctl().clone().unwrap();
    // the request overrides Docker's default; the default the host lacks is not added
    assert_eq!(
        sysctl.get("net.ipv4.ping_group_range").map(String::as_str),
        Some("1 1")
    );
    assert!(!sysctl.contains_key("net.ipv4.ip_unprivileged_port_start"));

    let spec = build(&base()).unwrap();
    let sysctl = spec.linux().as_ref().unwrap().sysctl().clone().unwrap();
    assert_eq!(
        sysctl.get("net.ipv4.ping_group_range").map(String::as_str),
        Some("0 2147483647")
    );
    let mut host_net = base();
    host_net.network_mode = "host".to_string();
    let spec = build(&host_net).unwrap();
    assert!(spec.linux().as_ref().unwrap().sysctl().is_none());
}

#[test]
fn default_seccomp_blocks_io_uring_like_current_docker() {
    let profile = seccomp::default_profile(&strings(caps::DEFAULT), &target()).unwrap();
    let allowed: Vec<&String> = profile
        .syscalls()
        .iter()
        .flatten()
        .flat_map(|r| r.names())
        .collect();
    assert!(!allowed.iter().any(|n| n.starts_with("io_uring")));
    assert!(allowed.iter().any(|n| *n == "io_submit"));
}

#[test]
fn spec_round_trips_through_config_json() {
    let mut req = base();
    req.privileged = false;
    req.tmpfs.insert("/run".to_string(), "size=1m".to_string());
    req.resources.memory = 64 << 20;
    let spec = build(&req).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    spec.save(&path).unwrap();
    assert_eq!(Spec::load(&path).unwrap(), spec);
}
