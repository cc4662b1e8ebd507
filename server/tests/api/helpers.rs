use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use server::config::Config;
use server::startup::{Application, Database};
use sqlx::PgPool;

pub const ADMIN_PASSWORD: &str = "the bootstrap admin password";

pub struct TestApp {
    pub base: String,
    pub pool: PgPool,
    pub engine: Option<server::engine::Engine>,
    pub supervisor: std::sync::Arc<server::supervisor::Supervisor>,
}

/// Builds and starts the application with `overrides` on top of the test defaults.
pub async fn spawn_app_with(pool: PgPool, overrides: &[(&str, &str)]) -> TestApp {
    spawn_app_until(pool, overrides, std::future::pending())
        .await
        .0
}

/// Like [`spawn_app_with`], running until `stop` resolves; the handle ends once it has
/// shut down (the engine drained), as a process would.
pub async fn spawn_app_until(
    pool: PgPool,
    overrides: &[(&str, &str)],
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> (TestApp, tokio::task::JoinHandle<()>) {
    let mut env: Vec<(String, String)> = vec![
        ("FLOTILLA_ADDR".into(), "127.0.0.1:0".into()),
        ("FLOTILLA_ADMIN_PASSWORD".into(), ADMIN_PASSWORD.into()),
        ("FLOTILLA_DATA_DIR".into(), test_data_dir()),
        (
            "FLOTILLA_LOG".into(),
            std::env::var("TEST_LOG").unwrap_or_else(|_| "off".into()),
        ),
    ];
    env.extend(
        overrides
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let config = Config::from_lookup(|key| {
        env.iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    })
    .expect("test config");
    if std::env::var("TEST_LOG").is_ok() {
        server::telemetry::init(&config.log);
    }
    let app = Application::build(config, Database::from_pool(pool.clone()))
        .await
        .expect("application builds");
    let base = format!("http://127.0.0.1:{}", app.port());
    let (engine, supervisor) = (app.engine(), app.supervisor());
    let running = tokio::spawn(async move {
        let _ = app.run_until_stopped(stop).await;
    });
    (
        TestApp {
            base,
            pool,
            engine,
            supervisor,
        },
        running,
    )
}

/// Where test processes keep the master key and workspaces: outside the source tree, and one
/// place, so processes sharing a database share the key.
pub fn test_data_dir() -> String {
    std::env::temp_dir()
        .join("flotilla-tests")
        .to_string_lossy()
        .into_owned()
}

pub async fn spawn_app(pool: PgPool) -> TestApp {
    spawn_app_with(pool, &[]).await
}

/// A plain client (no cookies, redirects followed).
pub fn plain_client() -> Client {
    server::install_tls_provider();
    Client::new()
}

/// A client that keeps cookies, like a browser tab, but does not follow redirects so tests
/// can see them.
pub fn client() -> Client {
    server::install_tls_provider();
    Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// `GET path` as `client`, parsed as JSON.
    pub async fn get_json(&self, client: &Client, path: &str) -> Value {
        client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("json body")
    }

    /// Creates an API token named `name` from `client`'s session: `{"id", "name", "token"}`.
    pub async fn create_token(&self, client: &Client, name: &str) -> Value {
        let res = client
            .post(self.url("/api/v1/tokens"))
            .json(&json!({ "name": name }))
            .send()
            .await
            .expect("request");
        assert!(res.status().is_success(), "token refused: {}", res.status());
        res.json().await.expect("json")
    }

    pub async fn login(&self, client: &Client, username: &str, password: &str) -> Response {
        client
            .post(self.url("/api/v1/session"))
            .json(&json!({ "username": username, "password": password }))
            .send()
            .await
            .expect("request")
    }

    /// A client logged in as the bootstrap admin.
    pub async fn admin(&self) -> Client {
        let c = client();
        let res = self.login(&c, "admin", ADMIN_PASSWORD).await;
        assert_eq!(res.status(), StatusCode::OK);
        c
    }

    /// Creates a user through the admin API and returns a client logged in as them.
    pub async fn user_with_role(&self, username: &str, role: &str) -> Client {
        let admin = self.admin().await;
        let res = admin
            .post(self.url("/api/v1/users"))
            .json(&json!({ "username": username, "password": "a long enough password", "role": role }))
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), StatusCode::CREATED, "{:?}", res.text().await);
        let c = client();
        let res = self.login(&c, username, "a long enough password").await;
        assert_eq!(res.status(), StatusCode::OK);
        c
    }
}

/// The `{"error": {"code", "message"}}` body of a failed call, asserting its shape.
pub async fn error_code(res: Response) -> String {
    let body: Value = res.json().await.expect("json error body");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    body["error"]["code"]
        .as_str()
        .expect("error code")
        .to_owned()
}

/// The session cookie's `name=value`, from a login response.
pub fn session_cookie(res: &Response) -> String {
    res.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("flotilla_session="))
        .and_then(|v| v.split(';').next())
        .expect("session cookie set")
        .to_owned()
}

/// Polls `GET path` until `done(body)` holds, for at most `secs` seconds.
pub async fn wait_for(
    client: &Client,
    url: &str,
    secs: u64,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        let body: Value = client
            .get(url)
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("json");
        if done(&body) {
            return body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "gave up waiting on {url}: {body:#}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

impl TestApp {
    /// Waits until the REST pager serves every event committed so far (it reads only as far as
    /// the event hub has released, a few milliseconds behind the commits).
    pub async fn settle_events(&self, client: &Client) {
        let newest: i64 = sqlx::query_scalar("select coalesce(max(seq), 0) from events")
            .fetch_one(&self.pool)
            .await
            .expect("newest seq");
        if newest > 0 {
            let url = self.url(&format!("/api/v1/events?after={}&limit=1", newest - 1));
            wait_for(client, &url, 10, |b| {
                b["items"].as_array().is_some_and(|i| !i.is_empty())
            })
            .await;
        }
    }

    /// Submits a task as `client` and returns its id.
    pub async fn submit(&self, client: &Client, description: &str) -> String {
        let res = client
            .post(self.url("/api/v1/tasks"))
            .json(&json!({ "description": description }))
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), StatusCode::CREATED);
        let body: Value = res.json().await.expect("json");
        assert_eq!(body["status"], "pending");
        body["id"].as_str().expect("id").to_owned()
    }

    /// Waits until the task is in a final state and returns it.
    pub async fn finished(&self, client: &Client, id: &str) -> Value {
        wait_for(client, &self.url(&format!("/api/v1/tasks/{id}")), 30, |t| {
            matches!(
                t["status"].as_str(),
                Some("completed" | "failed" | "cancelled")
            )
        })
        .await
    }
}

/// The subtask with `key` in a task body.
pub fn subtask<'a>(task: &'a Value, key: &str) -> &'a Value {
    task["subtasks"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["key"] == key))
        .unwrap_or_else(|| panic!("no subtask {key} in {task:#}"))
}

/// `select count(*) …` against the test database.
pub async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(pool)
        .await
        .expect("count query")
}
