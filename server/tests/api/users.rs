use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

#[sqlx::test(migrations = false)]
async fn an_admin_creates_users_and_changes_their_roles(pool: PgPool) {
    let app = spawn_app(pool).await;
    let admin = app.admin().await;
    let res = admin
        .post(app.url("/api/v1/users"))
        .json(
            &json!({ "username": "Alice", "password": "a long enough password", "role": "member" }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let alice: Value = res.json().await.unwrap();
    assert_eq!(
        alice["username"], "alice",
        "usernames are stored lowercased"
    );
    assert_eq!(alice["role"], "member");

    let id = alice["id"].as_str().unwrap();
    let res = admin
        .patch(app.url(&format!("/api/v1/users/{id}")))
        .json(&json!({ "role": "viewer" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let list: Value = app.get_json(&admin, "/api/v1/users").await;
    let roles: Vec<(String, String)> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["username"].as_str().unwrap().into(),
                u["role"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        roles,
        vec![
            ("admin".into(), "admin".into()),
            ("alice".into(), "viewer".into())
        ]
    );
}

#[sqlx::test(migrations = false)]
async fn bad_user_input_gets_a_reason_and_a_4xx(pool: PgPool) {
    let app = spawn_app(pool).await;
    let admin = app.admin().await;
    let cases = [
        (
            json!({ "username": "al", "password": "a long enough password", "role": "member" }),
            422,
            "username must be",
        ),
        (
            json!({ "username": "bob", "password": "short", "role": "member" }),
            422,
            "password must be",
        ),
        (
            json!({ "username": "bob", "password": "a long enough password", "role": "root" }),
            422,
            "unknown role",
        ),
        (
            json!({ "username": "Admin", "password": "a long enough password", "role": "member" }),
            409,
            "already exists",
        ),
    ];
    for (body, status, reason) in cases {
        let res = admin
            .post(app.url("/api/v1/users"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), status, "{body}");
        let err: Value = res.json().await.unwrap();
        assert!(
            err["error"]["message"].as_str().unwrap().contains(reason),
            "{err}"
        );
    }
    let res = admin
        .patch(app.url(&format!("/api/v1/users/{}", uuid::Uuid::new_v4())))
        .json(&json!({ "role": "viewer" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = admin
        .patch(app.url("/api/v1/users/not-a-uuid"))
        .json(&json!({ "role": "viewer" }))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_client_error());
}

#[sqlx::test(migrations = false)]
async fn an_admin_cannot_demote_themself(pool: PgPool) {
    let app = spawn_app(pool).await;
    let admin = app.admin().await;
    let me: Value = app.get_json(&admin, "/api/v1/session").await;
    let res = admin
        .patch(app.url(&format!("/api/v1/users/{}", me["id"].as_str().unwrap())))
        .json(&json!({ "role": "member" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CONFLICT);
}

#[sqlx::test(migrations = false)]
async fn a_viewer_can_look_but_not_change_anything(pool: PgPool) {
    let app = spawn_app(pool).await;
    let viewer = app.user_with_role("vera", "viewer").await;
    assert_eq!(
        viewer
            .get(app.url("/api/v1/session"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        viewer.get(app.url("/")).send().await.unwrap().status(),
        StatusCode::OK
    );

    let create = viewer
        .post(app.url("/api/v1/users"))
        .json(&json!({ "username": "eve", "password": "a long enough password", "role": "admin" }))
        .send()
        .await
        .unwrap();
    assert_eq!(create.status(), StatusCode::FORBIDDEN);
    // The same refusal through the server function the users page calls.
    let sfn = viewer
        .post(app.url("/api/users/create"))
        .form(&[
            ("username", "eve"),
            ("password", "a long enough password"),
            ("role", "admin"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(sfn.status(), StatusCode::FORBIDDEN);
    let list = viewer.get(app.url("/api/v1/users")).send().await.unwrap();
    assert_eq!(
        list.status(),
        StatusCode::FORBIDDEN,
        "the user list is for admins"
    );
    let eve = count(
        &app.pool,
        "select count(*) from users where username = 'eve'",
    )
    .await;
    assert_eq!(eve, 0);

    let out = viewer
        .delete(app.url("/api/v1/session"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.status(),
        StatusCode::NO_CONTENT,
        "viewers may still log out"
    );
}

#[sqlx::test(migrations = false)]
async fn a_member_cannot_administer_users(pool: PgPool) {
    let app = spawn_app(pool).await;
    let member = app.user_with_role("mia", "member").await;
    let res = member
        .post(app.url("/api/v1/users"))
        .json(&json!({ "username": "eve", "password": "a long enough password", "role": "admin" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(res).await, "forbidden");
}
