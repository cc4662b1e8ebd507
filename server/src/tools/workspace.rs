//! An agent's workspace: `<data>/workspaces/<agent>/` (mode 700, with `.agent/`, `projects/` and
//! `logs/`), and the file tools that work inside it. Every path is opened beneath the
//! workspace's directory handle (cap-std: openat2 with RESOLVE_BENEATH on Linux), so `..`,
//! absolute paths, and symlinks leading out are refused by the kernel, not by string checks; a
//! symlink as the last component is never followed, and only regular files are read or written.

use cap_std::ambient_authority;
use cap_std::fs::{Dir, OpenOptions, OpenOptionsExt};
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

/// The most a `read_file` returns, and the most a `write_file` writes.
pub const MAX_READ: u64 = 256 * 1024;
pub const MAX_WRITE: usize = 1024 * 1024;
/// The most entries `list_files` names.
pub const MAX_ENTRIES: usize = 500;

/// The directories every workspace starts with.
const LAYOUT: [&str; 3] = [".agent", "projects", "logs"];

#[derive(Debug)]
pub struct Workspace {
    dir: Dir,
    pub root: PathBuf,
}

impl Workspace {
    /// Opens (creating on first use) the workspace at `root`, mode 700.
    pub fn open(root: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(root)?;
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o700))?;
        let dir = Dir::open_ambient_dir(root, ambient_authority())?;
        for sub in LAYOUT {
            dir.create_dir_all(sub)?;
        }
        Ok(Self {
            dir,
            root: root.to_owned(),
        })
    }

    pub fn read_file(&self, path: &str) -> Result<String, String> {
        let rel = relative(path)?;
        let mut file = self
            .dir
            .open_with(&rel, OpenOptions::new().read(true).custom_flags(NO_FOLLOW))
            .map_err(|e| refused(path, &e))?;
        regular(&file, path)?;
        let mut bytes = Vec::new();
        (&mut file)
            .take(MAX_READ + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| refused(path, &e))?;
        let truncated = bytes.len() as u64 > MAX_READ;
        bytes.truncate(usize::try_from(MAX_READ).unwrap_or(usize::MAX));
        let mut text = String::from_utf8_lossy(&bytes).into_owned();
        if truncated {
            text.push_str(&format!("\n[truncated at {MAX_READ} bytes]"));
        }
        Ok(text)
    }

    pub fn write_file(&self, path: &str, content: &str) -> Result<String, String> {
        if content.len() > MAX_WRITE {
            return Err(format!(
                "{path}: content is {} bytes, more than the {MAX_WRITE} a write may be",
                content.len()
            ));
        }
        let rel = relative(path)?;
        if let Some(parent) = rel.parent().filter(|p| !p.as_os_str().is_empty()) {
            self.dir
                .create_dir_all(parent)
                .map_err(|e| refused(path, &e))?;
        }
        let mut file = self
            .dir
            .open_with(
                &rel,
                OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .custom_flags(NO_FOLLOW),
            )
            .map_err(|e| refused(path, &e))?;
        regular(&file, path)?;
        file.write_all(content.as_bytes())
            .map_err(|e| refused(path, &e))?;
        Ok(format!("wrote {} bytes to {path}", content.len()))
    }

    /// The entries of a directory (the workspace itself when `path` is empty), `/` after
    /// directories, sorted.
    pub fn list_files(&self, path: &str) -> Result<String, String> {
        let rel = if path.trim().is_empty() || path == "." {
            PathBuf::from(".")
        } else {
            relative(path)?
        };
        let entries = self.dir.read_dir(&rel).map_err(|e| refused(path, &e))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| refused(path, &e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == ".git" {
                continue;
            }
            let dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
            names.push(if dir { format!("{name}/") } else { name });
        }
        names.sort();
        let total = names.len();
        names.truncate(MAX_ENTRIES);
        let mut out = names.join("\n");
        if total > MAX_ENTRIES {
            out.push_str(&format!("\n[{} more not shown]", total - MAX_ENTRIES));
        }
        Ok(out)
    }
}

/// Never follow a symlink in the last component, and never block on a FIFO.
const NO_FOLLOW: i32 = libc::O_NOFOLLOW | libc::O_NONBLOCK;

/// A tool's path as a relative path: no NUL, not absolute, nothing under `.git/`. Whether it
/// stays inside is for the kernel to decide when it is opened.
fn relative(path: &str) -> Result<PathBuf, String> {
    if path.contains('\0') {
        return Err("the path contains a NUL byte".into());
    }
    if path.trim().is_empty() {
        return Err("the path is empty".into());
    }
    let p = Path::new(path);
    if p.is_absolute() {
        return Err(format!(
            "{path}: absolute paths are refused; paths are relative to the workspace"
        ));
    }
    if p.components()
        .any(|c| matches!(c, Component::Normal(n) if n == ".git"))
    {
        return Err(format!("{path}: .git is not for tools"));
    }
    Ok(p.to_owned())
}

fn regular(file: &cap_std::fs::File, path: &str) -> Result<(), String> {
    let meta = file.metadata().map_err(|e| refused(path, &e))?;
    if meta.is_file() {
        Ok(())
    } else {
        Err(format!("{path}: not a regular file"))
    }
}

