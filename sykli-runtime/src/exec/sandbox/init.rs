//! The sandbox's init: the re-executed binary that builds the namespaces and runs the task.
//!
//! ```text
//! executor ──spawn──► A: join cgroups, unshare(mount, pid, ipc, uts[, net][, user])
//!                      └─fork─► B = PID 1: tmpfs root, binds, /proc, /dev, /tmp, pivot_root
//!                                └─fork─► C: exec the task
//! ```
//!
//! A and B forward SIGTERM/SIGINT to their child and exit with its status. When B (PID 1)
//! exits, the kernel kills everything left in the PID namespace: no process outlives the
//! task, daemonised or not. Setup failures are written as `stage\tmessage` to descriptor
//! [`STATUS_FD`] and end the init with [`SETUP_FAILED`].
//!
//! Why a re-executed init rather than a `pre_exec` hook: the setup allocates (paths, error
//! messages), creates a user namespace (which a multithreaded process may not) and forks
//! twice; in the child of a multithreaded runtime only async-signal-safe calls are allowed,
//! and the extra forks would keep std's exec-error pipe open until the task ends. A freshly
//! executed, single-threaded binary may do all of it with ordinary Rust.

use std::ffi::CString;
use std::fs::{self, File};
use std::io::Write;
use std::os::fd::FromRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, unshare};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};

use super::spec::{INIT_ARG, InitSpec, MountSpec, SETUP_FAILED, STATUS_FD};

/// Runs the sandbox's init and exits when the process was started as one
/// (`BIN __sykli-sandbox-init SPEC`); returns otherwise. Call it first thing in `main` of
/// every binary the sandbox executor may re-execute (the `sykli` binary and pipeline
/// binaries do).
pub fn run_if_requested() {
    let mut args = std::env::args_os();
    if args.nth(1).as_deref() != Some(std::ffi::OsStr::new(INIT_ARG)) {
        return;
    }
    let code = match args.next() {
        Some(spec) => run(&PathBuf::from(spec)),
        None => fail("reading the sandbox spec", "no spec path given"),
    };
    std::process::exit(code);
}

struct Failure(String, String);

fn fail(stage: &str, message: impl std::fmt::Display) -> i32 {
    report(&Failure(stage.to_owned(), message.to_string()));
    SETUP_FAILED
}

fn report(f: &Failure) {
    // SAFETY: STATUS_FD was set up by the executor for this process; ManuallyDrop keeps it
    // open for the other processes of the init.
    let mut file = std::mem::ManuallyDrop::new(unsafe { File::from_raw_fd(STATUS_FD) });
    let _ = writeln!(file, "{}\t{}", f.0, f.1.replace('\n', " "));
}

fn ctx<T, E: std::fmt::Display>(r: Result<T, E>, stage: impl Into<String>) -> Result<T, Failure> {
    r.map_err(|e| Failure(stage.into(), e.to_string()))
}

/// The first line the init writes: the executor knows the binary ran the init (and not,
/// say, a test harness that ignores the argument).
pub const STARTED: &str = "started";

fn run(spec_path: &Path) -> i32 {
    {
        // SAFETY: as in `report`.
        let mut file = std::mem::ManuallyDrop::new(unsafe { File::from_raw_fd(STATUS_FD) });
        let _ = writeln!(file, "{STARTED}");
    }
    let spec: InitSpec = match fs::read(spec_path)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(s) => s,
        Err(e) => return fail("reading the sandbox spec", e),
    };
    match outer(&spec) {
        Ok(code) => code,
        Err(f) => {
            report(&f);
            SETUP_FAILED
        }
    }
}

static CHILD: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward(sig: libc::c_int) {
    let pid = CHILD.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe { libc::kill(pid, sig) };
    }
}

fn forward_signals() -> Result<(), Failure> {
    let action = SigAction::new(
        SigHandler::Handler(forward),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for sig in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        // SAFETY: the handler only calls kill.
        ctx(
            unsafe { sigaction(sig, &action) },
            "installing signal handlers",
        )?;
    }
    Ok(())
}

fn reset_signals() {
    let dfl = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for sig in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGPIPE,
    ] {
        // SAFETY: restoring the default disposition.
        let _ = unsafe { sigaction(sig, &dfl) };
    }
}

/// Waits for `child`, reaping every other process meanwhile; its exit code (128 + signal).
fn wait_for(child: Pid) -> i32 {
    loop {
        match waitpid(None, Some(WaitPidFlag::__WALL)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == child => return code,
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == child => return 128 + sig as i32,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return SETUP_FAILED,
        }
    }
}

