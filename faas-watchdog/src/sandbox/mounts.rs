//! A function's file system view, as a list of mount operations computed
//! beforehand ([`Plan::build`]) and run later ([`Plan::run`]) inside a new
//! mount namespace: on a dedicated thread (root) or in the child between
//! `fork` and `exec` (rootless), where only async-signal-safe calls are
//! allowed. [`Plan::run`] therefore never allocates: every path is a
//! `CString` made by the builder, and every step is one system call through
//! nix's wrappers, which take `&CStr` without copying.
//!
//! The order is bubblewrap's: make `/` a slave mount, put a tmpfs on
//! `/tmp`, pivot into it with the host's root at `/oldroot`, build the new
//! root at `/newroot` from bind mounts of the host's top-level entries,
//! read-only remounts last (as crun does, once every mount point exists),
//! then detach `/oldroot` and pivot into `/newroot`.

use std::ffi::{CStr, CString, OsStr};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;
use nix::sys::statvfs::{statvfs, FsFlags};
use nix::unistd::{chdir, close, mkdir, pivot_root, symlinkat};

/// Where a function's own secrets appear, read-only, as in OpenFaaS.
pub const SECRETS_MOUNT: &str = "/var/openfaas/secrets";

/// Top-level entries never made read-only: kernel file systems, whose
/// mounts keep their own flags as in a container.
const KERNEL_DIRS: [&str; 3] = ["proc", "sys", "dev"];

/// What the function sees.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct View {
    /// Bound read-only at [`SECRETS_MOUNT`].
    pub secrets: Option<PathBuf>,
    /// `/` read-only, with a private writable tmpfs on `/tmp`.
    pub read_only_root: bool,
    /// Directories replaced by an empty tmpfs (the provider's state dir).
    pub hidden: Vec<PathBuf>,
    /// Directories inside hidden ones shown again at their own path (the
    /// function's working dir).
    pub exposed: Vec<PathBuf>,
}

/// One step of a [`Plan`].
#[derive(Debug)]
enum Op {
    /// `mount --make-rslave /`: nothing done here reaches the host.
    Slave,
    Tmpfs {
        target: CString,
        data: CString,
    },
    /// `mkdir`; an existing directory is fine.
    Mkdir(CString),
    Bind {
        source: CString,
        target: CString,
        recursive: bool,
    },
    Symlink {
        content: CString,
        path: CString,
    },
    /// An empty file to bind a file onto.
    Touch(CString),
    RemountReadOnly(CString),
    Private(CString),
    Detach(CString),
    Chdir(CString),
    PivotRoot {
        new_root: CString,
        put_old: CString,
    },
}

/// The steps that build a function's view, ready to run without allocating.
#[derive(Debug)]
pub struct Plan {
    ops: Vec<Op>,
}

/// Why a plan could not run: the step and the system's error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failed {
    /// The index of the failed step.
    pub step: usize,
    /// The error.
    pub errno: Errno,
}

fn c(path: impl AsRef<OsStr>) -> CString {
    // Paths from the file system cannot hold NUL bytes; a configured one
    // that does is cut there (and then fails to resolve, reported as such).
    let bytes = path.as_ref().as_bytes();
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    CString::new(&bytes[..end]).unwrap_or_default()
}

/// `/newroot` + an absolute host path.
fn under(root: &str, path: &Path) -> PathBuf {
    let mut out = PathBuf::from(root);
    for part in path.components() {
        if let Component::Normal(p) = part {
            out.push(p);
        }
    }
    out
}

