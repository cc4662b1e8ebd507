//! A private PostgreSQL cluster under the data directory, for zero-setup starts and for tests.
//!
//! Uses the Postgres binaries installed on the machine (found on `PATH` or in the usual
//! versioned directories, or `FLOTILLA_PG_BIN`). Postgres refuses to run as root, so when we are
//! root the cluster belongs to the `postgres` system user and every command runs through
//! `runuser`. The cluster listens on 127.0.0.1 only, with a generated superuser password.

use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use tokio::process::Command;

/// The system account that owns the cluster when we run as root.
const PG_OS_USER: &str = "postgres";
/// The cluster's superuser role and the application database.
const PG_ROLE: &str = "flotilla";
pub const APP_DATABASE: &str = "flotilla";

#[derive(Debug, thiserror::Error)]
pub enum EmbeddedPgError {
    #[error(
        "no PostgreSQL server binaries (initdb, pg_ctl) found on PATH, in FLOTILLA_PG_BIN or in \
         /usr/lib/postgresql/*/bin. Install them (Debian/Ubuntu: `apt-get install postgresql`) \
         or set DATABASE_URL to use an existing database"
    )]
    NoBinaries,
    #[error(
        "running as root, but the '{PG_OS_USER}' system user (which must own the cluster, since \
         Postgres refuses root) does not exist; create it or set DATABASE_URL"
    )]
    NoPostgresUser,
    #[error("{what} failed: {detail}")]
    Command { what: String, detail: String },
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
}

/// Options for [`EmbeddedPostgres::start`].
#[derive(Clone, Copy, Debug, Default)]
pub struct StartOptions {
    /// Turn durability off (`fsync`, `synchronous_commit`, `full_page_writes`): for throwaway
    /// test clusters only, where it makes them several times faster.
    pub unsafe_fast: bool,
}

/// A running cluster. Stop it with [`EmbeddedPostgres::stop`]; a cluster that was already
/// running when we came (another process on the same data directory) is left running.
#[derive(Debug)]
pub struct EmbeddedPostgres {
    bin_dir: PathBuf,
    pgdata: PathBuf,
    port: u16,
    password: SecretString,
    run_as_postgres: bool,
    owned: bool,
}

impl EmbeddedPostgres {
    /// Creates the cluster on first use, starts it (or joins it if already running), and makes
    /// sure the application database exists.
    pub async fn start(data_dir: &Path, opts: StartOptions) -> Result<Self, EmbeddedPgError> {
        let bin_dir = find_bin_dir().ok_or(EmbeddedPgError::NoBinaries)?;
        std::fs::create_dir_all(data_dir)
            .map_err(|e| EmbeddedPgError::Io(format!("creating {}", data_dir.display()), e))?;
        let data_dir = data_dir
            .canonicalize()
            .map_err(|e| EmbeddedPgError::Io(format!("resolving {}", data_dir.display()), e))?;
        let run_as_postgres = running_as_root(&data_dir);
        if run_as_postgres && !user_exists(PG_OS_USER).await {
            return Err(EmbeddedPgError::NoPostgresUser);
        }
        let pgdata = cluster_dir(&data_dir, run_as_postgres).await?;
        let password = load_or_create_password(&data_dir)?;
        let mut pg = Self {
            bin_dir,
            pgdata,
            port: 0,
            password,
            run_as_postgres,
            owned: true,
        };
        if !pg.pgdata.join("PG_VERSION").exists() {
            pg.init().await?;
        }
        match pg.running_port() {
            Some(port) if pg.pg_ctl(&["status"]).await.is_ok() => {
                tracing::info!(
                    port,
                    "joining the embedded Postgres that is already running"
                );
                pg.port = port;
                pg.owned = false;
            }
            _ => pg.launch(opts).await?,
        }
        pg.ensure_database(APP_DATABASE).await?;
        Ok(pg)
    }