/// Process A: joins the cgroups, creates the namespaces, forks PID 1 and waits for it.
fn outer(spec: &InitSpec) -> Result<i32, Failure> {
    let me = std::process::id().to_string();
    for procs in &spec.cgroup_procs {
        ctx(
            fs::write(procs, &me),
            format!("joining cgroup {}", procs.display()),
        )?;
    }
    let mut flags = CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWUTS;
    if !spec.network {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());
    if spec.user_ns {
        flags |= CloneFlags::CLONE_NEWUSER;
    }
    ctx(unshare(flags), "creating namespaces (unshare)")?;
    if spec.user_ns {
        ctx(
            fs::write("/proc/self/setgroups", "deny"),
            "writing /proc/self/setgroups",
        )?;
        ctx(
            fs::write("/proc/self/uid_map", format!("{uid} {uid} 1")),
            "writing /proc/self/uid_map",
        )?;
        ctx(
            fs::write("/proc/self/gid_map", format!("{gid} {gid} 1")),
            "writing /proc/self/gid_map",
        )?;
    }
    // SAFETY: this process is single-threaded (a fresh exec that started no threads).
    match ctx(unsafe { fork() }, "forking the sandbox's PID 1")? {
        ForkResult::Child => std::process::exit(match pid1(spec) {
            Ok(code) => code,
            Err(f) => {
                report(&f);
                SETUP_FAILED
            }
        }),
        ForkResult::Parent { child } => {
            CHILD.store(child.as_raw(), Ordering::SeqCst);
            forward_signals()?;
            Ok(wait_for(child))
        }
    }
}

/// Process B, PID 1 of the new namespace: builds the file system, runs the task, reaps.
fn pid1(spec: &InitSpec) -> Result<i32, Failure> {
    // PID 1 dies with A (and the namespace with it), even when A is SIGKILLed; A itself is
    // in the task's process group, which the executor's reaper kills if the executor dies.
    ctx(
        nix::sys::prctl::set_pdeathsig(Signal::SIGKILL),
        "setting the parent-death signal",
    )?;
    // (A death of A before this line is covered by the reaper; getppid cannot tell, it is 0
    // for PID 1.)
    build_root(spec)?;
    let _ = nix::unistd::sethostname("sykli-sandbox");
    if !spec.network {
        loopback_up();
    }
    let program = cstring(spec.program.as_os_str().as_bytes())?;
    let mut argv = vec![program.clone()];
    for a in &spec.args {
        argv.push(cstring(a.as_bytes())?);
    }
    // The status descriptor closes when the task's program starts.
    // SAFETY: setting FD_CLOEXEC on our own descriptor.
    unsafe { libc::fcntl(STATUS_FD, libc::F_SETFD, libc::FD_CLOEXEC) };
    // SAFETY: single-threaded.
    match ctx(unsafe { fork() }, "forking the task")? {
        ForkResult::Child => {
            reset_signals();
            let err = nix::unistd::execv(&program, &argv).unwrap_err();
            report(&Failure(
                format!("running {}", spec.program.display()),
                format!(
                    "failed to start {} in the sandbox: {err}",
                    spec.program.display()
                ),
            ));
            std::process::exit(127);
        }
        ForkResult::Parent { child } => {
            CHILD.store(child.as_raw(), Ordering::SeqCst);
            forward_signals()?;
            Ok(wait_for(child))
        }
    }
}

fn cstring(b: &[u8]) -> Result<CString, Failure> {
    ctx(CString::new(b), "preparing the command")
}

const NONE: Option<&str> = None;

