//! The API overview at `/`, the OpenAPI document and its Swagger UI.

use serde_json::Value;
use switchyard_tests::TestServer;

#[tokio::test]
async fn openapi_document_covers_every_documented_path_and_each_one_is_served() {
    let server = TestServer::start().await;
    let response = server
        .http
        .get(server.url("/openapi.json"))
        .send()
        .await
        .expect("GET /openapi.json");
    assert_eq!(response.status(), 200);
    let doc: Value = response.json().await.expect("the document is JSON");
    assert!(
        doc["openapi"].as_str().unwrap_or("").starts_with("3."),
        "OpenAPI 3.x: {}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().expect("paths");
    for expected in [
        "/auth/login",
        "/oauth2/token",
        "/oauth2/revoke",
        "/oauth2/introspect",
        "/operator/tenants",
        "/healthz",
        "/readyz",
        "/t/{tenant}/v1/accounts",
        "/t/{tenant}/v1/accounts/{id}",
        "/t/{tenant}/v1/api-accounts",
        "/t/{tenant}/v1/api-accounts/{id}",
        "/t/{tenant}/v1/api-accounts/{id}/rotate-token",
        "/t/{tenant}/v1/api-accounts/{id}/rotate-totp",
        "/t/{tenant}/v1/receivers",
        "/t/{tenant}/v1/receivers/{id}",
        "/t/{tenant}/v1/receivers/{id}/deliveries",
        "/t/{tenant}/v1/deliveries",
        "/t/{tenant}/v1/deliveries/{id}",
        "/t/{tenant}/v1/deliveries/{id}/resend",
        "/t/{tenant}/v1/events",
        "/t/{tenant}/v1/events/{id}",
        "/t/{tenant}/v1/topics",
        "/t/{tenant}/v1/audit",
    ] {
        assert!(paths.contains_key(expected), "{expected} is documented");
    }

    // Every documented operation exists on the running server: without credentials it
    // answers anything but the router's own 404/405.
    let tenant = &server.admin.tenant;
    for (path, item) in paths {
        let concrete = path
            .replace("{tenant}", tenant)
            .replace("{id}", "does-not-exist");
        for method in item.as_object().expect("path item").keys() {
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes())
                .expect("an HTTP method");
            let response = server
                .http
                .request(method.clone(), server.url(&concrete))
                .send()
                .await
                .expect("request");
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            assert!(
                status != 405 && body["detail"] != "no such endpoint",
                "{method} {path} is documented but not served ({status} {body})"
            );
            let documented = &item[method.as_str().to_lowercase()]["responses"];
            assert!(
                documented[status.to_string()].is_object(),
                "{method} {path} answers {status}, which it does not document ({body})"
            );
        }
    }

    let schemas = &doc["components"]["schemas"];
    for schema in [
        "ErrorBody",
        "Receiver",
        "Delivery",
        "NewReceiver",
        "LoginResponse",
    ] {
        assert!(schema_named(schemas, schema), "schema {schema}");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

fn schema_named(schemas: &Value, name: &str) -> bool {
    schemas.as_object().is_some_and(|s| {
        s.keys()
            .any(|k| k == name || k.ends_with(&format!(".{name}")))
    })
}

#[tokio::test]
async fn swagger_ui_is_served_without_any_external_asset() {
    let server = TestServer::start().await;
    let page = server
        .http
        .get(server.url("/docs/"))
        .send()
        .await
        .expect("GET /docs/");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    assert!(html.contains("swagger-ui"), "{html}");
    assert!(!html.contains("https://"), "no external asset: {html}");
    let init = server
        .http
        .get(server.url("/docs/swagger-initializer.js"))
        .send()
        .await
        .expect("initializer");
    assert_eq!(init.status(), 200);
    assert!(init.text().await.expect("js").contains("/openapi.json"));
    let bundle = server
        .http
        .get(server.url("/docs/swagger-ui-bundle.js"))
        .send()
        .await
        .expect("bundle");
    assert_eq!(bundle.status(), 200, "the bundle is vendored");
}

#[tokio::test]
async fn overview_lists_every_api_as_json_and_html() {
    let server = TestServer::start().await;
    let json: Value = server
        .http
        .get(server.url("/"))
        .header("Accept", "application/json")
        .send()
        .await
        .expect("GET / as JSON")
        .json()
        .await
        .expect("JSON overview");
    let apis = json["apis"].as_array().expect("apis");
    let names: Vec<&str> = apis.iter().filter_map(|a| a["name"].as_str()).collect();
    for expected in [
        "Tenant API",
        "Authentication",
        "OAuth2",
        "Operator API",
        "Health",
    ] {
        assert!(names.contains(&expected), "{expected} in {names:?}");
    }
    for api in apis {
        assert!(!api["description"].as_str().unwrap_or("").is_empty());
        let docs = api["docs_url"].as_str().expect("docs_url");
        assert!(docs.contains("/docs/"), "{docs}");
        assert!(
            api["openapi_url"]
                .as_str()
                .expect("openapi_url")
                .ends_with("/openapi.json")
        );
    }
    // The links lead somewhere.
    let openapi = json["openapi_url"].as_str().expect("openapi_url");
    let path = openapi
        .split_once("//")
        .map(|(_, r)| r)
        .and_then(|r| r.find('/').map(|i| &r[i..]));
    let status = server
        .http
        .get(server.url(path.expect("a path")))
        .send()
        .await
        .expect("follow openapi_url")
        .status();
    assert_eq!(status, 200);

    let response = server
        .http
        .get(server.url("/"))
        .header("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
        .send()
        .await
        .expect("GET / as HTML");
    assert_eq!(response.status(), 200);
    assert!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .starts_with("text/html")
    );
    let html = response.text().await.expect("html");
    for expected in [
        "Tenant API",
        "Authentication",
        "OAuth2",
        "Operator API",
        "Health",
    ] {
        assert!(html.contains(expected), "{expected} in the HTML overview");
    }
    assert!(html.contains("/openapi.json") && html.contains("/docs/"));
}

#[tokio::test]
async fn refused_queries_and_bodies_answer_as_the_document_says() {
    let server = TestServer::start().await;
    let api = server.api().await;
    let doc: Value = api
        .http
        .get(server.url("/openapi.json"))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON");
    let log = &doc["paths"]["/t/{tenant}/v1/deliveries"]["get"];
    let limit = log["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "limit")
        .expect("limit is documented");
    assert_eq!(
        (
            limit["schema"]["minimum"].as_u64(),
            limit["schema"]["maximum"].as_u64()
        ),
        (Some(1), Some(500))
    );
    for path in [
        "/deliveries?limit=0",
        "/deliveries?limit=501",
        "/deliveries?limit=ten",
        "/deliveries?status=lost",
        "/deliveries?status=",
        "/deliveries?since=yesterday",
        "/receivers?include_deleted=maybe",
    ] {
        let (status, body) = api
            .call(reqwest::Method::GET, path, None)
            .await
            .expect("GET");
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("invalid_request")),
            "{path}: {body}"
        );
        let parameter = path.split(['?', '=']).nth(1).unwrap_or_default();
        assert!(
            body["detail"]
                .as_str()
                .is_some_and(|d| d.contains(parameter)),
            "{path}: the detail names {parameter}: {body}"
        );
    }
    assert_eq!(
        api.get("/deliveries?limit=500").await,
        serde_json::json!([])
    );

    // What the schema says a name, a password or a topic must be is what the server takes.
    let accounts = &doc["components"]["schemas"];
    assert_eq!(accounts["NewUser"]["properties"]["name"]["maxLength"], 200);
    assert_eq!(
        accounts["NewUser"]["properties"]["password"]["minLength"],
        12
    );
    let topics = accounts["NewEvent"]["properties"]["topic"]["enum"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let catalog = api.get("/topics").await;
    let names: Vec<Value> = catalog
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| t["name"].clone())
        .collect();
    assert_eq!(topics, names, "the document offers the catalog's topics");
    let long = "n".repeat(200);
    api.post("/api-accounts", serde_json::json!({"name": long}), 201)
        .await;
    for name in [String::new(), "   ".into(), "n".repeat(201)] {
        api.post("/api-accounts", serde_json::json!({"name": name}), 422)
            .await;
        api.post("/accounts", serde_json::json!({"name": name}), 422)
            .await;
    }
    // A body, and each object in it, is a JSON object, never an array of its fields in
    // order.
    let before = api.get("/api-accounts").await;
    let account = &server.admin.api_account.id;
    for (path, fields) in [
        ("/api-accounts", serde_json::json!(["by position"])),
        ("/events", serde_json::json!(["Cases.Update"])),
        (
            "/api-accounts",
            serde_json::json!({"name": "n", "authorizations": [[]]}),
        ),
        (
            "/accounts",
            serde_json::json!({"name": "n", "authorizations": []}),
        ),
        (
            "/events",
            serde_json::json!({"topic": "Cases.Update", "subject": ["case", "c1", {}]}),
        ),
        (
            "/receivers",
            serde_json::json!({"url": "https://a.example", "topics": ["Cases.*"],
            "api_account": account, "auth": ["websub", {"secret": "s"}]}),
        ),
    ] {
        let answer = api.post(path, fields, 422).await;
        assert!(
            answer["detail"]
                .as_str()
                .is_some_and(|d| d.contains("JSON object")),
            "{answer}"
        );
    }
    assert_eq!(api.get("/api-accounts").await, before);
    let answer = api
        .post("/receivers", serde_json::json!({"topics": 5}), 422)
        .await;
    assert!(
        answer["detail"]
            .as_str()
            .is_some_and(|d| d.contains("topics")),
        "the field is named: {answer}"
    );
    let accented = "é".repeat(200);
    api.post(
        "/accounts",
        serde_json::json!({"name": accented, "password": "ü".repeat(12)}),
        201,
    )
    .await;
    api.post(
        "/accounts",
        serde_json::json!({"name": "short", "password": "ü".repeat(11)}),
        422,
    )
    .await;
}

#[tokio::test]
async fn the_operator_api_asks_for_its_token_before_saying_it_is_off() {
    let server = TestServer::start().await;
    for path in ["/operator/tenants", "/operator/plugins"] {
        let bare = server.http.get(server.url(path)).send().await.expect("GET");
        assert_eq!(bare.status(), 401, "{path} without a token");
        assert!(bare.headers().contains_key("www-authenticate"));
        let with_token = server
            .http
            .get(server.url(path))
            .bearer_auth("guess")
            .send()
            .await
            .expect("GET");
        assert_eq!(with_token.status(), 404, "{path} with a token while off");
        let body: Value = with_token.json().await.expect("JSON");
        assert!(
            body["detail"].as_str().is_some_and(|d| d.contains("off")),
            "{body}"
        );
    }
}
