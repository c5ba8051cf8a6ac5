//! The orphan reaper: task process groups die with the process that started them.
//!
//! A SIGKILLed `sykli` cannot stop its tasks, and `PR_SET_PDEATHSIG` only reaches the
//! direct child (not the rest of its process group) and fires when the *thread* that forked
//! exits, which a runtime's pooled threads do when idle. Instead, the first task started in
//! a process forks one small reaper process holding the read end of a pipe:
//!
//! ```text
//! sykli ──pipe (write end, CLOEXEC)──► reaper: "+PGID\n" adds, "-PGID\n" removes;
//!                                      at end of file (every writer gone) SIGKILLs the
//!                                      process groups left and exits
//! ```
//!
//! The executor registers each task's group as soon as the spawn returns, and removes it
//! once the group is dead. A group is therefore only killed by the reaper if its task was
//! still running when every writer was gone: when the process that ran it died. (The
//! registration is not made from the child's `pre_exec`, which would close the window of a
//! few microseconds between the spawn and the write: any `pre_exec` hook makes std fork the
//! whole process instead of using `posix_spawn`, which measured 2-9 ms against 90-118 ms
//! per spawn for a process holding 200 MB, on a loaded 2-core machine.)
//!
//! The reaper is forked without `exec`, so it only makes async-signal-safe calls (`read`,
//! `kill`, `close`, `_exit`) on memory allocated before the fork. It sits in its own process
//! group (a terminal's Ctrl-C does not reach it) with every other descriptor closed, and
//! ignores SIGINT and SIGHUP. It tracks up to [`CAPACITY`] live groups at once.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::OnceLock;

/// How many task process groups the reaper tracks at once; groups beyond it are not
/// reaped (a `sykli` process does not run that many tasks at a time).
pub const CAPACITY: usize = 16 * 1024;

/// The write end of the pipe to this process's reaper, or why it could not be started.
static REAPER: OnceLock<Result<OwnedFd, String>> = OnceLock::new();

/// Starts this process's reaper if it is not running yet; an error says why it could not
/// be started.
pub(crate) fn ensure() -> Result<(), String> {
    match REAPER.get_or_init(start) {
        Ok(_) => Ok(()),
        Err(e) => Err(e.clone()),
    }
}

/// Registers group `pgid` (a task's, just spawned). A failed write is ignored: the task runs
/// unprotected rather than not at all.
pub(crate) fn register(pgid: i32) {
    if let Some(Ok(fd)) = REAPER.get() {
        send(fd.as_raw_fd(), b'+', pgid);
    }
}

/// Removes group `pgid` (its task ended and the group is dead).
pub(crate) fn unregister(pgid: i32) {
    if let Some(Ok(fd)) = REAPER.get() {
        send(fd.as_raw_fd(), b'-', pgid);
    }
}

/// Writes `{op}{pgid}\n` with one `write` (atomic on a pipe: under `PIPE_BUF`, so lines of
/// concurrent tasks never interleave).
fn send(fd: RawFd, op: u8, pgid: i32) {
    let mut buf = [0u8; 16];
    buf[0] = op;
    let mut digits = [0u8; 12];
    let mut n = pgid.unsigned_abs();
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for i in 0..len {
        buf[1 + i] = digits[len - 1 - i];
    }
    buf[1 + len] = b'\n';
    let total = len + 2;
    loop {
        // SAFETY: writing an initialised stack buffer to a descriptor.
        let r = unsafe { libc::write(fd, buf.as_ptr().cast(), total) };
        if r >= 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return;
        }
    }
}

/// Forks the reaper; returns the pipe's write end.
fn start() -> Result<OwnedFd, String> {
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| format!("failed to create the reaper's pipe: {e}"))?;
    // Everything the child touches is allocated here, before the fork.
    let mut groups = vec![0i32; CAPACITY];
    let read_fd = read.as_raw_fd();
    let write_fd = write.as_raw_fd();
    // SAFETY: the child only makes async-signal-safe calls on memory allocated before the
    // fork and never returns (it ends with _exit).
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!(
            "failed to fork the reaper: {}",
            std::io::Error::last_os_error()
        ));
    }
    if pid == 0 {
        // SAFETY: see above.
        unsafe { reaper_main(read_fd, write_fd, &mut groups) }
    }
    drop(read);
    drop(groups);
    Ok(write)
}

/// The reaper's life, in the forked child. Never returns.
///
/// # Safety
/// Only in the child of a fork: makes async-signal-safe calls only.
unsafe fn reaper_main(read_fd: RawFd, write_fd: RawFd, groups: &mut [i32]) -> ! {
    unsafe {
        libc::setpgid(0, 0);
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        libc::signal(libc::SIGTERM, libc::SIG_DFL);
        libc::signal(libc::SIGCHLD, libc::SIG_DFL);
        // Keep only the read end, as descriptor 0: the parent's other descriptors (its
        // own write end, task pipes, locks) must not stay open in here.
        libc::close(write_fd);
        if read_fd != 0 {
            libc::dup2(read_fd, 0);
        }
        close_from(1);
        let mut sigs: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut sigs);
        libc::sigprocmask(libc::SIG_SETMASK, &sigs, std::ptr::null_mut());
    }
    let mut count = 0usize;
    let mut op = 0u8;
    let mut num: i64 = 0;
    let mut buf = [0u8; 4096];
    loop {
        // SAFETY: reading into a stack buffer.
        let n = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            // SAFETY: errno read after a failed call.
            if unsafe { *libc::__errno_location() } == libc::EINTR {
                continue;
            }
            break;
        }
        if n == 0 {
            break;
        }
        for &b in &buf[..n as usize] {
            match b {
                b'+' | b'-' => {
                    op = b;
                    num = 0;
                }
                b'0'..=b'9' => num = (num * 10 + i64::from(b - b'0')).min(i64::from(i32::MAX)),
                b'\n' => {
                    let g = num as i32;
                    if op == b'+' && g > 1 && count < groups.len() {
                        groups[count] = g;
                        count += 1;
                    } else if op == b'-'
                        && let Some(i) = groups[..count].iter().position(|&x| x == g)
                    {
                        count -= 1;
                        groups[i] = groups[count];
                    }
                    op = 0;
                }
                _ => op = 0,
            }
        }
    }
    for &g in &groups[..count] {
        // SAFETY: kill is async-signal-safe.
        unsafe { libc::kill(-g, libc::SIGKILL) };
    }
    // SAFETY: ending the forked child without running the parent's exit handlers.
    unsafe { libc::_exit(0) }
}

/// Closes every descriptor from `first` up.
///
/// # Safety
/// Async-signal-safe; only for the forked child.
unsafe fn close_from(first: u32) {
    // SAFETY: close_range takes plain integers.
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, 0u32) };
    if r == 0 {
        return;
    }
    // SAFETY: getrlimit writes into the struct.
    let mut lim: libc::rlimit = unsafe { std::mem::zeroed() };
    let max = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        lim.rlim_cur.min(1 << 20) as i32
    } else {
        4096
    };
    for fd in first as i32..max {
        // SAFETY: closing descriptors of our own.
        unsafe { libc::close(fd) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_lines_are_one_write_each() {
        let (r, w) = nix::unistd::pipe().expect("pipe");
        send(w.as_raw_fd(), b'+', 1234567);
        send(w.as_raw_fd(), b'-', 7);
        drop(w);
        let mut out = String::new();
        use std::io::Read;
        std::fs::File::from(r)
            .read_to_string(&mut out)
            .expect("read");
        assert_eq!(out, "+1234567\n-7\n");
    }
}
