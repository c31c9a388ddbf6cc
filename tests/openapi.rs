//! The management API's OpenAPI document: valid OpenAPI 3.1, every route of the router in
//! it and nothing else, served under the nest, and keygate's security schemes for the
//! host's own document.

use std::collections::BTreeSet;

use axum::Router;
use axum::body::Body;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use keygate::{KeyManager, KeySource, KeyWithScope, Keygate, MemoryStore};
use serde_json::Value;
use tower::ServiceExt;
use utoipa::openapi::OpenApiBuilder;

fn document() -> Value {
    serde_json::to_value(KeyManager::openapi()).unwrap()
}

/// Every `(method, path)` the router answers, as the router is written.
const ROUTES: [(&str, &str); 9] = [
    ("get", "/"),
    ("post", "/"),
    ("get", "/{id}"),
    ("patch", "/{id}"),
    ("delete", "/{id}"),
    ("post", "/{id}/regenerate"),
    ("get", "/users/{user}"),
    ("post", "/users/{user}/revoke"),
    ("get", "/spaces/{space}"),
];

fn operations(document: &Value) -> BTreeSet<(String, String)> {
    let mut found = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            found.insert((method.clone(), path.clone()));
        }
    }
    found
}

#[test]
fn document_is_valid_openapi_3_1() {
    let json = serde_json::to_string(&KeyManager::openapi()).unwrap();
    let spec = oas3::from_json(&json).expect("a valid OpenAPI 3.1 document");
    assert!(spec.openapi.starts_with("3.1"), "{}", spec.openapi);
}

#[test]
fn document_lists_every_route_and_no_other() {
    let expected: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(method, path)| ((*method).to_owned(), (*path).to_owned()))
        .collect();
    assert_eq!(operations(&document()), expected);
}

#[test]
fn every_reference_names_a_schema_of_the_document() {
    fn refs(value: &Value, into: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(target)) = map.get("$ref") {
                    into.push(target.clone());
                }
                map.values().for_each(|value| refs(value, into));
            }
            Value::Array(items) => items.iter().for_each(|value| refs(value, into)),
            _ => {}
        }
    }
    let document = document();
    let mut found = Vec::new();
    refs(&document, &mut found);
    assert!(!found.is_empty());
    for target in found {
        let name = target.strip_prefix("#/components/schemas/").unwrap();
        assert!(
            document["components"]["schemas"].get(name).is_some(),
            "{target} is not in the document"
        );
    }
}

async fn call(app: &Router, method: Method, path: &str) -> (StatusCode, Value) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn every_documented_operation_is_routed() {
    let keygate = Keygate::new(MemoryStore::new());
    let app = Router::new().nest(
        "/api-keys",
        keygate
            .manager()
            .management(KeyWithScope::new("keys:write")),
    );
    let document = serde_json::to_value(KeyManager::openapi_at("/api-keys")).unwrap();
    for (method, path) in operations(&document) {
        let path = path
            .replace("{id}", "abcdefghijklmnop")
            .replace("{user}", "alice")
            .replace("{space}", "acme");
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let (status, body) = call(&app, method.clone(), &path).await;
        // Routed: the actor check answers (no key was sent), not the 404/405 fallbacks.
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}: {body}");
    }
}

#[tokio::test]
async fn served_document_places_its_paths_under_the_nest() {
    let keygate = Keygate::new(MemoryStore::new());
    let app = Router::new().nest(
        "/settings/api-keys",
        keygate
            .manager()
            .management(KeyWithScope::new("keys:write")),
    );
    let (status, body) = call(&app, Method::GET, "/settings/api-keys/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    let expected = serde_json::to_value(KeyManager::openapi_at("/settings/api-keys")).unwrap();
    assert_eq!(operations(&body), operations(&expected));
    assert!(body["paths"]["/settings/api-keys"]["post"].is_object());
}

#[test]
fn security_schemes_follow_the_configured_sources() {
    let keygate = Keygate::new(MemoryStore::new())
        .with_sources([
            KeySource::bearer(),
            KeySource::header("x-undb-api-token").unwrap(),
        ])
        .unwrap();
    let mut host = OpenApiBuilder::new().build();
    host.merge(KeyManager::openapi_at("/api-keys"));
    let names = keygate.add_security_schemes(&mut host);
    assert_eq!(names, ["keygate_bearer", "keygate_x-undb-api-token"]);
    let json = serde_json::to_value(&host).unwrap();
    let schemes = &json["components"]["securitySchemes"];
    assert_eq!(schemes["keygate_bearer"]["type"], "http");
    assert_eq!(schemes["keygate_bearer"]["scheme"], "bearer");
    assert_eq!(schemes["keygate_x-undb-api-token"]["type"], "apiKey");
    assert_eq!(schemes["keygate_x-undb-api-token"]["in"], "header");
    assert_eq!(
        schemes["keygate_x-undb-api-token"]["name"],
        "x-undb-api-token"
    );
    assert_eq!(json["security"].as_array().unwrap().len(), 2);
    assert!(json["paths"]["/api-keys/{id}/regenerate"].is_object());
    oas3::from_json(serde_json::to_string(&host).unwrap()).expect("still valid");
}
