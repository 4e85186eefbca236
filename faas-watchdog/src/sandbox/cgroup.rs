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
    /// v2 only: the leaf this process moved itself into, because its own
    /// cgroup could not enable controllers while holding a process (v2's
    /// "no internal processes" rule). It holds this process, so it is
    /// never removed by this process, only recorded for the next one.
    pub leaf: Option<PathBuf>,
}

/// A line of `/proc/self/mountinfo` that mounts a cgroup hierarchy.
struct Hierarchy {
    mount_point: PathBuf,
    /// The path inside the hierarchy that is mounted there.
    root: String,
    v2: bool,
    options: String,
}

/// The cgroup hierarchies mounted, from the text of `/proc/self/mountinfo`.
fn hierarchies(text: &str) -> Vec<Hierarchy> {
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

/// This process's cgroup in the hierarchy whose line of `text` (the
/// contents of `/proc/self/cgroup`) `matches`.
pub(super) fn own_path(text: &str, matches: impl Fn(&str, &str) -> bool) -> Option<String> {
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

/// The controllers the sandbox uses.
const CONTROLLERS: [&str; 2] = ["memory", "cpu"];

impl Parent {
    /// Creates `name` under this process's own cgroup, in cgroup v2 if the
    /// unified hierarchy has the memory controller, else in the v1 memory
    /// and cpu hierarchies. Errors say what could not be done.
    pub fn create(name: &str) -> Result<Parent, String> {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        Parent::create_from(&hierarchies(&mountinfo), &own, name)
    }

    /// [`Parent::create`] from the hierarchies mounted and the contents of
    /// `/proc/self/cgroup`.
    fn create_from(all: &[Hierarchy], own: &str, name: &str) -> Result<Parent, String> {
        if let Some(h) = all.iter().find(|h| h.v2 && Path::new(&h.mount_point).join("cgroup.controllers").exists()) {
            let controllers = fs::read_to_string(h.mount_point.join("cgroup.controllers")).unwrap_or_default();
            if controllers.split_whitespace().any(|c| c == "memory") {
                let own = own_path(own, |id, _| id == "0").ok_or("no cgroup v2 line in /proc/self/cgroup")?;
                return Parent::create_v2(&own_dir(h, &own), name, &CONTROLLERS);
            }
        }
        Parent::create_v1(all, own, name)
    }

    /// Creates `name` in `own_dir` (this process's v2 cgroup), with the
    /// controllers of `wanted` that `own_dir` offers enabled for `name` and
    /// its children. Enabling
    /// them in `own_dir` is refused (EBUSY) while `own_dir` holds a process
    /// (a delegated systemd scope, a container's cgroup namespace): this
    /// process then moves itself into the leaf `<name>-self` first, as
    /// crun and systemd do with a delegated cgroup.
    fn create_v2(own_dir: &Path, name: &str, wanted: &[&str]) -> Result<Parent, String> {
        let controllers = fs::read_to_string(own_dir.join("cgroup.controllers")).unwrap_or_default();
        let wanted: Vec<&str> =
            wanted.iter().copied().filter(|c| controllers.split_whitespace().any(|x| x == *c)).collect();
        let enable = wanted.iter().map(|c| format!("+{c}")).collect::<Vec<_>>().join(" ");
        let subtree = own_dir.join("cgroup.subtree_control");
        let refused = |e: std::io::Error| {
            format!(
                "cgroup v2: cannot enable {enable} in {} ({e}); run the gateway in a cgroup of its own with those \
                 controllers delegated (e.g. systemd-run --scope -p Delegate=yes)",
                own_dir.display()
            )
        };
        let mut leaf = None;
        if let Err(e) = fs::write(&subtree, &enable) {
            if e.raw_os_error() != Some(nix::errno::Errno::EBUSY as i32) {
                return Err(refused(e));
            }
            let dir = own_dir.join(format!("{name}-self"));
            make_dir(&dir)?;
            fs::write(dir.join("cgroup.procs"), "0")
                .map_err(|e| format!("cgroup v2: cannot move this process into {}: {e}", dir.display()))?;
            leaf = Some(dir);
            fs::write(&subtree, &enable).map_err(refused)?;
        }
        let dir = own_dir.join(name);
        make_dir(&dir)?;
        fs::write(dir.join("cgroup.subtree_control"), &enable)
            .map_err(|e| format!("cgroup v2: cannot enable {enable} in {}: {e}", dir.display()))?;
        let has = |c: &str| wanted.contains(&c).then(|| dir.clone());
        Ok(Parent { version: Version::V2, memory: has("memory"), cpu: has("cpu"), leaf })
    }

    fn create_v1(all: &[Hierarchy], own: &str, name: &str) -> Result<Parent, String> {
        let mut dirs = Vec::new();
        let mut why = Vec::new();
        for controller in ["memory", "cpu"] {
            let found = all.iter().find(|h| !h.v2 && h.options.split(',').any(|o| o == controller));
            let Some(h) = found else {
                why.push(format!("no cgroup v1 {controller} hierarchy is mounted"));
                dirs.push(None);
                continue;
            };
            let own = own_path(own, |_, controllers| controllers.split(',').any(|c| c == controller));
            let dir = own_dir(h, &own.unwrap_or_default()).join(name);
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
        Ok(Parent { version: Version::V1, memory, cpu, leaf: None })
    }

    /// The directories this parent made and removes when dropped.
    pub fn dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = self.memory.iter().chain(self.cpu.iter()).cloned().collect();
        dirs.dedup();
        dirs
    }

    /// What the next sandbox reaps after a crash: [`Parent::dirs`] and the
    /// leaf this process moved into (empty once it is gone).
    pub fn records(&self) -> Vec<PathBuf> {
        self.dirs().into_iter().chain(self.leaf.iter().cloned()).collect()
    }

    /// Creates the instance cgroup `name` with `limits`.
    pub fn instance(&self, name: &str, limits: &Limits) -> Result<Instance, String> {
        let instance = self.spare(name, limits.cpu.is_some())?;
        instance.apply(limits)?;
        Ok(instance)
    }

    /// Creates the cgroup `name` without limits, in the memory hierarchy
    /// and, with `cpu`, in the cpu one: what [`Parent::instance`] makes for
    /// limits with or without `cpu`, for [`Instance::adopt`] to name and
    /// limit later.
    pub fn spare(&self, name: &str, cpu: bool) -> Result<Instance, String> {
        let mut dirs = Vec::new();
        let memory = self.memory.as_ref().map(|parent| parent.join(name));
        let cpu = self.cpu.as_ref().filter(|_| cpu).map(|parent| parent.join(name));
        for dir in memory.iter().chain(cpu.iter()) {
            if !dirs.contains(dir) {
                make_dir(dir)?;
                dirs.push(dir.clone());
            }
        }
        Ok(Instance { version: self.version, memory, dirs })
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
    /// Renames a [`Parent::spare`] to `name` (in every hierarchy; a v1
    /// cgroup may be renamed within its parent, processes and threads in
    /// it staying) and sets `limits`, which must have a cpu limit exactly
    /// when the spare was made with a cpu cgroup.
    pub fn adopt(&mut self, name: &str, limits: &Limits) -> Result<(), String> {
        for dir in &mut self.dirs {
            let renamed = dir.with_file_name(name);
            fs::rename(&*dir, &renamed)
                .map_err(|e| format!("cannot rename cgroup {} to {name}: {e}", dir.display()))?;
            if self.memory.as_ref() == Some(&*dir) {
                self.memory = Some(renamed.clone());
            }
            *dir = renamed;
        }
        self.apply(limits)
    }

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

    /// The v1 `tasks` files a thread writes `0` to, to move itself (and
    /// not its process) into this instance; empty on v2, where a thread
    /// cannot leave its process's cgroup.
    pub fn thread_files(&self) -> Vec<PathBuf> {
        match self.version {
            Version::V1 => self.dirs.iter().map(|d| d.join("tasks")).collect(),
            Version::V2 => Vec::new(),
        }
    }

    /// Whether no process is in the cgroup (a thread of this process that
    /// moved in does not count). One hierarchy tells: a process is in
    /// all of the instance's (it joins them all before `exec`, or is born
    /// in them, and its descendants inherit them).
    pub fn is_empty(&self) -> bool {
        self.dirs.first().is_none_or(|d| procs(d).is_empty())
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

/// The pids in a cgroup, but this process's: v1 lists a process when any
/// of its threads is in the cgroup, and a spawner thread is (see
/// `sandbox/spawner.rs`); killing those pids must never kill this process.
fn procs(dir: &Path) -> Vec<i32> {
    let own = std::process::id() as i32;
    fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .filter(|pid| *pid != own)
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

    fn read(path: impl AsRef<Path>) -> String {
        fs::read_to_string(path.as_ref()).unwrap_or_else(|e| panic!("{}: {e}", path.as_ref().display()))
    }

    /// A cgroup tree faked in a temp dir has regular files where the kernel
    /// has its own: removing it would wait for `rmdir`s that cannot work.
    /// The temp dir removes it instead.
    fn keep<T>(value: T) {
        std::mem::forget(value);
    }

    #[test]
    fn v2_enables_memory_and_cpu_and_writes_memory_max_and_cpu_max() {
        let root = tempfile::tempdir().unwrap();
        let own = root.path().join("system.slice/gw.service");
        fs::create_dir_all(&own).unwrap();
        fs::write(root.path().join("cgroup.controllers"), "cpuset cpu io memory pids\n").unwrap();
        fs::write(own.join("cgroup.controllers"), "cpu memory pids\n").unwrap();
        let mountinfo = format!(
            "25 1 0:22 / /proc rw - proc proc rw\n30 23 0:26 / {} rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n",
            root.path().display()
        );
        let all = hierarchies(&mountinfo);
        let parent = Parent::create_from(&all, "0::/system.slice/gw.service\n", "faas-rs-7").unwrap();
        let dir = own.join("faas-rs-7");
        assert_eq!(parent.version, Version::V2);
        assert_eq!((parent.memory.as_ref(), parent.cpu.as_ref()), (Some(&dir), Some(&dir)));
        assert_eq!(parent.leaf, None, "a file system that never says EBUSY needs no leaf");
        assert_eq!(read(own.join("cgroup.subtree_control")), "+memory +cpu");
        assert_eq!(read(dir.join("cgroup.subtree_control")), "+memory +cpu");
        assert_eq!(parent.dirs(), vec![dir.clone()]);

        let instance = parent.instance("f-0", &Limits { memory: Some(20 << 20), cpu: Some(0.5) }).unwrap();
        let cell = dir.join("f-0");
        assert_eq!(read(cell.join("memory.max")), "20971520");
        assert_eq!(read(cell.join("cpu.max")), "50000 100000");
        assert_eq!(instance.procs_files(), vec![CString::new(cell.join("cgroup.procs").to_str().unwrap()).unwrap()]);
        let events = instance.oom_file().unwrap();
        assert_eq!(events, cell.join("memory.events"));
        fs::write(&events, "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n").unwrap();
        assert_eq!(oom_kills(&events), 2, "oom_kill, not oom or oom_group_kill");
        // The smallest quota the kernel takes is 1ms of the period.
        let tiny = parent.instance("f-1", &Limits { memory: None, cpu: Some(0.001) }).unwrap();
        assert_eq!(read(dir.join("f-1/cpu.max")), "1000 100000");
        assert!(!dir.join("f-1/memory.max").exists(), "no memory limit asked, none written");
        keep((parent, instance, tiny));
    }

    #[test]
    fn a_hybrid_host_without_the_v2_memory_controller_uses_v1() {
        let root = tempfile::tempdir().unwrap();
        let (unified, memory, cpu) =
            (root.path().join("unified"), root.path().join("memory"), root.path().join("cpu,cpuacct"));
        for dir in [&unified, &memory.join("inner"), &cpu] {
            fs::create_dir_all(dir).unwrap();
        }
        fs::write(unified.join("cgroup.controllers"), "hugetlb\n").unwrap();
        let mountinfo = format!(
            "41 31 0:38 / {} rw - cgroup2 cgroup2 rw\n35 31 0:32 /outer {} rw - cgroup cgroup rw,memory\n\
             32 31 0:29 / {} rw - cgroup cgroup rw,cpu,cpuacct\n",
            unified.display(),
            memory.display(),
            cpu.display().to_string().replace(',', "\\054")
        );
        let own = "4:memory:/outer/inner\n1:cpu,cpuacct:/\n0::/\n";
        let parent = Parent::create_from(&hierarchies(&mountinfo), own, "faas-rs-7").unwrap();
        assert_eq!(parent.version, Version::V1);
        assert_eq!(parent.memory, Some(memory.join("inner/faas-rs-7")));
        assert_eq!(parent.cpu, Some(cpu.join("faas-rs-7")));
        let instance = parent.instance("f-0", &Limits { memory: Some(64 << 20), cpu: Some(1.5) }).unwrap();
        assert_eq!(read(memory.join("inner/faas-rs-7/f-0/memory.limit_in_bytes")), "67108864");
        assert_eq!(read(cpu.join("faas-rs-7/f-0/cpu.cfs_period_us")), "100000");
        assert_eq!(read(cpu.join("faas-rs-7/f-0/cpu.cfs_quota_us")), "150000");
        assert_eq!(instance.oom_file(), Some(memory.join("inner/faas-rs-7/f-0/memory.oom_control")));
        keep((parent, instance));
    }

    /// Puts this process back in `home` (the root of a cgroup2 hierarchy)
    /// and removes what the test made, whatever the test's outcome.
    struct Restore {
        home: PathBuf,
        busy: PathBuf,
        /// Whether the test enabled hugetlb in the root's subtree.
        enabled: bool,
    }

    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = fs::write(self.home.join("cgroup.procs"), "0");
            let _ = fs::remove_dir(self.busy.join("gw-self"));
            let _ = fs::remove_dir(self.busy.join("gw"));
            let _ = fs::write(self.busy.join("cgroup.subtree_control"), "-hugetlb");
            let _ = fs::remove_dir(&self.busy);
            if self.enabled {
                let _ = fs::write(self.home.join("cgroup.subtree_control"), "-hugetlb");
            }
        }
    }

    /// On this machine's real cgroup2 hierarchy (hybrid: only `hugetlb`
    /// is on v2, memory and cpu are v1's), the delegation step itself: a
    /// cgroup holding this process cannot enable a controller (EBUSY) until
    /// the process moves into a leaf. Needs root and a cgroup2 mount whose
    /// root offers a domain controller; skipped otherwise.
    #[test]
    fn on_a_real_cgroup2_hierarchy_a_busy_own_cgroup_is_left_for_a_leaf() {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let found = hierarchies(&mountinfo).into_iter().find(|h| h.v2);
        let usable = found.filter(|h| {
            let controllers = fs::read_to_string(h.mount_point.join("cgroup.controllers")).unwrap_or_default();
            nix::unistd::geteuid().is_root()
                && controllers.split_whitespace().any(|c| c == "hugetlb")
                && own_path(&own, |id, _| id == "0").as_deref() == Some("/")
        });
        let Some(h) = usable else {
            eprintln!("skipped: needs root in the root of a cgroup2 hierarchy offering hugetlb");
            return;
        };
        let home = own_dir(&h, "/");
        let busy = home.join(format!("faas-rs-v2-test-{}", std::process::id()));
        // The root offers hugetlb to its children only once enabled in its
        // subtree (no one uses v2's hugetlb here; put back at the end).
        let enabled = !read(home.join("cgroup.subtree_control")).split_whitespace().any(|c| c == "hugetlb");
        if enabled {
            fs::write(home.join("cgroup.subtree_control"), "+hugetlb").unwrap();
        }
        let _restore = Restore { home: home.clone(), busy: busy.clone(), enabled };
        make_dir(&busy).unwrap();
        fs::write(busy.join("cgroup.procs"), "0").unwrap();
        let error = fs::write(busy.join("cgroup.subtree_control"), "+hugetlb").unwrap_err();
        assert_eq!(error.raw_os_error(), Some(nix::errno::Errno::EBUSY as i32), "the rule this works around");

        let parent = Parent::create_v2(&busy, "gw", &["memory", "cpu", "hugetlb"]).unwrap();
        assert_eq!(parent.leaf, Some(busy.join("gw-self")));
        let now = fs::read_to_string("/proc/self/cgroup").unwrap();
        let expected = format!("0::/{}/gw-self", busy.file_name().unwrap().to_string_lossy());
        assert!(now.lines().any(|l| l == expected), "this process moved into the leaf: {now}");
        assert_eq!(read(busy.join("cgroup.subtree_control")).trim(), "hugetlb");
        assert_eq!(read(busy.join("gw/cgroup.subtree_control")).trim(), "hugetlb");
        assert_eq!((parent.memory.as_ref(), parent.cpu.as_ref()), (None, None), "not offered here");
        assert_eq!(parent.records(), vec![busy.join("gw-self")], "the leaf is recorded, never removed by its process");
        drop(parent);
    }
}
