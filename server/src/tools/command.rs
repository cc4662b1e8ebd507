//! `run_command`: a shell command in the agent's workspace. A cleared environment is not a
//! sandbox, so the command runs (util-linux's `unshare`, `setpriv`, `prlimit`):
//! - as a user of its own (a uid derived from the agent, never the server's: it cannot read the
//!   master key, the database password or another agent's workspace), with no groups, no
//!   capabilities and `no_new_privs`;
//! - in new network, PID, mount, IPC and UTS namespaces: no network at all (not even loopback),
//!   no view of other processes, and the server's data directory, `/tmp`, `/var/tmp`, `/run`
//!   and `/dev/shm` replaced by empty tmpfs (no Unix socket of Postgres is reachable); the
//!   workspace is at `/mnt`, its working directory;
//! - under limits (CPU seconds, address space, processes, file size, open files, no core
//!   dumps), a wall-clock time limit, and an output cap. At the limit the whole namespace is
//!   killed: its first process (a root shell that only waits) dies with `unshare`, and with it
//!   every process inside.
//!
//! It needs the server to run as root (to switch users and make namespaces); otherwise the
//! tool answers that it is unavailable. Only an admin may give it to an agent.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};

/// The default and the longest wall-clock time of one command.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
pub const MAX_TIMEOUT_SECS: u64 = 300;
/// Bytes of stdout and of stderr an answer keeps (the rest is read and dropped).
pub const OUTPUT_CAP: usize = 32 * 1024;
/// The longest command, in bytes.
pub const MAX_COMMAND: usize = 16 * 1024;
/// Agents' uids: `BASE_UID + (a hash of the agent's id) % UID_RANGE`, far above any account.
const BASE_UID: u32 = 200_000;
const UID_RANGE: u32 = 1_000_000;

/// Runs as root inside the new namespaces, then waits for the command (rather than `exec`ing
/// it) so that it stays the namespace's first process: when it dies, every process in the
/// namespace is killed.
const SANDBOX: &str = r#"set -e
mount --bind "$FLOTILLA_WS" /mnt
for d in "$FLOTILLA_HIDE" /tmp /var/tmp /run /dev/shm; do
  [ -d "$d" ] && mount -t tmpfs -o size=64m,mode=1777,nosuid,nodev flotilla-empty "$d"
done
cd /mnt
set +e
setpriv --reuid="$FLOTILLA_UID" --regid="$FLOTILLA_UID" --clear-groups --inh-caps=-all \
  --bounding-set=-all --no-new-privs -- \
  prlimit --cpu="$FLOTILLA_CPU" --as=2147483648 --nproc=128 --fsize=268435456 --nofile=1024 \
  --core=0 -- sh -c "$FLOTILLA_CMD"
rc=$?
exit $rc"#;

/// What a command did.
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome {
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    /// The answer a model reads.
    pub fn render(&self) -> String {
        let status = match (self.timed_out, self.exit_code) {
            (true, _) => "killed at the time limit".to_owned(),
            (false, Some(code)) => format!("exit code {code}"),
            (false, None) => "killed by a signal".to_owned(),
        };
        format!(
            "{status}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.stdout, self.stderr
        )
    }
}

/// The command runner of one installation: where the data directory is (hidden from commands).
#[derive(Clone, Debug)]
pub struct Commands {
    data_dir: PathBuf,
}

impl Commands {
    pub fn new(data_dir: PathBuf) -> Self {
        Self { data_dir }
    }

    /// Runs `command` in the workspace at `workspace` as the uid of `agent`.
    pub async fn run(
        &self,
        workspace: &Path,
        agent: uuid::Uuid,
        command: &str,
        timeout: Duration,
    ) -> Result<Outcome, String> {
        if command.trim().is_empty() {
            return Err("run_command needs a `command`".into());
        }
        let cpu = timeout.as_secs().max(1);
        let mut child = self
            .spawn(workspace, agent, command, cpu, Stdio::null())
            .await?;
        let out = capped(child.stdout.take());
        let err = capped(child.stderr.take());
        let waited = tokio::time::timeout(timeout, async {
            let (status, stdout, stderr) = tokio::join!(child.wait(), out, err);
            (status, stdout, stderr)
        })
        .await;
        match waited {
            Ok((status, stdout, stderr)) => {
                let status = status.map_err(|e| format!("run_command lost its process: {e}"))?;
                Ok(Outcome {
                    exit_code: status.code(),
                    timed_out: false,
                    stdout,
                    stderr,
                })
            }
            Err(_) => {
                // SIGKILL to unshare: its child, the namespace's first process, gets its
                // parent-death signal, and the kernel kills the rest of the namespace.
                let _ = child.start_kill();
                let _ = child.wait().await;
                Ok(Outcome {
                    exit_code: None,
                    timed_out: true,
                    stdout: String::new(),
                    stderr: String::new(),
                })
            }
        }
    }
}

