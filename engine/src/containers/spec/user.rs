//! Resolves Config.User ("", "uid", "uid:gid", "name", "name:group") against the image's
//! /etc/passwd and /etc/group, with the rules of runc's user lookup that Docker uses.

use std::path::Path;

use super::beneath;
use super::error::SpecError;

const ETC_LIMIT: u64 = 16 << 20;

/// The resolved process identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub home: String,
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            Some(PasswdEntry {
                name: f.first()?.to_string(),
                uid: f.get(2)?.trim().parse().ok()?,
                gid: f.get(3)?.trim().parse().ok()?,
                home: f.get(5).unwrap_or(&"").to_string(),
            })
        })
        .collect()
}

fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            Some(GroupEntry {
                name: f.first()?.to_string(),
                gid: f.get(2)?.trim().parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

fn numeric(s: &str) -> Option<u32> {
    if s.chars().all(|c| c.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

/// Resolves `spec` and `group_add` against the files of `rootfs`.
pub fn resolve_user(
    rootfs: &Path,
    spec: &str,
    group_add: &[String],
) -> Result<ResolvedUser, SpecError> {
    let passwd = beneath::read_file(rootfs, "/etc/passwd", ETC_LIMIT)?.unwrap_or_default();
    let group = beneath::read_file(rootfs, "/etc/group", ETC_LIMIT)?.unwrap_or_default();
    resolve_user_in(&passwd, &group, spec, group_add)
}

/// The lookup on file contents (separate for tests).
pub(crate) fn resolve_user_in(
    passwd: &str,
    group: &str,
    spec: &str,
    group_add: &[String],
) -> Result<ResolvedUser, SpecError> {
    let users = parse_passwd(passwd);
    let groups = parse_group(group);
    let (user_arg, group_arg) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let mut resolved = ResolvedUser {
        uid: 0,
        gid: 0,
        additional_gids: Vec::new(),
        home: "/".to_string(),
    };
    let found = if user_arg.is_empty() {
        users.iter().find(|u| u.uid == 0)
    } else {
        users
            .iter()
            .find(|u| u.name == user_arg || numeric(user_arg) == Some(u.uid))
    };
    let matched_name = match found {
        Some(entry) => {
            resolved.uid = entry.uid;
            resolved.gid = entry.gid;
            if !entry.home.is_empty() {
                resolved.home = entry.home.clone();
            }
            Some(entry.name.as_str())
        }
        None if user_arg.is_empty() => None,
        None => match numeric(user_arg) {
            Some(uid) => {
                resolved.uid = uid;
                None
            }
            None => {
                return Err(SpecError::invalid(format!(
                    "unable to find user {user_arg}: no matching entries in passwd file"
                )))
            }
        },
    };
    match group_arg.filter(|g| !g.is_empty()) {
        Some(group_arg) => {
            resolved.gid = lookup_group(&groups, group_arg)?;
        }
        None => {
            // supplementary groups from membership, only when no group was named
            if let Some(name) = matched_name {
                for g in groups
                    .iter()
                    .filter(|g| g.members.iter().any(|m| m == name))
                {
                    if !resolved.additional_gids.contains(&g.gid) {
                        resolved.additional_gids.push(g.gid);
                    }
                }
            }
        }
    }
    for extra in group_add {
        let gid = lookup_group(&groups, extra)?;
        if !resolved.additional_gids.contains(&gid) {
            resolved.additional_gids.push(gid);
        }
    }
    Ok(resolved)
}

fn lookup_group(groups: &[GroupEntry], arg: &str) -> Result<u32, SpecError> {
    if let Some(g) = groups
        .iter()
        .find(|g| g.name == arg || numeric(arg) == Some(g.gid))
    {
        return Ok(g.gid);
    }
    numeric(arg).ok_or_else(|| {
        SpecError::invalid(format!(
            "unable to find group {arg}: no matching entries in group file"
        ))
    })
}
