//! Cgroups: one parent the sandbox owns (removed when it closes) and one
//! cgroup per function instance below it, carrying the memory and CPU
//! limits. cgroup v2 (`memory.max`, `cpu.max`) and v1
//! (`memory.limit_in_bytes`, `cpu.cfs_quota_us`) are both handled.

use std::ffi::CString;
use std::fs;
use std::io::ErrorKind;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// The CFS period the CPU quota is a share of (the kernel's default).
const CPU_PERIOD_US: u64 = 100_000;
/// How long removing a cgroup waits for its processes to die.
const EMPTY_TIMEOUT: Duration = Duration::from_secs(2);

/// Which cgroup version the limits are written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// The unified hierarchy.
    V2,
    /// Separate `memory` and `cpu` hierarchies.
    V1,
}

/// The cgroups the sandbox owns: one directory per hierarchy (v1: memory
/// and cpu; v2: one), each holding one cgroup per function instance.
#[derive(Debug)]
pub struct Parent {
    /// v1 or v2.
    pub version: Version,
    /// The parent directory for memory (v2: the only one).
    pub memory: Option<PathBuf>,
    /// The parent directory for cpu (v2: the same as `memory`).
    pub cpu: Option<PathBuf>,
}

/// A line of `/proc/self/mountinfo` that mounts a cgroup hierarchy.
struct Hierarchy {
    mount_point: PathBuf,
    /// The path inside the hierarchy that is mounted there.
    root: String,
    v2: bool,
    options: String,
}

fn hierarchies() -> Vec<Hierarchy> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else { continue };
        let fields: Vec<&str> = left.split(' ').collect();
        let rest: Vec<&str> = right.split(' ').collect();
        if fields.len() < 5 || rest.len() < 3 {
            continue;
        }
        let v2 = match rest[0] {
            "cgroup2" => true,
            "cgroup" => false,
            _ => continue,
        };
        out.push(Hierarchy {
            mount_point: PathBuf::from(unescape(fields[4])),
            root: unescape(fields[3]),
            v2,
            options: rest[2].to_string(),
        });
    }
    out
}

/// mountinfo escapes spaces and a few other bytes as `\ooo`.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() && bytes[i + 1..i + 4].iter().all(|b| (b'0'..=b'7').contains(b)) {
            let value = (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(value);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// This process's cgroup in the hierarchy whose `/proc/self/cgroup` line
/// `matches`.
fn own_path(matches: impl Fn(&str, &str) -> bool) -> Option<String> {
    let text = fs::read_to_string("/proc/self/cgroup").ok()?;
    text.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (id, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        matches(id, controllers).then(|| path.to_string())
    })
}

/// The directory of this process's own cgroup in `h`.
fn own_dir(h: &Hierarchy, own: &str) -> PathBuf {
    let relative = if h.root != "/" { own.strip_prefix(h.root.as_str()).unwrap_or(own) } else { own };
    let mut dir = h.mount_point.clone();
    for part in relative.split('/').filter(|p| !p.is_empty()) {
        dir.push(part);
    }
    dir
}

impl Parent {
    /// Creates `name` under this process's own cgroup, in cgroup v2 if the
    /// unified hierarchy has the memory controller, else in the v1 memory
    /// and cpu hierarchies. Errors say what could not be done.
    pub fn create(name: &str) -> Result<Parent, String> {
        let all = hierarchies();
        if let Some(h) = all.iter().find(|h| h.v2 && Path::new(&h.mount_point).join("cgroup.controllers").exists()) {
            let controllers = fs::read_to_string(h.mount_point.join("cgroup.controllers")).unwrap_or_default();
            if controllers.split_whitespace().any(|c| c == "memory") {
                return Parent::create_v2(h, name);
            }
        }
        Parent::create_v1(&all, name)
    }