impl Plan {
    /// Plans `view` from the host's file system as it is now.
    pub fn build(view: &View) -> Plan {
        let mut b = Builder { ops: Vec::new(), read_only: Vec::new() };
        b.ops.push(Op::Slave);
        b.ops.push(Op::Tmpfs { target: c("/tmp"), data: c("mode=0755") });
        b.ops.push(Op::Mkdir(c("/tmp/newroot")));
        b.ops.push(Op::Bind { source: c("/tmp/newroot"), target: c("/tmp/newroot"), recursive: true });
        b.ops.push(Op::Mkdir(c("/tmp/oldroot")));
        b.ops.push(Op::PivotRoot { new_root: c("/tmp"), put_old: c("/tmp/oldroot") });
        b.ops.push(Op::Chdir(c("/")));
        // Now "/" is the tmpfs, the host's root is /oldroot.
        let secrets_path: Vec<PathBuf> = if view.secrets.is_some() {
            Path::new(SECRETS_MOUNT)
                .components()
                .filter_map(|p| match p {
                    Component::Normal(p) => Some(PathBuf::from(p)),
                    _ => None,
                })
                .collect()
        } else {
            Vec::new()
        };
        b.populate(Path::new("/"), &secrets_path, view.read_only_root, true);
        if let Some(secrets) = &view.secrets {
            let target = under("/newroot", Path::new(SECRETS_MOUNT));
            b.ops.push(Op::Bind { source: c(under("/oldroot", secrets)), target: c(&target), recursive: false });
            b.ops.push(Op::RemountReadOnly(c(&target)));
        }
        for hidden in &view.hidden {
            let target = under("/newroot", hidden);
            b.mkdirs(&target);
            b.ops.push(Op::Tmpfs { target: c(&target), data: c("mode=0755") });
            if view.read_only_root {
                b.read_only.push(target);
            }
            for exposed in view.exposed.iter().filter(|e| e.starts_with(hidden)) {
                let target = under("/newroot", exposed);
                b.mkdirs(&target);
                b.ops.push(Op::Bind { source: c(under("/oldroot", exposed)), target: c(&target), recursive: true });
                if view.read_only_root {
                    b.read_only.push(target);
                }
            }
        }
        if view.read_only_root {
            b.read_only.push(PathBuf::from("/newroot"));
        }
        let read_only = std::mem::take(&mut b.read_only);
        b.ops.extend(read_only.iter().map(|p| Op::RemountReadOnly(c(p))));
        b.ops.push(Op::Private(c("/oldroot")));
        b.ops.push(Op::Detach(c("/oldroot")));
        b.ops.push(Op::Chdir(c("/newroot")));
        b.ops.push(Op::PivotRoot { new_root: c("."), put_old: c(".") });
        b.ops.push(Op::Detach(c(".")));
        b.ops.push(Op::Chdir(c("/")));
        Plan { ops: b.ops }
    }

    /// Runs every step, in the calling thread's mount namespace (which
    /// must be a new one). Allocates nothing: safe to call between `fork`
    /// and `exec`.
    pub fn run(&self) -> Result<(), Failed> {
        for (step, op) in self.ops.iter().enumerate() {
            run_op(op).map_err(|errno| Failed { step, errno })?;
        }
        Ok(())
    }

    /// A step in words, for error messages (called in the parent only).
    pub fn describe(&self, step: usize) -> String {
        match self.ops.get(step) {
            Some(op) => describe(op),
            None => format!("step {step}"),
        }
    }
}

fn describe(op: &Op) -> String {
    let s = |c: &CString| c.to_string_lossy().into_owned();
    match op {
        Op::Slave => "making / a slave mount".into(),
        Op::Tmpfs { target, .. } => format!("mounting a tmpfs on {}", s(target)),
        Op::Mkdir(path) => format!("creating {}", s(path)),
        Op::Bind { source, target, .. } => format!("binding {} on {}", s(source), s(target)),
        Op::Symlink { path, .. } => format!("creating the symlink {}", s(path)),
        Op::Touch(path) => format!("creating {}", s(path)),
        Op::RemountReadOnly(path) => format!("making {} read-only", s(path)),
        Op::Private(path) => format!("making {} private", s(path)),
        Op::Detach(path) => format!("detaching {}", s(path)),
        Op::Chdir(path) => format!("entering {}", s(path)),
        Op::PivotRoot { new_root, .. } => format!("pivoting the root to {}", s(new_root)),
    }
}

