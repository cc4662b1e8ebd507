//! Every REST route and every server function, fed arbitrary bytes and Unicode (NUL, invalid
//! UTF-8, huge strings, arbitrary JSON), answers in its JSON error shape and never with a 5xx.
//! The REST routes come from the router's own table and the server functions from their
//! registry, so a route added later is covered without touching this file.

use crate::helpers::*;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use reqwest::Method;
use serde_json::Value;
use sqlx::PgPool;

/// Requests per route and run (a fresh random set each run).
const CASES_PER_ROUTE: usize = 32;

/// Field names the handlers read, so generated objects get past the first decode sometimes.
const FIELDS: [&str; 20] = [
    "description",
    "priority",
    "name",
    "capabilities",
    "provider",
    "model",
    "system_prompt",
    "parent_id",
    "username",
    "password",
    "role",
    "next",
    "id",
    "verb",
    "after",
    "type",
    "severity",
    "limit",
    "cursor",
    "status",
];

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => any::<String>(),
        2 => "\\PC{0,30}",
        1 => "[\\x00-\\x1f\\x7f]{1,6}",
        1 => Just("\u{0}".to_owned()),
        1 => Just("\u{212A}\u{130}\u{23A}".to_owned()),
        1 => Just("x".repeat(100_000)),
        1 => Just(uuid::Uuid::new_v4().to_string()),
        1 => (0i64..20).prop_map(|n| n.to_string()),
    ]
}

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        let key = prop_oneof![3 => proptest::sample::select(&FIELDS[..]).prop_map(str::to_owned), 1 => text()];
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            proptest::collection::vec((key, inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// Percent-encodes every byte, so any text reaches the server as exactly those bytes.
fn encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02X}")).collect()
}

/// A query string or form body: known or arbitrary keys, arbitrary values, sometimes bytes
/// that are not UTF-8.
fn pairs() -> impl Strategy<Value = Vec<u8>> {
    let key = prop_oneof![3 => proptest::sample::select(&FIELDS[..]).prop_map(str::to_owned), 1 => text()];
    let value = prop_oneof![
        3 => text().prop_map(String::into_bytes),
        1 => proptest::collection::vec(any::<u8>(), 0..24),
    ];
    proptest::collection::vec((key, value), 0..5).prop_map(|kv| {
        kv.into_iter()
            .map(|(k, v)| format!("{}={}", encode(k.as_bytes()), encode(&v)))
            .collect::<Vec<_>>()
            .join("&")
            .into_bytes()
    })
}

#[derive(Debug, Clone)]
enum Body {
    None,
    Json(Value),
    Form(Vec<u8>),
    Raw(&'static str, Vec<u8>),
}

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        1 => Just(Body::None),
        3 => json().prop_map(Body::Json),
        2 => pairs().prop_map(Body::Form),
        1 => (
            proptest::sample::select(vec!["application/json", "application/x-www-form-urlencoded", "text/plain"]),
            proptest::collection::vec(any::<u8>(), 0..64),
        )
            .prop_map(|(t, b)| Body::Raw(t, b)),
    ]
}

/// One generated request: path parameters, a query string and a body.
#[derive(Debug, Clone)]
struct Case {
    params: Vec<Vec<u8>>,
    query: Vec<u8>,
    body: Body,
}

fn case() -> impl Strategy<Value = Case> {
    let param = prop_oneof![
        2 => text().prop_map(String::into_bytes),
        1 => proptest::collection::vec(any::<u8>(), 1..12),
    ];
    (proptest::collection::vec(param, 2), pairs(), body()).prop_map(|(params, query, body)| Case {
        params,
        query,
        body,
    })
}

