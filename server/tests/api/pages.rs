use crate::helpers::*;
use reqwest::StatusCode;
use sqlx::PgPool;

#[sqlx::test(migrations = false)]
async fn pages_redirect_to_login_without_a_session(pool: PgPool) {
    let app = spawn_app(pool).await;
    let res = client().get(app.url("/users")).send().await.unwrap();
    assert!(res.status().is_redirection(), "{}", res.status());
    assert_eq!(res.headers()["location"], "/login?next=/users");
}

#[sqlx::test(migrations = false)]
async fn the_login_page_is_server_rendered_with_its_form(pool: PgPool) {
    let app = spawn_app(pool).await;
    let res = client().get(app.url("/login")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    assert!(html.contains(r#"name="username""#), "{html}");
    assert!(html.contains(r#"type="password""#));
    assert!(
        html.contains("/pkg/flotilla.js"),
        "hydration script is referenced"
    );
}

#[sqlx::test(migrations = false)]
async fn the_overview_renders_the_signed_in_user_and_database(pool: PgPool) {
    let app = spawn_app(pool).await;
    let admin = app.admin().await;
    let res = admin.get(app.url("/")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    assert!(html.contains("Overview"));
    assert!(
        html.contains("Connected"),
        "database status is rendered on the server"
    );
    assert!(html.contains(">admin<"));
}

#[sqlx::test(migrations = false)]
async fn an_unknown_page_is_a_404_not_a_500(pool: PgPool) {
    let app = spawn_app(pool).await;
    let admin = app.admin().await;
    let res = admin.get(app.url("/no/such/page")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}
