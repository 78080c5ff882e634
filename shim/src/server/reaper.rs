//! Reaps every child of the shim (it is a child subreaper, so container inits and exec'd
//! processes are reparented to it when the runtime exits).
//!
//! The runtime's own CLI children (runc create, runc kill, ...) are waited for by whoever
//! spawned them. To never steal those, runtime calls hold [`Reaper::runtime_lock`] and the
//! reaper only reaps while holding it too: it first blocks in `waitid(WNOWAIT)` (which does not
//! reap), then takes the lock and collects every exited child with `waitpid(WNOHANG)`.

use std::sync::{Condvar, Mutex, MutexGuard};

use nix::errno::Errno;
use nix::sys::wait::{waitid, waitpid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

#[derive(Default)]
pub(crate) struct Reaper {
    /// Held around every runtime call and around each reaping pass.
    runtime: Mutex<()>,
    /// Bumped when a runtime call ends (it may have left new children behind).
    generation: Mutex<u64>,
    changed: Condvar,
}

/// Holds the runtime lock; on drop wakes the reaper in case it had no children to wait for.
pub(crate) struct RuntimeGuard<'a> {
    reaper: &'a Reaper,
    _guard: MutexGuard<'a, ()>,
}

impl Drop for RuntimeGuard<'_> {
    fn drop(&mut self) {
        let mut generation = lock(&self.reaper.generation);
        *generation += 1;
        self.reaper.changed.notify_all();
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking thread must not take the whole shim down with it.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Reaper {
    pub(crate) fn runtime_lock(&self) -> RuntimeGuard<'_> {
        RuntimeGuard {
            reaper: self,
            _guard: lock(&self.runtime),
        }
    }

    /// Runs forever, calling `on_exit(pid, code)` for every reaped child; signal deaths are
    /// reported as 128 + signal.
    pub(crate) fn run(&self, on_exit: impl Fn(u32, i32)) -> ! {
        loop {
            let seen = *lock(&self.generation);
            match waitid(Id::All, WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(_) => {
                    // No children at all: sleep until a runtime call may have made some.
                    let mut generation = lock(&self.generation);
                    while *generation == seen {
                        generation = self
                            .changed
                            .wait(generation)
                            .unwrap_or_else(|poisoned| poisoned.into_inner());
                    }
                    continue;
                }
            }
            let _guard = lock(&self.runtime);
            loop {
                match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::Exited(pid, code)) => on_exit(pid.as_raw() as u32, code),
                    Ok(WaitStatus::Signaled(pid, signal, _)) => {
                        on_exit(pid.as_raw() as u32, 128 + signal as i32)
                    }
                    Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => break,
                    Ok(_) | Err(Errno::EINTR) => continue,
                    Err(_) => break,
                }
            }
        }
    }
}
