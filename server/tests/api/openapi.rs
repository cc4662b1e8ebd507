//! `GET /api/v1/openapi.json`: served without logging in, and it describes exactly the routes
//! the server answers, each with a concrete success schema and the shared error shape.

use crate::helpers::spawn_app_with;
use serde_json::Value;
use sqlx::PgPool;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// Follows a local `$ref` to the schema it names.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => resolve(
            doc,
            &doc["components"]["schemas"][r.trim_start_matches("#/components/schemas/")],
        ),
        None => schema,
    }
}

#[sqlx::test(migrations = false)]
async fn the_document_is_public_and_describes_every_route_concretely(pool: PgPool) {
    let app = spawn_app_with(pool, &[("FLOTILLA_ENGINE", "off")]).await;
    let res = crate::helpers::plain_client()
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    let doc: Value = res.json().await.unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );

    let paths = doc["paths"].as_object().unwrap();
    let mut operations = 0;
    let mut ids = std::collections::HashSet::new();
    for (path, item) in paths {
        assert!(path.starts_with("/api/v1/"), "{path}");
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            operations += 1;
            let id = op["operationId"].as_str().unwrap();
            assert!(ids.insert(id.to_owned()), "operationId {id} repeats");
            let responses = op["responses"].as_object().unwrap();
            let (status, ok) = responses
                .iter()
                .find(|(s, _)| s.starts_with('2') || s.as_str() == "101")
                .unwrap_or_else(|| panic!("{method} {path} has no success response"));
            if !matches!(status.as_str(), "204" | "101") {
                let schema = resolve(&doc, &ok["content"]["application/json"]["schema"]);
                assert!(
                    schema.get("type").is_some() || schema.get("properties").is_some(),
                    "{method} {path} {status} has no concrete schema: {schema}"
                );
            }
            for code in ["401", "404", "422", "500"] {
                let err = &responses[code]["content"]["application/json"]["schema"];
                let err = resolve(&doc, err);
                assert!(
                    err["properties"]["error"].is_object(),
                    "{method} {path} {code}: {err}"
                );
            }
        }
    }
    assert!(operations >= 23, "{operations} operations");

    // The router answers every documented route (a 404 from the router says "no such API
    // route"), and nothing undocumented.
    let token = crate::stream::token(&app).await;
    let client = crate::helpers::plain_client();
    let mut answered = 0;
    for (path, item) in paths {
        let concrete = path.replace("{id}", "00000000-0000-0000-0000-000000000000");
        for method in METHODS {
            if item.get(method).is_none() {
                continue;
            }
            let res = client
                .request(method.to_uppercase().parse().unwrap(), app.url(&concrete))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            let status = res.status();
            let body = res.text().await.unwrap();
            assert_ne!(status, 401, "{method} {path}: {body}");
            assert!(
                !body.contains("no such API route"),
                "{method} {path}: {body}"
            );
            answered += 1;
        }
    }
    assert_eq!(answered, operations);
    let res = client
        .get(app.url("/api/v1/nothing-here"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!(res.text().await.unwrap().contains("no such API route"));
}