impl Commands {
    /// Starts `command` in the sandbox with piped stdout and stderr (and `stdin`): the workspace
    /// handed to the agent's uid, `cpu` seconds of CPU at most. Killing the returned child
    /// (or dropping it) kills everything the command started.
    pub async fn spawn(
        &self,
        workspace: &Path,
        agent: uuid::Uuid,
        command: &str,
        cpu: u64,
        stdin: Stdio,
    ) -> Result<tokio::process::Child, String> {
        if command.len() > MAX_COMMAND || command.contains('\0') {
            return Err(format!(
                "a command is at most {MAX_COMMAND} bytes, without NUL characters"
            ));
        }
        if !running_as_root() {
            return Err(
                "commands are unavailable on this server: they need the server to run \
                        as root, to run them as a separate user in namespaces of their own"
                    .into(),
            );
        }
        let uid = agent_uid(agent);
        let ws = workspace.to_owned();
        tokio::task::spawn_blocking(move || hand_over(&ws, uid))
            .await
            .map_err(|e| format!("the workspace could not be prepared: {e}"))?
            .map_err(|e| format!("the workspace could not be prepared: {e}"))?;
        tokio::process::Command::new("unshare")
            .args([
                "--net",
                "--pid",
                "--mount",
                "--ipc",
                "--uts",
                "--fork",
                "--kill-child",
                "--mount-proc",
                "--propagation",
                "private",
                "--",
                "sh",
                "-c",
                SANDBOX,
            ])
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", "/mnt")
            .env("LANG", "C.UTF-8")
            .env("TERM", "dumb")
            .env("FLOTILLA_WS", workspace)
            .env("FLOTILLA_HIDE", &self.data_dir)
            .env("FLOTILLA_UID", uid.to_string())
            .env("FLOTILLA_CPU", cpu.to_string())
            .env("FLOTILLA_CMD", command)
            .current_dir("/")
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("the sandbox (unshare) could not start: {e}"))
    }
}

/// The first [`OUTPUT_CAP`] bytes of a pipe, read to its end so the writer never blocks.
async fn capped(pipe: Option<impl AsyncRead + Unpin>) -> String {
    let Some(mut pipe) = pipe else {
        return String::new();
    };
    let mut kept = Vec::new();
    let mut total = 0usize;
    let mut buf = [0u8; 8192];
    while let Ok(n) = pipe.read(&mut buf).await {
        if n == 0 {
            break;
        }
        total += n;
        let room = OUTPUT_CAP.saturating_sub(kept.len());
        kept.extend_from_slice(&buf[..n.min(room)]);
    }
    let mut text = String::from_utf8_lossy(&kept).into_owned();
    if total > OUTPUT_CAP {
        text.push_str(&format!("\n[output cut at {OUTPUT_CAP} bytes of {total}]"));
    }
    text
}

/// The uid an agent's commands run as.
pub fn agent_uid(agent: uuid::Uuid) -> u32 {
    let b = agent.as_bytes();
    BASE_UID + u32::from_le_bytes([b[0], b[1], b[2], b[3]]) % UID_RANGE
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Gives the workspace to `uid` (what the file tools wrote is root's), never following a
/// symlink.
fn hand_over(root: &Path, uid: u32) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(root)?;
    if !meta.is_dir() {
        return Err(std::io::Error::other("the workspace is not a directory"));
    }
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        std::os::unix::fs::lchown(&dir, Some(uid), Some(uid))?;
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let ty = entry.file_type()?;
            if ty.is_dir() {
                stack.push(entry.path());
            } else {
                std::os::unix::fs::lchown(entry.path(), Some(uid), Some(uid))?;
            }
        }
    }
    Ok(())
}