fn build_root(spec: &InitSpec) -> Result<(), Failure> {
    ctx(
        mount(NONE, "/", NONE, MsFlags::MS_REC | MsFlags::MS_PRIVATE, NONE),
        "making mounts private",
    )?;
    let root = &spec.root;
    ctx(
        mount(
            Some("tmpfs"),
            root,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("mode=0755"),
        ),
        format!("mounting the sandbox root on {}", root.display()),
    )?;
    // A private /tmp first: binds of paths under the host's /tmp (a project there) go on
    // top of it.
    let tmp = inside(root, Path::new("/tmp"));
    mkdirs(&tmp)?;
    ctx(
        mount(
            Some("tmpfs"),
            &tmp,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("mode=1777"),
        ),
        "mounting /tmp",
    )?;
    let skeleton = spec.skeleton.as_ref().map(|s| inside(root, s));
    if let Some(dir) = &skeleton {
        mkdirs(dir)?;
        ctx(
            mount(
                Some("tmpfs"),
                dir,
                Some("tmpfs"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                Some("mode=0755"),
            ),
            format!("mounting the skeleton of {}", dir.display()),
        )?;
    }
    mkdirs(&inside(root, &spec.workdir))?;
    for m in &spec.mounts {
        bind(root, m)?;
    }
    // (A staging directory mounted on the skeleton itself covers it whole.)
    let covered = |dir: &PathBuf| spec.mounts.iter().any(|m| inside(root, &m.target) == *dir);
    if let Some(dir) = skeleton.as_ref().filter(|d| !covered(d)) {
        ctx(
            mount(
                NONE,
                dir,
                NONE,
                MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                NONE,
            ),
            format!("making the skeleton of {} read-only", dir.display()),
        )?;
    }
    // A fresh /proc of the new PID namespace, a minimal /dev.
    let proc_dir = inside(root, Path::new("/proc"));
    mkdirs(&proc_dir)?;
    ctx(
        mount(
            Some("proc"),
            &proc_dir,
            Some("proc"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            NONE,
        ),
        "mounting /proc",
    )?;
    dev(root)?;
    // pivot_root, then drop the old root.
    let old = root.join(".old-root");
    mkdirs(&old)?;
    ctx(nix::unistd::pivot_root(root, &old), "pivot_root")?;
    ctx(nix::unistd::chdir("/"), "entering the new root")?;
    ctx(
        umount2("/.old-root", MntFlags::MNT_DETACH),
        "detaching the host's root",
    )?;
    ctx(fs::remove_dir("/.old-root"), "removing /.old-root")?;
    // The root itself is read-only: only the writable binds and /tmp take writes.
    ctx(
        mount(
            NONE,
            "/",
            NONE,
            MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            NONE,
        ),
        "making the sandbox root read-only",
    )?;
    ctx(
        nix::unistd::chdir(&spec.workdir),
        format!("entering the working directory {}", spec.workdir.display()),
    )?;
    Ok(())
}

/// `path` (absolute, as the task sees it) under the new root.
fn inside(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

fn mkdirs(p: &Path) -> Result<(), Failure> {
    ctx(
        fs::create_dir_all(p),
        format!("creating mount point {}", p.display()),
    )
}

fn bind(root: &Path, m: &MountSpec) -> Result<(), Failure> {
    let target = inside(root, &m.target);
    let meta = ctx(
        fs::metadata(&m.source),
        format!("reading {}", m.source.display()),
    )?;
    if meta.is_dir() {
        mkdirs(&target)?;
    } else {
        if let Some(parent) = target.parent() {
            mkdirs(parent)?;
        }
        if fs::symlink_metadata(&target).is_err() {
            ctx(
                File::create(&target),
                format!("creating mount point {}", target.display()),
            )?;
        }
    }
    ctx(
        mount(
            Some(&m.source),
            &target,
            NONE,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            NONE,
        ),
        format!("binding {} at {}", m.source.display(), m.target.display()),
    )?;
    if !m.writable {
        read_only(&target).map_err(|e| {
            Failure(
                format!("making {} read-only", m.target.display()),
                e.to_string(),
            )
        })?;
    }
    Ok(())
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}
const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;

/// Makes the mount at `target` and every mount beneath it read-only (`mount_setattr`),
/// falling back to the top mount alone on kernels before 5.12.
fn read_only(target: &Path) -> std::io::Result<()> {
    let c = CString::new(target.as_os_str().as_bytes())?;
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: a valid C string and a struct of the size passed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            c.as_ptr(),
            libc::AT_RECURSIVE,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r == 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() != Some(libc::ENOSYS) {
        return Err(err);
    }
    mount(
        NONE,
        target,
        NONE,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID,
        NONE,
    )
    .map_err(std::io::Error::from)
}

/// A minimal `/dev`: null, zero, full, random, urandom, tty bound from the host, the
/// `fd`/`stdin`/`stdout`/`stderr` links and a private `/dev/shm`.
fn dev(root: &Path) -> Result<(), Failure> {
    let dev = inside(root, Path::new("/dev"));
    mkdirs(&dev)?;
    ctx(
        mount(
            Some("tmpfs"),
            &dev,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            Some("mode=0755"),
        ),
        "mounting /dev",
    )?;
    for name in ["null", "zero", "full", "random", "urandom", "tty"] {
        let source = Path::new("/dev").join(name);
        if fs::metadata(&source).is_err() {
            continue;
        }
        let m = MountSpec {
            source,
            target: PathBuf::from("/dev").join(name),
            writable: true,
        };
        bind(root, &m)?;
    }
    for (link, to) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        ctx(
            std::os::unix::fs::symlink(to, dev.join(link)),
            format!("linking /dev/{link}"),
        )?;
    }
    let shm = dev.join("shm");
    mkdirs(&shm)?;
    ctx(
        mount(
            Some("tmpfs"),
            &shm,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("mode=1777"),
        ),
        "mounting /dev/shm",
    )?;
    Ok(())
}

/// Brings up `lo` in the new network namespace (tasks may still talk to themselves);
/// best effort: without it only loopback traffic fails, which the task reports itself.
fn loopback_up() {
    // SAFETY: a socket used for one ioctl on a zeroed, NUL-terminated ifreq.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return;
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo\0".iter().enumerate() {
            req.ifr_name[i] = *b as libc::c_char;
        }
        if libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req) == 0 {
            req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            libc::ioctl(fd, libc::SIOCSIFFLAGS, &req);
        }
        libc::close(fd);
    }
}