    fn create_v2(h: &Hierarchy, name: &str) -> Result<Parent, String> {
        let own = own_path(|id, _| id == "0").ok_or("no cgroup v2 line in /proc/self/cgroup")?;
        let own_dir = own_dir(h, &own);
        let controllers = fs::read_to_string(own_dir.join("cgroup.controllers")).unwrap_or_default();
        let wanted: Vec<&str> =
            ["memory", "cpu"].into_iter().filter(|c| controllers.split_whitespace().any(|x| x == *c)).collect();
        let enable = wanted.iter().map(|c| format!("+{c}")).collect::<Vec<_>>().join(" ");
        fs::write(own_dir.join("cgroup.subtree_control"), &enable).map_err(|e| {
            format!(
                "cgroup v2: cannot enable {enable} in {} ({e}); run the gateway in a cgroup of its own with those \
                 controllers delegated (e.g. systemd-run --scope -p Delegate=yes)",
                own_dir.display()
            )
        })?;
        let dir = own_dir.join(name);
        make_dir(&dir)?;
        fs::write(dir.join("cgroup.subtree_control"), &enable)
            .map_err(|e| format!("cgroup v2: cannot enable {enable} in {}: {e}", dir.display()))?;
        let has = |c: &str| wanted.contains(&c).then(|| dir.clone());
        Ok(Parent { version: Version::V2, memory: has("memory"), cpu: has("cpu") })
    }

    fn create_v1(all: &[Hierarchy], name: &str) -> Result<Parent, String> {
        let mut dirs = Vec::new();
        let mut why = Vec::new();
        for controller in ["memory", "cpu"] {
            let found = all.iter().find(|h| !h.v2 && h.options.split(',').any(|o| o == controller));
            let Some(h) = found else {
                why.push(format!("no cgroup v1 {controller} hierarchy is mounted"));
                dirs.push(None);
                continue;
            };
            let own = own_path(|_, controllers| controllers.split(',').any(|c| c == controller)).unwrap_or_default();
            let dir = own_dir(h, &own).join(name);
            match make_dir(&dir) {
                Ok(()) => dirs.push(Some(dir)),
                Err(e) => {
                    why.push(e);
                    dirs.push(None);
                }
            }
        }
        let cpu = dirs.pop().flatten();
        let memory = dirs.pop().flatten();
        if memory.is_none() && cpu.is_none() {
            return Err(why.join("; "));
        }
        Ok(Parent { version: Version::V1, memory, cpu })
    }

    /// The directories this parent made (to record and to remove).
    pub fn dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = self.memory.iter().chain(self.cpu.iter()).cloned().collect();
        dirs.dedup();
        dirs
    }

    /// Creates the instance cgroup `name` with `limits`.
    pub fn instance(&self, name: &str, limits: &Limits) -> Result<Instance, String> {
        let mut dirs = Vec::new();
        let memory = self.memory.as_ref().map(|parent| parent.join(name));
        let cpu = self.cpu.as_ref().filter(|_| limits.cpu.is_some()).map(|parent| parent.join(name));
        for dir in memory.iter().chain(cpu.iter()) {
            if !dirs.contains(dir) {
                make_dir(dir)?;
                dirs.push(dir.clone());
            }
        }
        let instance = Instance { version: self.version, memory, dirs };
        instance.apply(limits)?;
        Ok(instance)
    }
}

impl Drop for Parent {
    fn drop(&mut self) {
        for dir in self.dirs() {
            remove_tree(&dir);
        }
    }
}

/// The limits of one instance.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Limits {
    /// Bytes.
    pub memory: Option<u64>,
    /// Cores.
    pub cpu: Option<f64>,
}

/// One instance's cgroup (in each hierarchy it uses).
#[derive(Debug)]
pub struct Instance {
    version: Version,
    memory: Option<PathBuf>,
    dirs: Vec<PathBuf>,
}

impl Instance {
    fn apply(&self, limits: &Limits) -> Result<(), String> {
        let write = |dir: &Path, file: &str, value: String| {
            let path = dir.join(file);
            fs::write(&path, &value).map_err(|e| format!("cannot write {value} to {}: {e}", path.display()))
        };
        let optional = |dir: &Path, file: &str, value: String| {
            let path = dir.join(file);
            if path.exists() {
                let _ = fs::write(path, value);
            }
        };
        if let (Some(dir), Some(bytes)) = (&self.memory, limits.memory) {
            match self.version {
                Version::V2 => {
                    write(dir, "memory.max", bytes.to_string())?;
                    optional(dir, "memory.swap.max", "0".into());
                }
                Version::V1 => {
                    write(dir, "memory.limit_in_bytes", bytes.to_string())?;
                    optional(dir, "memory.memsw.limit_in_bytes", bytes.to_string());
                }
            }
        }
        if let Some(cores) = limits.cpu {
            let quota = ((cores * CPU_PERIOD_US as f64).round() as u64).max(1000);
            let dir = self.dirs.last().cloned().unwrap_or_default();
            match self.version {
                Version::V2 => write(&dir, "cpu.max", format!("{quota} {CPU_PERIOD_US}"))?,
                Version::V1 => {
                    write(&dir, "cpu.cfs_period_us", CPU_PERIOD_US.to_string())?;
                    write(&dir, "cpu.cfs_quota_us", quota.to_string())?;
                }
            }
        }
        Ok(())
    }