/// An I/O refusal, worded for the model (the kernel's reason, no host paths).
fn refused(path: &str, e: &std::io::Error) -> String {
    let why = match e.raw_os_error() {
        Some(libc::ELOOP) => "a symlink is not followed".to_owned(),
        Some(libc::EXDEV) | Some(libc::EPERM) | Some(libc::EACCES) => {
            "outside the workspace or not permitted".to_owned()
        }
        _ if e.kind() == std::io::ErrorKind::PermissionDenied => {
            "outside the workspace or not permitted".to_owned()
        }
        _ if e.kind() == std::io::ErrorKind::NotFound => "no such file or directory".to_owned(),
        _ => e.kind().to_string(),
    };
    format!("{path}: {why}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workspace() -> (tempfile_dir::TempDir, Workspace) {
        let tmp = tempfile_dir::TempDir::new();
        let ws = Workspace::open(&tmp.path().join("ws")).unwrap();
        (tmp, ws)
    }

    /// A directory under the system temp dir, removed on drop.
    mod tempfile_dir {
        pub struct TempDir(std::path::PathBuf);
        impl TempDir {
            pub fn new() -> Self {
                let p = std::env::temp_dir().join(format!("flotilla-ws-{}", uuid::Uuid::new_v4()));
                std::fs::create_dir_all(&p).unwrap();
                Self(p)
            }
            pub fn path(&self) -> &std::path::Path {
                &self.0
            }
        }
        impl Drop for TempDir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    #[test]
    fn files_round_trip_inside_the_workspace() {
        let (_tmp, ws) = workspace();
        ws.write_file("projects/a/notes.txt", "hello").unwrap();
        assert_eq!(ws.read_file("projects/a/notes.txt").unwrap(), "hello");
        assert_eq!(
            ws.read_file("./projects/../projects/a/notes.txt").unwrap(),
            "hello"
        );
        let listing = ws.list_files("").unwrap();
        assert_eq!(listing, ".agent/\nlogs/\nprojects/");
        let mode = std::fs::metadata(&ws.root).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }

    #[test]
    fn hostile_paths_are_refused_and_nothing_outside_is_touched() {
        let (tmp, ws) = workspace();
        // A sibling sharing the workspace's name as a prefix, and a file outside it.
        let sibling = tmp.path().join("ws-sibling");
        std::fs::create_dir_all(&sibling).unwrap();
        std::fs::write(sibling.join("secret"), "s").unwrap();
        std::fs::write(tmp.path().join("outside"), "o").unwrap();
        std::os::unix::fs::symlink(tmp.path().join("outside"), ws.root.join("link")).unwrap();
        std::os::unix::fs::symlink(tmp.path(), ws.root.join("dirlink")).unwrap();
        for path in [
            "../outside",
            "../ws-sibling/secret",
            "projects/../../outside",
            "/etc/passwd",
            &tmp.path().join("outside").to_string_lossy(),
            "link",
            "dirlink/outside",
            "a\0b",
            ".git/config",
            "projects/.git/HEAD",
        ] {
            assert!(ws.read_file(path).is_err(), "read {path:?}");
            assert!(ws.write_file(path, "pwned").is_err(), "write {path:?}");
        }
        assert!(ws.list_files("..").is_err());
        assert!(ws.list_files("dirlink").is_err());
        assert_eq!(
            std::fs::read_to_string(tmp.path().join("outside")).unwrap(),
            "o"
        );
        assert_eq!(
            std::fs::read_to_string(sibling.join("secret")).unwrap(),
            "s"
        );
        assert!(!tmp.path().join("pwned").exists());
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let (_tmp, ws) = workspace();
        let fifo = ws.root.join("pipe");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        assert!(
            ws.read_file("pipe")
                .unwrap_err()
                .contains("not a regular file")
        );
        assert!(ws.write_file("pipe", "x").is_err());
    }

    #[test]
    fn a_symlink_swapped_in_while_writing_never_lets_a_write_out() {
        let (tmp, ws) = workspace();
        let outside = tmp.path().join("target");
        std::fs::create_dir_all(&outside).unwrap();
        let swap_root = ws.root.clone();
        let out = outside.clone();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopper = stop.clone();
        let swapper = std::thread::spawn(move || {
            let d = swap_root.join("projects/d");
            while !stopper.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = std::fs::remove_dir_all(&d);
                let _ = std::fs::remove_file(&d);
                let _ = std::fs::create_dir_all(&d);
                let _ = std::fs::remove_dir(&d);
                let _ = std::os::unix::fs::symlink(&out, &d);
            }
        });
        for _ in 0..2000 {
            let _ = ws.write_file("projects/d/f", "x");
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        swapper.join().unwrap();
        assert!(
            !outside.join("f").exists(),
            "a write escaped through the swapped symlink"
        );
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any path a model sends is refused with a reason or opened beneath the workspace; a
        /// file outside it is never read or written.
        #[test]
        fn any_path_stays_inside_or_is_refused(path in "\\PC{0,40}", dots in "(\\.\\./){0,4}[a-z]{0,3}") {
            let tmp = std::env::temp_dir().join(format!("flotilla-wsp-{}", uuid::Uuid::new_v4()));
            let ws = Workspace::open(&tmp.join("ws")).unwrap();
            std::fs::write(tmp.join("outside"), "o").unwrap();
            for p in [&path, &dots] {
                if let Ok(text) = ws.read_file(p) {
                    prop_assert_ne!(text, "o");
                }
                let _ = ws.write_file(p, "w");
                let _ = ws.list_files(p);
            }
            prop_assert_eq!(std::fs::read_to_string(tmp.join("outside")).unwrap(), "o");
            std::fs::remove_dir_all(&tmp).unwrap();
        }
    }
}