/// `/tasks/{id}/cancel` with the case's parameters in place of the `{…}` segments.
fn fill(path: &str, params: &[Vec<u8>]) -> String {
    let mut next = params.iter();
    path.split('/')
        .map(|seg| {
            if seg.starts_with('{') {
                // Within what a URL may carry (the http crate refuses longer ones).
                next.next()
                    .map_or_else(|| "x".to_owned(), |p| encode(&p[..p.len().min(1000)]))
            } else {
                seg.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

async fn send(
    app: &TestApp,
    token: &str,
    method: &Method,
    path: &str,
    case: &Case,
) -> (u16, String) {
    let mut url = app.url(path);
    if !case.query.is_empty() {
        url.push('?');
        let query = String::from_utf8_lossy(&case.query);
        // Cut on a char boundary, within what a URL may carry.
        let end = query
            .char_indices()
            .map(|(i, _)| i)
            .take_while(|i| *i <= 6000)
            .last()
            .unwrap_or(0);
        url.push_str(if query.len() <= 6000 {
            &query
        } else {
            &query[..end]
        });
    }
    let c = crate::helpers::plain_client();
    let mut req = c.request(method.clone(), &url).bearer_auth(token);
    req = match &case.body {
        Body::None => req,
        Body::Json(v) => req.json(v),
        Body::Form(b) => req
            .header("content-type", "application/x-www-form-urlencoded")
            .body(b.clone()),
        Body::Raw(t, b) => req.header("content-type", *t).body(b.clone()),
    };
    let res = req.send().await.expect("an answer");
    let status = res.status().as_u16();
    (status, res.text().await.unwrap_or_default())
}

/// A case, short enough to read in a failure message.
fn brief(case: &Case) -> String {
    format!("{case:?}").chars().take(600).collect()
}

fn brief_str(s: &str) -> String {
    s.chars().take(300).collect()
}

/// A 4xx must carry the JSON error shape of its transport (REST's `{"error": {"code",
/// "message"}}` or a server function's `{"kind", "message"}`).
fn is_error_shape(body: &str) -> bool {
    serde_json::from_str::<Value>(body).is_ok_and(|v| {
        v["error"]["code"].is_string() && v["error"]["message"].is_string()
            || v["kind"].is_string() && v["message"].is_string()
    })
}

#[sqlx::test(migrations = false)]
async fn no_route_answers_arbitrary_input_with_a_5xx(pool: PgPool) {
    let app = spawn_app_with(pool, &[("FLOTILLA_ENGINE", "off")]).await;
    let token = crate::stream::token(&app).await;
    // The router is built from the document, so this is every REST route.
    let mut routes: Vec<(Method, String)> = server::http::openapi::document()
        .paths
        .paths
        .iter()
        .flat_map(|(path, item)| {
            [
                (Method::GET, &item.get),
                (Method::POST, &item.post),
                (Method::PATCH, &item.patch),
                (Method::DELETE, &item.delete),
            ]
            .into_iter()
            .filter(|(_, op)| op.is_some())
            .map(|(m, _)| (m, path.clone()))
        })
        .collect();
    let rest = routes.len();
    routes.extend(
        leptos::server_fn::axum::server_fn_paths().map(|(path, method)| (method, path.to_owned())),
    );
    assert!(rest >= 20 && routes.len() >= rest + 15, "{routes:?}");
    let mut runner = TestRunner::new(Config {
        cases: 1,
        ..Config::default()
    });
    let strategy = case();
    let mut sent = 0;
    for (method, path) in &routes {
        for _ in 0..CASES_PER_ROUTE {
            let case = strategy.new_tree(&mut runner).expect("a case").current();
            let target = fill(path, &case.params);
            let (status, body) = send(&app, &token, method, &target, &case).await;
            sent += 1;
            assert!(
                status < 500,
                "{method} {} answered {status} to {}: {}",
                brief_str(&target),
                brief(&case),
                brief_str(&body)
            );
            if status >= 400 {
                assert!(
                    is_error_shape(&body),
                    "{method} {} answered {status} without the JSON error shape to {}: {}",
                    brief_str(&target),
                    brief(&case),
                    brief_str(&body)
                );
            }
        }
    }
    assert_eq!(sent, routes.len() * CASES_PER_ROUTE);
}