struct Builder {
    ops: Vec<Op>,
    /// Mount points remounted read-only at the end.
    read_only: Vec<PathBuf>,
}

impl Builder {
    /// `mkdir` of every ancestor of `path` below `/newroot`, and of `path`.
    fn mkdirs(&mut self, path: &Path) {
        let mut current = PathBuf::from("/");
        for part in path.components() {
            if let Component::Normal(p) = part {
                current.push(p);
                if current.starts_with("/newroot") && current != Path::new("/newroot") {
                    self.ops.push(Op::Mkdir(c(&current)));
                }
            }
        }
    }

    /// Fills `/newroot/<dir>` with the host's entries of `dir`: each one
    /// bound (directories recursively), symlinks recreated. The entry named
    /// by `path[0]` is rebuilt one level down instead (so a mount point can
    /// be created inside it without touching the host), and at the end of
    /// `path` an empty directory is made.
    fn populate(&mut self, dir: &Path, path: &[PathBuf], read_only: bool, top: bool) {
        let target_dir = under("/newroot", dir);
        if !top {
            self.ops.push(Op::Mkdir(c(&target_dir)));
        }
        let mut entries: Vec<_> = match fs::read_dir(dir) {
            Ok(entries) => entries.filter_map(Result::ok).collect(),
            Err(_) => Vec::new(),
        };
        entries.sort_by_key(|e| e.file_name());
        let next = path.first();
        let mut next_seen = false;
        for entry in entries {
            let name = entry.file_name();
            let host = dir.join(&name);
            let target = target_dir.join(&name);
            let Ok(kind) = entry.file_type() else { continue };
            if next.is_some_and(|n| n.as_os_str() == name) && kind.is_dir() {
                next_seen = true;
                self.populate(&host, &path[1..], read_only, false);
                continue;
            }
            if top && read_only && name == "tmp" {
                self.ops.push(Op::Mkdir(c(&target)));
                self.ops.push(Op::Tmpfs { target: c(&target), data: c("mode=1777") });
                continue;
            }
            if kind.is_symlink() {
                if let Ok(content) = fs::read_link(&host) {
                    self.ops.push(Op::Symlink { content: c(content), path: c(&target) });
                }
                continue;
            }
            if kind.is_dir() {
                self.ops.push(Op::Mkdir(c(&target)));
                self.ops.push(Op::Bind { source: c(under("/oldroot", &host)), target: c(&target), recursive: true });
            } else {
                self.ops.push(Op::Touch(c(&target)));
                self.ops.push(Op::Bind { source: c(under("/oldroot", &host)), target: c(&target), recursive: false });
            }
            let kernel = top && KERNEL_DIRS.iter().any(|k| OsStr::new(k) == name);
            if read_only && !kernel {
                self.read_only.push(target);
            }
        }
        if next.is_some() && !next_seen {
            // Not on the host: an empty directory chain on the tmpfs.
            let mut current = target_dir;
            for part in path {
                current.push(part);
                self.ops.push(Op::Mkdir(c(&current)));
            }
        }
    }
}

