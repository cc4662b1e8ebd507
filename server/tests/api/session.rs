use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

#[sqlx::test(migrations = false)]
async fn the_bootstrap_admin_logs_in_and_sees_themself(pool: PgPool) {
    let app = spawn_app(pool).await;
    let c = client();
    let res = app.login(&c, "admin", ADMIN_PASSWORD).await;
    assert_eq!(res.status(), StatusCode::OK);
    let cookie = res
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("flotilla_session="))
        .expect("cookie")
        .to_ascii_lowercase();
    assert!(cookie.contains("httponly"), "{cookie}");
    assert!(cookie.contains("samesite=lax"), "{cookie}");
    assert!(
        !cookie.contains("secure"),
        "plain http must not set Secure: {cookie}"
    );

    let me: Value = app.get_json(&c, "/api/v1/session").await;
    assert_eq!(me["username"], "admin");
    assert_eq!(me["role"], "admin");
}

#[sqlx::test(migrations = false)]
async fn a_wrong_password_and_an_unknown_user_get_the_same_401(pool: PgPool) {
    let app = spawn_app(pool).await;
    let wrong = app.login(&client(), "admin", "not the password").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let wrong_body: Value = wrong.json().await.unwrap();
    let unknown = app.login(&client(), "nobody", "not the password").await;
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    let unknown_body: Value = unknown.json().await.unwrap();
    assert_eq!(
        wrong_body, unknown_body,
        "the answers must not reveal which accounts exist"
    );
    assert_eq!(wrong_body["error"]["code"], "unauthenticated");
}

