//! Regression tests of the black-box probe's findings: each door it found open, shut.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A server function's refusal is `{"kind", "message"}`; REST's `{"error": {"code", "message"}}`.
async fn refusal(res: reqwest::Response) -> (StatusCode, String, Value) {
    let status = res.status();
    let body: Value = res.json().await.expect("a JSON error body");
    let message = body["error"]["message"]
        .as_str()
        .or(body["message"].as_str())
        .expect("a message")
        .to_owned();
    (status, message, body)
}

#[sqlx::test(migrations = false)]
async fn next_after_login_never_leaves_the_site(pool: PgPool) {
    let app = spawn_app(pool).await;
    for (next, expect) in [
        ("/tasks", "/tasks"),
        ("/\t/evil.example", "/"),
        ("/\\evil.example", "/"),
        ("//evil.example", "/"),
        ("/%2F/evil.example", "/"),
        ("/\r\nSet-Cookie: a=b", "/"),
        ("https://evil.example/", "/"),
    ] {
        let c = client();
        let res = c
            .post(app.url("/api/login"))
            .form(&[
                ("username", "admin"),
                ("password", ADMIN_PASSWORD),
                ("next", next),
            ])
            .send()
            .await
            .expect("an answer, even for a newline");
        assert!(
            res.status().is_redirection() || res.status().is_success(),
            "{next:?}: {}",
            res.status()
        );
        let location = res
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert_eq!(location, expect, "{next:?}");
    }
    // The login page pre-fills only what the login would accept.
    let page = client()
        .get(app.url("/login?next=%2F%09%2Fevil.example"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("evil.example"), "pre-filled the evil next");
}

#[sqlx::test(migrations = false)]
async fn nul_and_bad_text_are_422s_that_name_the_field(pool: PgPool) {
    let app = spawn_app(pool).await;
    let c = app.admin().await;
    let nul = "with a \u{0} inside it";
    let cases = [
        (
            "/api/v1/tasks",
            json!({ "description": nul }),
            "description",
        ),
        (
            "/api/v1/agents",
            json!({ "name": nul, "capabilities": ["data_analysis"] }),
            "name",
        ),
        (
            "/api/v1/agents",
            json!({ "name": "ok", "capabilities": ["data_analysis"], "system_prompt": nul }),
            "system_prompt",
        ),
        (
            "/api/v1/agents",
            json!({ "name": "ok", "capabilities": ["data_analysis"], "model": "x".repeat(100_000) }),
            "model",
        ),
        (
            "/api/v1/agents",
            json!({ "name": "ok", "capabilities": ["data_analysis"], "system_prompt": "x".repeat(200_000) }),
            "system_prompt",
        ),
        ("/api/v1/tokens", json!({ "name": nul }), "name"),
    ];
    for (path, body, field) in cases {
        let res = c.post(app.url(path)).json(&body).send().await.unwrap();
        let (status, message, body) = refusal(res).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{path} {field}: {body}"
        );
        assert!(message.contains(field), "{path}: {message}");
    }
    // A NUL in a login name is an ordinary failed login, not a database error.
    let res = app.login(&client(), "ad\u{0}min", "whatever it is").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = c
        .get(app.url("/api/v1/events?type=task%00"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[sqlx::test(migrations = false)]
async fn bodies_too_large_of_the_wrong_type_or_not_utf8_get_4xx_json(pool: PgPool) {
    let app = spawn_app(pool).await;
    let c = app.admin().await;
    // Raw invalid UTF-8 to a server function.
    let res = c
        .post(app.url("/api/tasks/submit"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(b"description=\xff\xfe\xfd summarise the numbers".to_vec())
        .send()
        .await
        .unwrap();
    let (status, message, _) = refusal(res).await;
    assert!(status.is_client_error(), "{status}");
    assert!(!message.to_lowercase().contains("utf8error"), "{message}");
    // Over the limit: refused with the limit, before anything reads it.
    let big = format!("description={}", "x".repeat(3 * 1024 * 1024));
    for path in ["/api/tasks/submit", "/api/v1/tasks"] {
        let res = c
            .post(app.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(big.clone())
            .send()
            .await
            .unwrap();
        let (status, message, _) = refusal(res).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        assert!(message.contains("1048576"), "{message}");
    }
    // The wrong content type.
    for (path, ctype, body) in [
        (
            "/api/v1/tasks",
            "text/plain",
            r#"{"description":"summarise the numbers"}"#,
        ),
        (
            "/api/tasks/submit",
            "application/json",
            r#"{"description":"x"}"#,
        ),
    ] {
        let res = c
            .post(app.url(path))
            .header("content-type", ctype)
            .body(body)
            .send()
            .await
            .unwrap();
        let (status, _, _) = refusal(res).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{path}");
    }
    // No Rust type names in what comes back.
    for (path, body) in [("/api/v1/agents", "[1, 2]"), ("/api/v1/tasks", "\"text\"")] {
        let res = c
            .post(app.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let (status, message, _) = refusal(res).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        for name in ["SpawnAgent", "Submit", "struct"] {
            assert!(!message.contains(name), "{message}");
        }
    }
    // A bad path id and a method the route lacks answer in the JSON shape too.
    let res = c
        .patch(app.url("/api/v1/users/not-a-uuid"))
        .json(&json!({ "role": "viewer" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(res).await, "invalid");
    let res = c.delete(app.url("/api/v1/tasks")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(error_code(res).await, "method_not_allowed");
}

/// A login from `addr`, as the trusted proxy in front of the app reports it.
async fn login_from(app: &TestApp, addr: &str, password: &str) -> reqwest::Response {
    client()
        .post(app.url("/api/v1/session"))
        .header("x-forwarded-for", addr)
        .json(&json!({ "username": "admin", "password": password }))
        .send()
        .await
        .unwrap()
}

#[sqlx::test(migrations = false)]
async fn guessing_from_one_address_never_locks_out_the_right_password_from_another(pool: PgPool) {
    let app = spawn_app_with(pool, &[("FLOTILLA_TRUSTED_PROXIES", "127.0.0.1")]).await;
    let attacker = "198.51.100.66";
    let mut throttled = None;
    for _ in 0..8 {
        let res = login_from(&app, attacker, "not the password").await;
        if res.status() == StatusCode::TOO_MANY_REQUESTS {
            throttled = Some(res);
            break;
        }
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let throttled = throttled.expect("the attacker is slowed down");
    let retry_after: u64 = throttled
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After in seconds");
    assert!((1..=900).contains(&retry_after), "{retry_after}");
    assert_eq!(error_code(throttled).await, "rate_limited");
    // The admin, from their own address, gets in with the right password at once.
    let res = login_from(&app, "203.0.113.10", ADMIN_PASSWORD).await;
    assert_eq!(res.status(), StatusCode::OK);
    // The attacker's own next wrong guess is still refused, and it waits longer.
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    assert_eq!(
        login_from(&app, attacker, "still not it").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let again = login_from(&app, attacker, "nor this").await;
    assert_eq!(again.status(), StatusCode::TOO_MANY_REQUESTS);
    let longer: u64 = again.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        longer > retry_after,
        "{longer} > {retry_after}: delays grow"
    );
}

#[sqlx::test(migrations = false)]
async fn forwarded_addresses_from_strangers_are_ignored(pool: PgPool) {
    // No trusted proxy: X-Forwarded-For changes nothing, every guess counts for 127.0.0.1.
    let app = spawn_app(pool).await;
    let mut limited = false;
    for i in 0..8 {
        let res = login_from(&app, &format!("198.51.100.{i}"), "wrong").await;
        limited |= res.status() == StatusCode::TOO_MANY_REQUESTS;
    }
    assert!(
        limited,
        "rotating X-Forwarded-For did not bypass the throttle"
    );
}

#[sqlx::test(migrations = false)]
async fn metrics_labels_are_bounded_and_a_token_guards_the_scrape(pool: PgPool) {
    let app = spawn_app_with(pool, &[("FLOTILLA_METRICS_TOKEN", "scrape-secret-1234")]).await;
    let c = client();
    let odd = reqwest::Method::from_bytes("X".repeat(20_000).as_bytes()).unwrap();
    let _ = c.request(odd, app.url("/api/v1/tasks")).send().await;
    let _ = c.get(app.url("/no/such/page/4242")).send().await;
    let res = c.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = c
        .get(app.url("/metrics"))
        .bearer_auth("not-it")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let text = c
        .get(app.url("/metrics"))
        .bearer_auth("scrape-secret-1234")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("flotilla_http_request_duration_seconds"));
    assert!(!text.contains("XXXXXXXX"), "the method became a label");
    assert!(!text.contains("4242"), "the raw path became a label");
    assert!(text.contains("method=\"other\""));
}

fn header<'a>(res: &'a reqwest::Response, name: &str) -> &'a str {
    res.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no {name} header"))
}

#[sqlx::test(migrations = false)]
async fn pages_and_api_answers_carry_security_headers(pool: PgPool) {
    let app = spawn_app(pool).await;
    let c = app.admin().await;
    let page = c.get(app.url("/")).send().await.unwrap();
    let csp = header(&page, "content-security-policy").to_owned();
    assert_eq!(header(&page, "x-frame-options"), "DENY");
    assert_eq!(header(&page, "x-content-type-options"), "nosniff");
    assert_eq!(header(&page, "referrer-policy"), "same-origin");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("'wasm-unsafe-eval'"), "{csp}");
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("'unsafe-eval'"),
        "{csp}"
    );
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|r| r.split('\'').next())
        .expect("a script nonce")
        .to_owned();
    let html = page.text().await.unwrap();
    assert!(
        html.contains(&format!("nonce=\"{nonce}\"")),
        "the scripts carry the header's nonce"
    );
    assert!(!html.contains(" style=\""), "no inline style attributes");
    let api = c.get(app.url("/api/v1/tasks")).send().await.unwrap();
    assert!(header(&api, "content-security-policy").starts_with("default-src 'none'"));
    assert_eq!(header(&api, "x-content-type-options"), "nosniff");
    assert!(
        api.headers().get("strict-transport-security").is_none(),
        "no HSTS over http"
    );
}

#[sqlx::test(migrations = false)]
async fn over_tls_the_cookie_is_host_prefixed_and_secure_and_hsts_is_sent(pool: PgPool) {
    let app = spawn_app_with(pool, &[("FLOTILLA_PUBLIC_URL", "https://flotilla.example")]).await;
    let res = app.login(&client(), "admin", ADMIN_PASSWORD).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().get("strict-transport-security").is_some());
    let cookie = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("__Host-flotilla_session="))
        .expect("a __Host- session cookie")
        .to_ascii_lowercase();
    assert!(cookie.contains("secure"), "{cookie}");
    assert!(cookie.contains("path=/"), "{cookie}");
    assert!(!cookie.contains("domain="), "{cookie}");
}

#[sqlx::test(migrations = false)]
async fn slow_clients_are_dropped_and_one_address_cannot_hold_every_connection(pool: PgPool) {
    let app = spawn_app_with(pool, &[("FLOTILLA_MAX_CONNECTIONS_PER_IP", "3")]).await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    // Headers never finished: the server hangs up after its header deadline.
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 512];
    let read = tokio::time::timeout(Duration::from_secs(20), slow.read(&mut buf))
        .await
        .expect("the server closed the connection before 20 s");
    assert!(matches!(read, Ok(_) | Err(_)));
    assert!(
        started.elapsed() >= Duration::from_secs(5),
        "not before the deadline"
    );
    drop(slow);
    // Three idle connections from one address are the cap; a fourth is closed at once.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    let mut fourth = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let n = tokio::time::timeout(Duration::from_secs(5), fourth.read(&mut buf))
        .await
        .expect("closed at once")
        .unwrap_or(0);
    assert_eq!(n, 0, "the fourth connection was closed");
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ok = client().get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(
        ok.status(),
        StatusCode::OK,
        "slots come back when connections close"
    );
}

#[sqlx::test(migrations = false)]
async fn the_overview_shows_build_and_user_count_to_admins_only(pool: PgPool) {
    let app = spawn_app(pool).await;
    let viewer = app.user_with_role("vera", "viewer").await;
    let admin = app.admin().await;
    let as_viewer: Value = viewer
        .get(app.url("/api/overview"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(as_viewer["users"].is_null(), "{as_viewer}");
    assert!(as_viewer["database"]["version"].is_null(), "{as_viewer}");
    let as_admin: Value = admin
        .get(app.url("/api/overview"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(as_admin["users"], 2);
    assert!(as_admin["database"]["version"].is_string());
}

/// Logs `username` in afresh and opens a stream on that session: its cookie and the stream.
async fn session_stream(app: &TestApp, username: &str) -> (String, crate::stream::Ws) {
    let res = app
        .login(&client(), username, "a long enough password")
        .await;
    let cookie = session_cookie(&res);
    let ws = crate::stream::connect(app, "", &[("cookie", &cookie)])
        .await
        .unwrap();
    (cookie, ws)
}

/// Waits for the server to close `ws`; returns the close code and reason.
async fn closed_within(ws: &mut crate::stream::Ws, secs: u64) -> (u16, String) {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, ws.next()).await {
            Err(_) => panic!("the stream was still open after {secs} s"),
            Ok(Some(Ok(Message::Close(Some(frame))))) => {
                return (u16::from(frame.code), frame.reason.to_string());
            }
            Ok(Some(Ok(Message::Close(None))) | None | Some(Err(_))) => {
                panic!("closed without a close code")
            }
            Ok(Some(Ok(_))) => {}
        }
    }
}

#[sqlx::test(migrations = false)]
async fn open_streams_close_when_their_credentials_end_even_in_another_process(pool: PgPool) {
    // The stream is held by `holder`; every revocation goes through `other`.
    let holder = spawn_app_with(pool.clone(), &[("FLOTILLA_ENGINE", "off")]).await;
    let other = spawn_app_with(pool.clone(), &[("FLOTILLA_ENGINE", "off")]).await;
    let admin = other.admin().await;

    // A token, revoked.
    let created = other.create_token(&admin, "stream").await;
    let bearer = format!("Bearer {}", created["token"].as_str().unwrap());
    let mut ws = crate::stream::connect(&holder, "", &[("authorization", &bearer)])
        .await
        .unwrap();
    let res = admin
        .delete(other.url(&format!(
            "/api/v1/tokens/{}",
            created["id"].as_str().unwrap()
        )))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    let (code, reason) = closed_within(&mut ws, 6).await;
    assert_eq!(code, 1008);
    assert!(reason.contains("revoked"), "{reason}");
    assert!(
        crate::stream::connect(&holder, "", &[("authorization", &bearer)])
            .await
            .is_err(),
        "no new stream with it"
    );

    // A session, logged out.
    let member = holder.user_with_role("mia", "member").await;
    let (cookie, mut ws) = session_stream(&holder, "mia").await;
    let logout = client()
        .delete(other.url("/api/v1/session"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert!(logout.status().is_success());
    let (code, reason) = closed_within(&mut ws, 6).await;
    assert_eq!(code, 1008);
    assert!(reason.contains("session"), "{reason}");

    // A role change.
    let (_, mut ws) = session_stream(&holder, "mia").await;
    let me: Value = member
        .get(holder.url("/api/v1/session"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let res = admin
        .patch(other.url(&format!("/api/v1/users/{}", me["id"].as_str().unwrap())))
        .json(&json!({ "role": "viewer" }))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    let (code, reason) = closed_within(&mut ws, 6).await;
    assert_eq!(code, 1008);
    assert!(reason.contains("role"), "{reason}");
}

#[sqlx::test(migrations = false)]
async fn every_change_names_who_made_it_and_events_filter_by_actor(pool: PgPool) {
    let app = spawn_app_with(pool, &[("FLOTILLA_ENGINE", "off")]).await;
    let member = app.user_with_role("moe", "member").await;
    let admin = app.admin().await;
    let id = app
        .submit(&member, "Summarise the quarterly numbers.")
        .await;
    let task = app.get_json(&admin, &format!("/api/v1/tasks/{id}")).await;
    assert_eq!(task["submitted_by"], "moe");
    let listed = app.get_json(&admin, "/api/v1/tasks").await;
    assert_eq!(listed["items"][0]["submitted_by"], "moe");
    // The admin cancels it through an API token: the event names the token too.
    let created = app.create_token(&admin, "ops-bot").await;
    let res = client()
        .post(app.url(&format!("/api/v1/tasks/{id}/cancel")))
        .bearer_auth(created["token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    app.settle_events(&admin).await;
    let events = app.get_json(&admin, "/api/v1/events?type=task").await;
    let by_kind = |kind: &str| {
        events["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["type"] == kind)
            .unwrap_or_else(|| panic!("no {kind} in {events:#}"))
            .clone()
    };
    assert_eq!(by_kind("task.submitted")["actor"], "moe");
    assert_eq!(by_kind("task.cancelled")["actor"], "admin");
    assert!(by_kind("task.cancelled")["actor_id"].is_string());
    assert_eq!(by_kind("task.cancelled")["actor_token"], "ops-bot");
    assert!(by_kind("task.submitted")["actor_token"].is_null());
    let mine = app.get_json(&admin, "/api/v1/events?actor=admin").await;
    let mine = mine["items"].as_array().unwrap();
    assert!(!mine.is_empty());
    assert!(mine.iter().all(|e| e["actor"] == "admin"), "{mine:#?}");
}
