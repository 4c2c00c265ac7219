//! API accounts, permissions, data scopes, tenants, impersonation and token lifecycle.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use switchyard_tests::{Api, Options, TestServer};

/// Creates an API account and logs it in.
async fn account_with(server: &TestServer, admin: &Api, authorizations: Value) -> (Value, Api) {
    let created = admin
        .post(
            "/api-accounts",
            json!({"name": "integration", "authorizations": authorizations}),
            201,
        )
        .await;
    let id = created["id"].as_str().expect("id");
    let api = server
        .api_as(
            id,
            created["token"].as_str().expect("token"),
            created["totp_secret"].as_str().expect("totp_secret"),
            0,
        )
        .await;
    (created, api)
}

#[tokio::test]
async fn api_account_secrets_are_shown_once_and_rotation_invalidates_them() {
    let server = TestServer::start_with(Options {
        manual_clock_at: Some(1_800_000_000_000),
        ..Options::default()
    })
    .await;
    let admin = server.api().await;
    let created = admin
        .post(
            "/api-accounts",
            json!({"name": "crm", "authorizations": {"permissions": ["events.publish"]}}),
            201,
        )
        .await;
    let id = created["id"].as_str().expect("id").to_owned();
    let token = created["token"].as_str().expect("token").to_owned();
    let secret = created["totp_secret"].as_str().expect("secret").to_owned();
    assert!(
        created["totp_uri"]
            .as_str()
            .expect("uri")
            .starts_with("otpauth://totp/")
    );

    // Never again: not in the list, not in the account.
    let listed = admin.get("/api-accounts").await;
    assert!(!listed.to_string().contains(&token));
    assert!(!listed.to_string().contains(&secret));
    let one = admin.get(&format!("/api-accounts/{id}")).await;
    assert_eq!(one.get("token"), None);
    assert_eq!(one.get("totp_secret"), None);

    let session = server.api_as(&id, &token, &secret, 0).await;
    let rotated = admin
        .post(&format!("/api-accounts/{id}/rotate-token"), json!({}), 200)
        .await;
    let new_token = rotated["token"].as_str().expect("new token").to_owned();
    assert_ne!(new_token, token);
    assert_eq!(
        server.login_as(&id, &token, &secret, 1).await.status(),
        401,
        "old token"
    );
    assert_eq!(
        session
            .status(
                Method::POST,
                "/events",
                Some(json!({"topic": "Cases.Create"}))
            )
            .await,
        401,
        "sessions of the old token end"
    );
    server.api_as(&id, &new_token, &secret, 1).await;

    let rotated = admin
        .post(&format!("/api-accounts/{id}/rotate-totp"), json!({}), 200)
        .await;
    let new_secret = rotated["totp_secret"]
        .as_str()
        .expect("new secret")
        .to_owned();
    assert_ne!(new_secret, secret);
    server
        .clock
        .as_ref()
        .expect("clock")
        .advance(Duration::from_secs(90));
    assert_eq!(
        server.login_as(&id, &new_token, &secret, 0).await.status(),
        401,
        "old TOTP"
    );
    let session = server.api_as(&id, &new_token, &new_secret, 0).await;

    admin
        .patch(
            &format!("/api-accounts/{id}"),
            json!({"disabled": true}),
            200,
        )
        .await;
    assert_eq!(
        session
            .status(
                Method::POST,
                "/events",
                Some(json!({"topic": "Cases.Create"}))
            )
            .await,
        401,
        "a disabled account's session stops working"
    );
    server
        .clock
        .as_ref()
        .expect("clock")
        .advance(Duration::from_secs(60));
    assert_eq!(
        server
            .login_as(&id, &new_token, &new_secret, 0)
            .await
            .status(),
        401
    );

    assert_eq!(
        admin
            .status(Method::DELETE, &format!("/api-accounts/{id}"), None)
            .await,
        204
    );
    assert_eq!(
        admin
            .status(Method::GET, &format!("/api-accounts/{id}"), None)
            .await,
        404
    );
}