    /// A connection URL for `database` on this cluster.
    pub fn url(&self, database: &str) -> SecretString {
        SecretString::from(format!(
            "postgres://{PG_ROLE}:{}@127.0.0.1:{}/{database}",
            self.password.expose_secret(),
            self.port
        ))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the cluster if this process started it (fast shutdown: sessions are rolled back,
    /// committed data is safe).
    pub async fn stop(self) -> Result<(), EmbeddedPgError> {
        if self.owned {
            self.pg_ctl(&["stop", "-m", "fast", "-w", "-t", "60"])
                .await?;
            tracing::info!("embedded Postgres stopped");
        }
        Ok(())
    }

    async fn init(&self) -> Result<(), EmbeddedPgError> {
        tracing::info!(dir = %self.pgdata.display(), "creating the embedded Postgres cluster");
        let io = |what: &str| {
            let what = format!("{what} {}", self.pgdata.display());
            move |e| EmbeddedPgError::Io(what, e)
        };
        std::fs::create_dir_all(&self.pgdata).map_err(io("creating"))?;
        std::fs::set_permissions(&self.pgdata, std::fs::Permissions::from_mode(0o700))
            .map_err(io("restricting"))?;
        // initdb reads the superuser password from a file: beside the (still empty) cluster
        // directory, readable only by the cluster's owner.
        let pwfile = self.pgdata.with_extension("initdb-pw");
        std::fs::write(&pwfile, self.password.expose_secret())
            .and_then(|()| {
                std::fs::set_permissions(&pwfile, std::fs::Permissions::from_mode(0o600))
            })
            .map_err(io("writing the password file beside"))?;
        if self.run_as_postgres {
            run(
                "chown",
                Command::new("chown")
                    .arg("-R")
                    .arg(PG_OS_USER)
                    .arg(&self.pgdata)
                    .arg(&pwfile),
            )
            .await?;
        }
        let initdb = self.bin_dir.join("initdb");
        let result = run(
            "initdb",
            self.command(&initdb)
                .arg("-D")
                .arg(&self.pgdata)
                .args([
                    "-U",
                    PG_ROLE,
                    "-E",
                    "UTF8",
                    "--no-locale",
                    "--auth=scram-sha-256",
                ])
                .arg(format!("--pwfile={}", pwfile.display())),
        )
        .await;
        let _ = std::fs::remove_file(&pwfile);
        result
    }

    async fn launch(&mut self, opts: StartOptions) -> Result<(), EmbeddedPgError> {
        self.port = free_port()?;
        // Autovacuum looks every 10 s instead of every minute: the queue tables churn, and dead
        // entries piling up in their partial indexes slow every claim until they are vacuumed.
        let mut options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k '' -c max_connections=200 \
             -c autovacuum_naptime=10s",
            self.port
        );
        // Server settings of the operator's own (`-c name=value …`), appended last so they win:
        // memory sizes, or a statement profiler while measuring.
        if let Ok(extra) = std::env::var("FLOTILLA_PG_EXTRA_OPTIONS") {
            options.push(' ');
            options.push_str(&extra);
        }
        if opts.unsafe_fast {
            options.push_str(" -c fsync=off -c synchronous_commit=off -c full_page_writes=off");
        }
        let log = self.pgdata.join("server.log");
        let log = log.to_string_lossy().into_owned();
        self.pg_ctl(&["start", "-w", "-t", "60", "-l", &log, "-o", &options])
            .await?;
        tracing::info!(port = self.port, "embedded Postgres started");
        Ok(())
    }

    /// The port in `postmaster.pid` (line 4), if the file exists.
    fn running_port(&self) -> Option<u16> {
        let pid = std::fs::read_to_string(self.pgdata.join("postmaster.pid")).ok()?;
        pid.lines().nth(3)?.trim().parse().ok()
    }

    pub async fn ensure_database(&self, name: &str) -> Result<(), EmbeddedPgError> {
        use sqlx::Connection;
        let admin_url = self.url("postgres");
        let db_err = |e: sqlx::Error| EmbeddedPgError::Command {
            what: format!("creating database {name}"),
            detail: e.to_string(),
        };
        let mut conn = sqlx::PgConnection::connect(admin_url.expose_secret())
            .await
            .map_err(db_err)?;
        let exists: bool =
            sqlx::query_scalar("select exists(select 1 from pg_database where datname = $1)")
                .bind(name)
                .fetch_one(&mut conn)
                .await
                .map_err(db_err)?;
        if !exists {
            // Identifiers cannot be bound; `name` is one of our constants, quoted anyway.
            sqlx::query(&format!(
                "create database \"{}\"",
                name.replace('"', "\"\"")
            ))
            .execute(&mut conn)
            .await
            .map_err(db_err)?;
        }
        Ok(())
    }

    async fn pg_ctl(&self, args: &[&str]) -> Result<(), EmbeddedPgError> {
        let pg_ctl = self.bin_dir.join("pg_ctl");
        run(
            &format!("pg_ctl {}", args.first().copied().unwrap_or_default()),
            self.command(&pg_ctl).arg("-D").arg(&self.pgdata).args(args),
        )
        .await
    }

    /// A command that runs as the cluster's owner.
    fn command(&self, program: &Path) -> Command {
        if self.run_as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", PG_OS_USER, "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    }
}

async fn run(what: &str, cmd: &mut Command) -> Result<(), EmbeddedPgError> {
    let out = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| EmbeddedPgError::Io(format!("running {what}"), e))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(EmbeddedPgError::Command {
            what: what.to_owned(),
            detail: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stderr).trim(),
                String::from_utf8_lossy(&out.stdout).trim()
            ),
        })
    }
}