#[sqlx::test(migrations = false)]
async fn repeated_failures_lock_the_account_even_for_the_right_password(pool: PgPool) {
    let app = spawn_app_with(pool, &[("FLOTILLA_LOGIN_MAX_FAILURES", "3")]).await;
    for _ in 0..3 {
        let res = app.login(&client(), "admin", "guess").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let res = app.login(&client(), "admin", ADMIN_PASSWORD).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(error_code(res).await, "rate_limited");
}

#[sqlx::test(migrations = false)]
async fn one_address_guessing_many_accounts_is_throttled(pool: PgPool) {
    let app = spawn_app_with(
        pool,
        &[
            ("FLOTILLA_LOGIN_MAX_FAILURES", "100"),
            ("FLOTILLA_LOGIN_MAX_FAILURES_PER_IP", "4"),
        ],
    )
    .await;
    for i in 0..4 {
        let res = app.login(&client(), &format!("user{i}"), "guess").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let res = app.login(&client(), "admin", ADMIN_PASSWORD).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[sqlx::test(migrations = false)]
async fn after_logout_a_replayed_cookie_is_refused(pool: PgPool) {
    let app = spawn_app(pool).await;
    let c = client();
    let res = app.login(&c, "admin", ADMIN_PASSWORD).await;
    let cookie = session_cookie(&res);
    let res = c.delete(app.url("/api/v1/session")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);

    let replay = crate::helpers::plain_client()
        .get(app.url("/api/v1/session"))
        .header(reqwest::header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(replay).await, "unauthenticated");
}

#[sqlx::test(migrations = false)]
async fn logging_in_again_issues_a_new_session_id_and_retires_the_old(pool: PgPool) {
    let app = spawn_app(pool).await;
    let c = client();
    let first = session_cookie(&app.login(&c, "admin", ADMIN_PASSWORD).await);
    let second = session_cookie(&app.login(&c, "admin", ADMIN_PASSWORD).await);
    assert_ne!(first, second);
    let old = crate::helpers::plain_client()
        .get(app.url("/api/v1/session"))
        .header(reqwest::header::COOKIE, &first)
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED);
    let current = c.get(app.url("/api/v1/session")).send().await.unwrap();
    assert_eq!(current.status(), StatusCode::OK);
}

#[sqlx::test(migrations = false)]
async fn a_session_past_its_absolute_lifetime_is_ended(pool: PgPool) {
    let app = spawn_app_with(pool, &[("FLOTILLA_SESSION_ABSOLUTE_SECS", "1")]).await;
    let c = app.admin().await;
    assert_eq!(
        c.get(app.url("/api/v1/session"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let res = c.get(app.url("/api/v1/session")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[sqlx::test(migrations = false)]
async fn an_idle_session_expires_server_side(pool: PgPool) {
    let app = spawn_app_with(pool, &[("FLOTILLA_SESSION_IDLE_SECS", "1")]).await;
    let c = client();
    let cookie = session_cookie(&app.login(&c, "admin", ADMIN_PASSWORD).await);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    // Replaying the cookie by hand: a browser would have dropped it, the server must too.
    let res = crate::helpers::plain_client()
        .get(app.url("/api/v1/session"))
        .header(reqwest::header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[sqlx::test(migrations = false)]
async fn a_state_change_from_a_foreign_origin_is_refused(pool: PgPool) {
    let app = spawn_app(pool).await;
    let res = client()
        .post(app.url("/api/v1/session"))
        .header("origin", "http://evil.example")
        .json(&json!({ "username": "admin", "password": ADMIN_PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    let admin = app.admin().await;
    for (origin, site) in [
        ("http://evil.example", None),
        ("null", None),
        ("", Some("cross-site")),
    ] {
        let mut req = admin
            .post(app.url("/api/v1/users"))
            .json(&json!({ "username": "mallory", "password": "a long enough password", "role": "admin" }));
        if !origin.is_empty() {
            req = req.header("origin", origin);
        }
        if let Some(site) = site {
            req = req.header("sec-fetch-site", site);
        }
        let res = req.send().await.unwrap();
        assert_eq!(
            res.status(),
            StatusCode::FORBIDDEN,
            "origin {origin:?} site {site:?}"
        );
        assert_eq!(error_code(res).await, "forbidden");
    }
    let mallory = count(
        &app.pool,
        "select count(*) from users where username = 'mallory'",
    )
    .await;
    assert_eq!(mallory, 0);

    let same_origin = admin
        .post(app.url("/api/v1/users"))
        .header("origin", app.base.clone())
        .json(
            &json!({ "username": "alice", "password": "a long enough password", "role": "member" }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(same_origin.status(), StatusCode::CREATED);
}

#[sqlx::test(migrations = false)]
async fn malformed_login_bodies_get_a_clear_4xx(pool: PgPool) {
    let app = spawn_app(pool).await;
    let res = client()
        .post(app.url("/api/v1/session"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert!(res.status().is_client_error(), "{}", res.status());
    assert_eq!(error_code(res).await, "invalid");
    let res = client()
        .post(app.url("/api/v1/session"))
        .json(&json!({ "username": "admin" }))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_client_error());
    assert_eq!(error_code(res).await, "invalid");
}

#[sqlx::test(migrations = false)]
async fn health_needs_no_session_but_the_api_does(pool: PgPool) {
    let app = spawn_app(pool).await;
    let c = client();
    assert_eq!(
        c.get(app.url("/healthz")).send().await.unwrap().status(),
        StatusCode::OK
    );
    let ready: Value = app.get_json(&c, "/readyz").await;
    assert_eq!(ready["status"], "ready");
    let res = c.get(app.url("/api/v1/users")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(res).await, "unauthenticated");
    let res = c
        .get(app.url("/api/v1/no-such-thing"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::UNAUTHORIZED,
        "unknown routes reveal nothing either"
    );
}

#[sqlx::test(migrations = false)]
async fn a_second_start_on_the_same_database_keeps_the_one_admin(pool: PgPool) {
    let _first = spawn_app(pool.clone()).await;
    let _second = spawn_app_with(
        pool.clone(),
        &[("FLOTILLA_ADMIN_PASSWORD", "another password here")],
    )
    .await;
    let admins = count(&pool, "select count(*) from users").await;
    assert_eq!(admins, 1);
}

#[sqlx::test(migrations = false)]
async fn server_function_arguments_that_do_not_decode_are_refused_with_a_422(pool: PgPool) {
    let app = spawn_app(pool).await;
    let c = app.admin().await;
    for (body, reason) in [
        ("verb=pause", "missing field `id`"),
        ("id=zzz&verb=pause", "UUID parsing failed"),
    ] {
        let res = c
            .post(app.url("/api/agents/command"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let err: Value = res.json().await.unwrap();
        assert_eq!(err["kind"], "invalid");
        assert!(err["message"].as_str().unwrap().contains(reason), "{err}");
    }
}