#[tokio::test]
async fn every_endpoint_enforces_its_permission() {
    let server = TestServer::start().await;
    let admin = server.api().await;
    let (_, publisher) =
        account_with(&server, &admin, json!({"permissions": ["events.publish"]})).await;

    for (method, path) in [
        (Method::GET, "/receivers"),
        (Method::GET, "/deliveries"),
        (Method::GET, "/api-accounts"),
        (Method::GET, "/accounts"),
        (Method::GET, "/audit"),
    ] {
        let (status, body) = publisher
            .call(method.clone(), path, None)
            .await
            .expect("call");
        assert_eq!(status, 403, "{method} {path}: {body}");
        assert_eq!(body["code"], "forbidden");
        assert!(
            body["detail"]
                .as_str()
                .expect("detail")
                .contains("permission"),
            "{body}"
        );
    }
    let (status, _) = publisher
        .call(
            Method::POST,
            "/events",
            Some(json!({"topic": "Cases.Create", "payload": {}})),
        )
        .await
        .expect("publish");
    assert_eq!(status, 202);

    // Nobody grants what they do not hold.
    let (status, body) = publisher
        .call(Method::POST, "/api-accounts", Some(json!({"name": "x"})))
        .await
        .expect("call");
    assert_eq!(status, 403, "{body}");
    let (_, manager) = account_with(
        &server,
        &admin,
        json!({"permissions": ["api-accounts.manage"]}),
    )
    .await;
    let (status, body) = manager
        .call(
            Method::POST,
            "/api-accounts",
            Some(json!({"name": "x", "authorizations": {"permissions": ["webhooks.manage"]}})),
        )
        .await
        .expect("call");
    assert_eq!(status, 403, "{body}");
    let (status, body) = manager
        .call(
            Method::POST,
            "/api-accounts",
            Some(json!({"name": "x", "authorizations": {"permissions": ["fly"]}})),
        )
        .await
        .expect("call");
    assert_eq!(status, 422, "{body}");
}

#[tokio::test]
async fn a_data_scope_limits_which_users_are_visible() {
    let server = TestServer::start().await;
    let admin = server.api().await;
    let sales = admin
        .post(
            "/accounts",
            json!({"name": "ada", "attributes": {"org_unit": "sales"}}),
            201,
        )
        .await;
    let support = admin
        .post(
            "/accounts",
            json!({"name": "bob", "attributes": {"org_unit": "support"}}),
            201,
        )
        .await;
    let (_, reader) = account_with(
        &server,
        &admin,
        json!({"permissions": ["accounts.read"], "scopes": {"org_unit": ["sales"]}}),
    )
    .await;
    let visible = reader.get("/accounts").await;
    let names: Vec<_> = visible
        .as_array()
        .expect("list")
        .iter()
        .map(|u| u["name"].clone())
        .collect();
    assert_eq!(names, [json!("ada")]);
    assert_eq!(
        reader
            .get(&format!("/accounts/{}", sales["id"].as_str().expect("id")))
            .await["name"],
        "ada"
    );
    assert_eq!(
        reader
            .status(
                Method::GET,
                &format!("/accounts/{}", support["id"].as_str().expect("id")),
                None
            )
            .await,
        404
    );
    assert_eq!(
        reader
            .status(
                Method::DELETE,
                &format!("/accounts/{}", sales["id"].as_str().expect("id")),
                None
            )
            .await,
        403,
        "reading is not writing"
    );
    let all = admin.get("/accounts").await;
    assert_eq!(
        all.as_array().map(Vec::len),
        Some(3),
        "admin, ada and bob: {all}"
    );
}