/// The directory holding `initdb` and `pg_ctl`: `FLOTILLA_PG_BIN`, then `PATH` (following
/// symlinks, as Debian links `/usr/local/bin/initdb` into a versioned directory), then the usual
/// install locations, newest version first.
pub fn find_bin_dir() -> Option<PathBuf> {
    let has_tools = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(dir) = std::env::var_os("FLOTILLA_PG_BIN").map(PathBuf::from) {
        return has_tools(&dir).then_some(dir);
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    for dir in on_path {
        if let Ok(real) = dir.join("pg_ctl").canonicalize()
            && let Some(parent) = real.parent()
            && has_tools(parent)
        {
            return Some(parent.to_path_buf());
        }
    }
    let mut candidates: Vec<(u32, PathBuf)> = Vec::new();
    for root in [
        "/usr/lib/postgresql",
        "/usr/local/lib/postgresql",
        "/opt/postgresql",
    ] {
        let Ok(entries) = std::fs::read_dir(root) else {
            continue;
        };
        for entry in entries.flatten() {
            let version = entry
                .file_name()
                .to_string_lossy()
                .parse::<u32>()
                .unwrap_or(0);
            candidates.push((version, entry.path().join("bin")));
        }
    }
    candidates.sort_by_key(|c| std::cmp::Reverse(c.0));
    candidates
        .into_iter()
        .map(|(_, dir)| dir)
        .chain([PathBuf::from("/usr/local/pgsql/bin")])
        .find(|d| has_tools(d))
}

/// Whether this process is root, judged by the owner of a directory it just created.
fn running_as_root(created_dir: &Path) -> bool {
    std::fs::metadata(created_dir).is_ok_and(|m| m.uid() == 0)
}

async fn user_exists(name: &str) -> bool {
    Command::new("id")
        .arg("-u")
        .arg(name)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success())
}

/// Where the cluster lives: `<data_dir>/postgres`, unless we are root and the `postgres` user
/// cannot reach `data_dir` (e.g. under a private `/root`), in which case a directory under
/// `/var/lib/flotilla` named after `data_dir` is used and logged.
async fn cluster_dir(data_dir: &Path, as_postgres: bool) -> Result<PathBuf, EmbeddedPgError> {
    let preferred = data_dir.join("postgres");
    if !as_postgres {
        return Ok(preferred);
    }
    let reachable = Command::new("runuser")
        .args(["-u", PG_OS_USER, "--", "test", "-x"])
        .arg(data_dir)
        .status()
        .await
        .is_ok_and(|s| s.success());
    if reachable {
        return Ok(preferred);
    }
    let digest = data_dir
        .to_string_lossy()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    let fallback = PathBuf::from(format!("/var/lib/flotilla/pg-{digest:016x}"));
    tracing::warn!(
        data_dir = %data_dir.display(),
        cluster = %fallback.display(),
        "the postgres user cannot reach the data directory; keeping the cluster elsewhere"
    );
    std::fs::create_dir_all("/var/lib/flotilla")
        .map_err(|e| EmbeddedPgError::Io("creating /var/lib/flotilla".into(), e))?;
    Ok(fallback)
}

/// The superuser password, generated on first start and kept beside the cluster (mode 600).
fn load_or_create_password(data_dir: &Path) -> Result<SecretString, EmbeddedPgError> {
    let path = data_dir.join("postgres-password");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        return Ok(SecretString::from(existing.trim().to_owned()));
    }
    let password: String = rand::thread_rng()
        .sample_iter(rand::distributions::Alphanumeric)
        .take(32)
        .map(char::from)
        .collect();
    std::fs::write(&path, &password)
        .and_then(|()| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)))
        .map_err(|e| EmbeddedPgError::Io(format!("writing {}", path.display()), e))?;
    Ok(SecretString::from(password))
}

fn free_port() -> Result<u16, EmbeddedPgError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| EmbeddedPgError::Io("finding a free port".into(), e))
}
