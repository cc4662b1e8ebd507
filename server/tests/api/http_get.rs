//! The agents' `http_get` over real HTTP: internal addresses refused in every spelling, by name
//! and on every redirect hop; an explicitly allowed address reachable.

use axum::Router;
use axum::response::Redirect;
use axum::routing::get;
use server::tools::http_get::{HttpGet, Policy};

/// A web server on 127.0.0.1 with a page and redirects to places an agent may not go.
async fn site() -> u16 {
    let app = Router::new()
        .route("/page", get(|| async { "hello web" }))
        .route("/big", get(|| async { "x".repeat(300 * 1024) }))
        .route(
            "/to-other-loopback",
            get(|| async { Redirect::temporary("http://127.0.0.2:1/page") }),
        )
        .route(
            "/to-metadata",
            get(|| async { Redirect::temporary("http://169.254.169.254/latest/meta-data/") }),
        )
        .route(
            "/to-file",
            get(|| async { Redirect::temporary("file:///etc/passwd") }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    port
}

#[tokio::test]
async fn internal_addresses_are_refused_in_every_spelling_and_on_every_hop() {
    let port = site().await;
    let strict = HttpGet::new(Policy::default()).unwrap();
    for url in [
        format!("http://127.0.0.1:{port}/page"),
        format!("http://[::1]:{port}/page"),
        format!("http://[::ffff:127.0.0.1]:{port}/page"),
        format!("http://2130706433:{port}/page"),
        format!("http://0x7f.1:{port}/page"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://[fd00:ec2::254]/".to_owned(),
        // A name that resolves to loopback: refused by the resolver, nothing is connected.
        format!("http://localhost:{port}/page"),
        "file:///etc/passwd".to_owned(),
        "gopher://127.0.0.1:70/".to_owned(),
    ] {
        let err = strict.get(&url).await.expect_err(&url);
        assert!(
            err.contains("loopback")
                || err.contains("link-local")
                || err.contains("unique local")
                || err.contains("refused")
                || err.contains("only http and https"),
            "{url}: {err}"
        );
    }

    // Allowed exactly: the page, capped; each redirect out of bounds refused at its hop.
    let allowed = HttpGet::new(Policy {
        allow: vec!["127.0.0.1".parse().unwrap()],
    })
    .unwrap();
    let page = allowed
        .get(&format!("http://127.0.0.1:{port}/page"))
        .await
        .unwrap();
    assert!(
        page.starts_with("HTTP 200 OK") && page.ends_with("hello web"),
        "{page}"
    );
    let big = allowed
        .get(&format!("http://127.0.0.1:{port}/big"))
        .await
        .unwrap();
    assert!(big.ends_with("[truncated at 262144 bytes]"));
    // reqwest follows no scheme but http(s): the agent gets the redirect itself, unfollowed.
    let file = allowed
        .get(&format!("http://127.0.0.1:{port}/to-file"))
        .await
        .unwrap();
    assert!(
        file.starts_with("HTTP 307") && !file.contains("root:"),
        "{file}"
    );
    for hop in ["to-other-loopback", "to-metadata"] {
        let err = allowed
            .get(&format!("http://127.0.0.1:{port}/{hop}"))
            .await
            .expect_err(hop);
        assert!(
            err.contains("redirect refused") || err.contains("only http"),
            "{hop}: {err}"
        );
    }
}