    /// The `cgroup.procs` files a child writes `0` to, to join.
    pub fn procs_files(&self) -> Vec<CString> {
        self.dirs
            .iter()
            .map(|d| CString::new(d.join("cgroup.procs").as_os_str().as_bytes()).unwrap_or_default())
            .collect()
    }

    /// The file counting the kernel's OOM kills in this cgroup (read with
    /// [`oom_kills`]), if it has a memory cgroup.
    pub fn oom_file(&self) -> Option<PathBuf> {
        let file = match self.version {
            Version::V2 => "memory.events",
            Version::V1 => "memory.oom_control",
        };
        self.memory.as_ref().map(|dir| dir.join(file))
    }

    /// Whether no process is in the cgroup.
    pub fn is_empty(&self) -> bool {
        self.dirs.iter().all(|d| procs(d).is_empty())
    }

    /// Kills every process in the cgroup.
    pub fn kill_all(&self) {
        for dir in &self.dirs {
            kill_procs(dir);
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        for dir in &self.dirs {
            remove_tree(dir);
        }
    }
}

/// How many times the kernel's OOM killer has killed in the cgroup whose
/// [`Instance::oom_file`] is `file`.
pub fn oom_kills(file: &Path) -> u64 {
    let text = fs::read_to_string(file).unwrap_or_default();
    text.lines().find_map(|l| l.strip_prefix("oom_kill ").and_then(|n| n.trim().parse().ok())).unwrap_or(0)
}

fn make_dir(dir: &Path) -> Result<(), String> {
    match fs::create_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(format!("cannot create cgroup {}: {e}", dir.display())),
    }
}

/// The pids in a cgroup.
fn procs(dir: &Path) -> Vec<i32> {
    fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

fn kill_procs(dir: &Path) {
    for pid in procs(dir) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
}

/// Kills everything in `dir` and below, then removes the cgroups, deepest
/// first (waiting, bounded, for killed processes to leave).
pub fn remove_tree(dir: &Path) {
    if !dir.is_dir() {
        return;
    }
    let children: Vec<PathBuf> = fs::read_dir(dir)
        .map(|entries| entries.filter_map(Result::ok).filter(|e| e.path().is_dir()).map(|e| e.path()).collect())
        .unwrap_or_default();
    for child in children {
        remove_tree(&child);
    }
    let deadline = Instant::now() + EMPTY_TIMEOUT;
    loop {
        kill_procs(dir);
        match fs::remove_dir(dir) {
            Ok(()) => return,
            Err(e) if e.kind() == ErrorKind::NotFound => return,
            Err(e) if Instant::now() >= deadline => {
                tracing::warn!(cgroup = %dir.display(), error = %e, "cannot remove a cgroup");
                return;
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_read() {
        assert_eq!(unescape("/sys/fs/cgroup/cpu\\054cpuacct"), "/sys/fs/cgroup/cpu,cpuacct");
        assert_eq!(unescape("/a\\040b"), "/a b");
        assert_eq!(unescape("/plain"), "/plain");
    }

    #[test]
    fn own_dirs_strip_the_mount_root() {
        let h = Hierarchy {
            mount_point: "/sys/fs/cgroup/memory".into(),
            root: "/outer".into(),
            v2: false,
            options: String::new(),
        };
        assert_eq!(own_dir(&h, "/outer/inner"), PathBuf::from("/sys/fs/cgroup/memory/inner"));
        let h = Hierarchy { root: "/".into(), ..h };
        assert_eq!(own_dir(&h, "/a/b"), PathBuf::from("/sys/fs/cgroup/memory/a/b"));
    }
}