fn run_op(op: &Op) -> Result<(), Errno> {
    const NONE: Option<&CStr> = None;
    match op {
        Op::Slave => mount(NONE, c"/", NONE, MsFlags::MS_REC | MsFlags::MS_SLAVE, NONE),
        Op::Tmpfs { target, data } => mount(
            Some(c"tmpfs"),
            target.as_c_str(),
            Some(c"tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some(data.as_c_str()),
        ),
        Op::Mkdir(path) => match mkdir(path.as_c_str(), Mode::from_bits_truncate(0o755)) {
            Err(Errno::EEXIST) => Ok(()),
            other => other,
        },
        Op::Bind { source, target, recursive } => {
            let flags = if *recursive { MsFlags::MS_BIND | MsFlags::MS_REC } else { MsFlags::MS_BIND };
            mount(Some(source.as_c_str()), target.as_c_str(), NONE, flags, NONE)
        }
        Op::Symlink { content, path } => match symlinkat(content.as_c_str(), None, path.as_c_str()) {
            Err(Errno::EEXIST) => Ok(()),
            other => other,
        },
        Op::Touch(path) => {
            let fd = open(
                path.as_c_str(),
                OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o644),
            )?;
            close(fd)
        }
        Op::RemountReadOnly(path) => {
            // A remount must keep the flags the mount is locked with (in a
            // user namespace), so they are read back and kept.
            let kept = statvfs(path.as_c_str()).map(|s| s.flags()).unwrap_or(FsFlags::empty());
            let mut flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY;
            for (fs_flag, ms_flag) in [
                (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
                (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
                (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
                (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
                (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
                (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
            ] {
                if kept.contains(fs_flag) {
                    flags |= ms_flag;
                }
            }
            mount(NONE, path.as_c_str(), NONE, flags, NONE)
        }
        Op::Private(path) => mount(NONE, path.as_c_str(), NONE, MsFlags::MS_REC | MsFlags::MS_PRIVATE, NONE),
        Op::Detach(path) => umount2(path.as_c_str(), MntFlags::MNT_DETACH),
        Op::Chdir(path) => chdir(path.as_c_str()),
        Op::PivotRoot { new_root, put_old } => pivot_root(new_root.as_c_str(), put_old.as_c_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(plan: &Plan) -> Vec<String> {
        (0..plan.ops.len()).map(|i| plan.describe(i)).collect()
    }

    #[test]
    fn the_plan_pivots_twice_and_remounts_read_only_last() {
        let view = View {
            secrets: Some(PathBuf::from("/state/run/ns/f/secrets")),
            read_only_root: true,
            hidden: vec![PathBuf::from("/state")],
            exposed: vec![PathBuf::from("/state/run/ns/f")],
        };
        let plan = Plan::build(&view);
        let steps = text(&plan);
        let first_pivot = steps.iter().position(|s| s == "pivoting the root to /tmp").unwrap();
        let last_pivot = steps.iter().position(|s| s == "pivoting the root to .").unwrap();
        let first_ro = steps.iter().position(|s| s.starts_with("making") && s.ends_with("read-only")).unwrap();
        let last_bind = steps.iter().rposition(|s| s.starts_with("binding")).unwrap();
        assert_eq!(steps[0], "making / a slave mount");
        assert!(first_pivot < last_bind && last_bind < last_pivot, "{steps:#?}");
        assert!(steps.contains(&"binding /oldroot/state/run/ns/f/secrets on /newroot/var/openfaas/secrets".to_string()));
        assert!(steps.contains(&"mounting a tmpfs on /newroot/state".to_string()), "{steps:#?}");
        assert!(steps.contains(&"binding /oldroot/state/run/ns/f on /newroot/state/run/ns/f".to_string()));
        assert!(steps.contains(&"mounting a tmpfs on /newroot/tmp".to_string()), "a private /tmp: {steps:#?}");
        assert!(steps.contains(&"making /newroot read-only".to_string()));
        assert!(!steps.contains(&"making /newroot/proc read-only".to_string()));
        // Every read-only remount comes after the last bind but the secrets'.
        let binds_after: Vec<_> = steps[first_ro..].iter().filter(|s| s.starts_with("binding")).collect();
        assert!(binds_after.len() <= 1, "{binds_after:?}");
        // /var is rebuilt entry by entry, never bound whole (which would
        // need a mount point on the host's /var).
        assert!(!steps.contains(&"binding /oldroot/var on /newroot/var".to_string()));
        assert!(steps.contains(&"creating /newroot/var/openfaas/secrets".to_string()));
    }

    #[test]
    fn without_read_only_root_tmp_is_the_hosts() {
        let plan = Plan::build(&View::default());
        let steps = text(&plan);
        assert!(steps.contains(&"binding /oldroot/tmp on /newroot/tmp".to_string()), "{steps:#?}");
        assert!(!steps.iter().any(|s| s.ends_with("read-only")));
    }
}