#[tokio::test]
async fn tenants_are_isolated() {
    let server = TestServer::start_with(Options {
        configure: Some(Box::new(|c| c.operator_token = Some("op-token".into()))),
        ..Options::default()
    })
    .await;
    let http = &server.http;
    let refused = http
        .post(server.url("/operator/tenants"))
        .json(&json!({"name": "acme"}))
        .send()
        .await
        .expect("POST");
    assert_eq!(refused.status(), 401);
    let created = http
        .post(server.url("/operator/tenants"))
        .bearer_auth("op-token")
        .json(&json!({"name": "acme"}))
        .send()
        .await
        .expect("POST");
    assert_eq!(created.status(), 201);
    let acme: Value = created.json().await.expect("JSON");
    assert_eq!(acme["tenant"], "acme");
    assert_eq!(acme["base_url"], server.url("/t/acme/v1"));
    let again = http
        .post(server.url("/operator/tenants"))
        .bearer_auth("op-token")
        .json(&json!({"name": "acme"}))
        .send()
        .await
        .expect("POST");
    assert_eq!(again.status(), 409);

    let acme_api = server
        .api_as(
            acme["api_account"]["id"].as_str().expect("id"),
            acme["api_account"]["token"].as_str().expect("token"),
            acme["api_account"]["totp_secret"].as_str().expect("secret"),
            0,
        )
        .await;
    assert_eq!(acme_api.base, server.url("/t/acme/v1"));
    let default_api = server.api().await;
    default_api
        .post("/accounts", json!({"name": "only-in-default"}), 201)
        .await;

    let acme_users = acme_api.get("/accounts").await;
    assert!(!acme_users.to_string().contains("only-in-default"));
    // A token of one tenant is useless on another's.
    let cross = default_api.with_token(&acme_api.token);
    assert_eq!(cross.status(Method::GET, "/accounts", None).await, 401);
    let default_account = server.admin.api_account.id.clone();
    assert_eq!(
        acme_api
            .status(
                Method::GET,
                &format!("/api-accounts/{default_account}"),
                None
            )
            .await,
        404
    );
}

#[tokio::test]
async fn impersonation_acts_with_the_users_authorizations_and_is_audited() {
    let server = TestServer::start().await;
    let admin = server.api().await;
    let user = admin
        .post(
            "/accounts",
            json!({"name": "carol", "attributes": {"org_unit": "sales"},
                   "authorizations": {"permissions": ["accounts.read"], "scopes": {"org_unit": ["sales"]}}}),
            201,
        )
        .await;
    admin
        .post(
            "/accounts",
            json!({"name": "dave", "attributes": {"org_unit": "support"}}),
            201,
        )
        .await;
    let user_id = user["id"].as_str().expect("id").to_owned();
    let (created, portal) = account_with(
        &server,
        &admin,
        json!({"permissions": ["impersonate", "accounts.read", "api-accounts.manage"], "scopes": {"*": ["*"]}}),
    )
    .await;
    let portal_id = created["id"].as_str().expect("id").to_owned();

    let exchange = |form: Vec<(&'static str, String)>| {
        server
            .http
            .post(server.url("/oauth2/token"))
            .form(&form)
            .send()
    };
    let grant = (
        "grant_type",
        "urn:ietf:params:oauth:grant-type:token-exchange".to_owned(),
    );
    let answer = exchange(vec![
        grant.clone(),
        ("subject_token", portal.token.clone()),
        (
            "subject_token_type",
            "urn:ietf:params:oauth:token-type:access_token".into(),
        ),
        ("requested_subject", user_id.clone()),
    ])
    .await
    .expect("exchange");
    assert_eq!(answer.status(), 200);
    let issued: Value = answer.json().await.expect("JSON");
    assert_eq!(issued["token_type"], "Bearer");
    assert_eq!(
        issued["issued_token_type"],
        "urn:ietf:params:oauth:token-type:access_token"
    );
    let as_carol = portal.with_token(issued["access_token"].as_str().expect("token"));

    // Carol's authorizations, not the portal's.
    let visible = as_carol.get("/accounts").await;
    let names: Vec<_> = visible
        .as_array()
        .expect("list")
        .iter()
        .map(|u| u["name"].clone())
        .collect();
    assert_eq!(names, [json!("carol")]);
    assert_eq!(
        as_carol.status(Method::GET, "/api-accounts", None).await,
        403
    );

    let trail = admin.get("/audit").await;
    let entry = &trail[0];
    assert_eq!(entry["on_behalf_of"], user_id.as_str());
    assert_eq!(entry["api_account"], portal_id.as_str());
    assert!(
        entry["action"]
            .as_str()
            .expect("action")
            .contains("/api-accounts")
    );
    assert_eq!(trail.as_array().map(Vec::len), Some(2));

    // RFC 6749 §5.2 errors.
    let missing = exchange(vec![grant.clone(), ("subject_token", portal.token.clone())])
        .await
        .expect("exchange");
    assert_eq!(missing.status(), 400);
    let missing: Value = missing.json().await.expect("JSON");
    assert_eq!(missing["error"], "invalid_request");
    assert!(
        missing["error_description"]
            .as_str()
            .expect("description")
            .contains("requested_subject")
    );

    let wrong_grant = exchange(vec![("grant_type", "password".into())])
        .await
        .expect("exchange");
    assert_eq!(wrong_grant.status(), 400);
    assert_eq!(
        wrong_grant.json::<Value>().await.expect("JSON")["error"],
        "unsupported_grant_type"
    );

    let (_, plain) = account_with(
        &server,
        &admin,
        json!({"permissions": ["accounts.read"], "scopes": {"*": ["*"]}}),
    )
    .await;
    let forbidden = exchange(vec![
        grant.clone(),
        ("subject_token", plain.token.clone()),
        ("requested_subject", user_id.clone()),
    ])
    .await
    .expect("exchange");
    assert_eq!(forbidden.status(), 400);
    let forbidden: Value = forbidden.json().await.expect("JSON");
    assert_eq!(forbidden["error"], "unauthorized_client");
    assert!(
        forbidden["error_description"]
            .as_str()
            .expect("description")
            .contains("impersonate")
    );
}

#[tokio::test]
async fn tokens_can_be_introspected_and_revoked() {
    let server = TestServer::start().await;
    let api = server.api().await;
    let introspect = |token: String| {
        server
            .http
            .post(server.url("/oauth2/introspect"))
            .bearer_auth(&api.token)
            .form(&[("token", token)])
            .send()
    };
    let active: Value = introspect(api.token.clone())
        .await
        .expect("introspect")
        .json()
        .await
        .expect("JSON");
    assert_eq!(active["active"], true);
    assert_eq!(active["client_id"], server.admin.api_account.id.as_str());
    assert!(active["exp"].as_u64().expect("exp") > active["iat"].as_u64().expect("iat"));
    let unknown: Value = introspect("nope".into())
        .await
        .expect("introspect")
        .json()
        .await
        .expect("JSON");
    assert_eq!(unknown, json!({"active": false}));
    let anonymous = server
        .http
        .post(server.url("/oauth2/introspect"))
        .form(&[("token", api.token.clone())])
        .send()
        .await
        .expect("introspect");
    assert_eq!(anonymous.status(), 401);

    let other = server
        .api_as(
            &server.admin.api_account.id,
            &server.admin.api_account.token,
            &server.admin.api_account.totp_secret,
            1,
        )
        .await;
    // Holding the token is enough to revoke it, as the document says.
    let revoked = server
        .http
        .post(server.url("/oauth2/revoke"))
        .form(&[("token", other.token.clone())])
        .send()
        .await
        .expect("revoke");
    assert_eq!(revoked.status(), 200);
    assert_eq!(other.status(Method::GET, "/topics", None).await, 401);
    let gone: Value = introspect(other.token.clone())
        .await
        .expect("introspect")
        .json()
        .await
        .expect("JSON");
    assert_eq!(gone["active"], false);
    assert_eq!(
        api.status(Method::GET, "/topics", None).await,
        200,
        "other sessions live on"
    );
}

#[tokio::test]
async fn repeated_login_failures_lock_the_account_for_a_while() {
    let server = TestServer::start_with(Options {
        manual_clock_at: Some(1_800_000_000_000),
        ..Options::default()
    })
    .await;
    let account = server.admin.api_account.clone();
    for _ in 0..4 {
        assert_eq!(
            server
                .login_as(&account.id, "wrong", &account.totp_secret, 0)
                .await
                .status(),
            401
        );
    }
    let locked = server
        .login_as(&account.id, "wrong", &account.totp_secret, 0)
        .await;
    assert_eq!(locked.status(), 429);
    assert!(locked.headers().get("retry-after").is_some());
    // Locked: even the right factors are refused…
    let right = server
        .login_as(&account.id, &account.token, &account.totp_secret, 0)
        .await;
    assert_eq!(right.status(), 429);
    // …until the lock ends.
    server
        .clock
        .as_ref()
        .expect("clock")
        .advance(Duration::from_secs(16 * 60));
    server.api().await;
}
