//! The SCIM 2.0 service provider that `provisioner run` serves: an
//! identity provider's person reaching Salesforce through the rules, the
//! request sequences Entra ID and Okta document for their SCIM clients,
//! every error class as a SCIM error body that changes nothing, and
//! concurrent clients that lose no write.

use crate::common;

use common::world::{ALL, World};
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const OKTA_TOKEN: &str = "okta-scim-token-0123456789abcdef";
const ENTRA_TOKEN: &str = "entra-scim-token-0123456789abcdef";
const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const SCIM_JSON: &str = "application/scim+json";

/// A Salesforce world whose daemon serves SCIM, with a rule that makes
/// Leads of the group `prospects`.
async fn world() -> (World, Daemon, Scim) {
    world_with("", &[]).await
}

/// [`world`] with more configuration in `[scim]`, and private
/// files (name, text) written beside it first.
async fn world_with(extra: &str, files: &[(&str, &str)]) -> (World, Daemon, Scim) {
    let world = World::default().await;
    for (name, text) in files {
        write_private(&world.fixture.path().join(name), text);
    }
    world.configure(
        ALL,
        "",
        &(r#"
[rules.prospects]
connection = "leads"
scope = { group = "prospects" }

[directory]
attributes = ["cost_center", "fax_phone", "manager"]

[scim]
listen = "127.0.0.1:0"
tokens = { okta = { secrets_file = "scim_okta" }, entra = { secrets_file = "scim_entra" } }
"#
        .to_string()
            + extra),
    );
    world.fixture.write_secrets(&format!(
        "{}scim_okta = \"{OKTA_TOKEN}\"\nscim_entra = \"{ENTRA_TOKEN}\"\n",
        json_store_secrets()
    ));
    let check = world.run(&["check"]).await;
    assert_eq!(check.code, Some(0), "{check:?}");
    let daemon = Daemon::start(&world.fixture).await;
    let base = daemon
        .scim
        .clone()
        .unwrap_or_else(|| panic!("the daemon announced no SCIM URL\n{}", daemon.log_tail(30)));
    let scim = Scim {
        base,
        http: reqwest::Client::new(),
        token: OKTA_TOKEN,
    };
    (world, daemon, scim)
}

/// A raw SCIM client: every request and answer as the wire has them.
#[derive(Clone)]
struct Scim {
    base: String,
    http: reqwest::Client,
    token: &'static str,
}

impl Scim {
    fn as_token(&self, token: &'static str) -> Scim {
        Scim {
            token,
            ..self.clone()
        }
    }

    async fn send(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(self.token);
        if let Some(body) = body {
            request = request
                .header("content-type", SCIM_JSON)
                .body(body.to_string());
        }
        let response = request.send().await.expect("the SCIM server answers");
        let status = response.status();
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
        };
        (status, body)
    }

    async fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, answer) = self.send(method, path, body).await;
        assert!(status.is_success(), "{method} {path}: {status} {answer:#}");
        answer
    }
}

fn user(user_name: &str, given: &str) -> Value {
    json!({
        "schemas": [USER],
        "userName": user_name,
        "name": {"givenName": given, "familyName": "Lovelace"},
        "emails": [{"value": user_name, "type": "work", "primary": true}],
        "title": "Engineer",
        "active": true,
    })
}

fn patch(operations: Value) -> Value {
    json!({"schemas": [PATCH], "Operations": operations})
}

/// The Lead of `email` in the emulator, if any.
fn lead(world: &World, email: &str) -> Option<serde_json::Map<String, Value>> {
    world
        .leads()
        .into_iter()
        .find(|l| l.get("Email").and_then(Value::as_str) == Some(email))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_pushed_over_scim_reaches_salesforce_and_leaves_it() {
    let (world, daemon, scim) = world().await;
    let ada = scim
        .ok("POST", "/Users", Some(user("ada@example.com", "Ada")))
        .await;
    let id = ada["id"].as_str().unwrap().to_string();
    assert_eq!(ada["meta"]["resourceType"], "User");
    let group = json!({"schemas": [GROUP], "displayName": "prospects", "members": [{"value": id}]});
    let group = scim.ok("POST", "/Groups", Some(group)).await;
    assert_eq!(group["members"][0]["value"], id.as_str());

    eventually("the Lead is created", || async {
        lead(&world, "ada@example.com").is_some()
    })
    .await;
    let created = lead(&world, "ada@example.com").unwrap();
    assert_eq!(created["FirstName"], "Ada");
    assert_eq!(created["Title"], "Engineer");

    // A change of title over SCIM reaches the Lead.
    let changed = patch(json!([{"op": "replace", "path": "title", "value": "Countess"}]));
    scim.ok("PATCH", &format!("/Users/{id}"), Some(changed))
        .await;
    eventually("the Lead's title follows", || async {
        lead(&world, "ada@example.com").is_some_and(|l| l["Title"] == "Countess")
    })
    .await;

    // Entra ID deactivates with the operation name capitalised and the
    // boolean as a string; the person leaves the rule's scope, and the
    // connection's remove action deletes the Lead.
    let deactivate = patch(json!([{"op": "Replace", "path": "active", "value": "False"}]));
    let answer = scim
        .as_token(ENTRA_TOKEN)
        .ok("PATCH", &format!("/Users/{id}"), Some(deactivate))
        .await;
    assert_eq!(answer["active"], false);
    eventually("the Lead is removed", || async {
        lead(&world, "ada@example.com").is_none()
    })
    .await;

    // Status says the last change came over SCIM, and from which token.
    let run = world.run(&["status", "person", &id, "--json"]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let status: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(status["last_change"]["source"], "scim:entra", "{status:#}");
    assert_eq!(
        status["person"]["attributes"]["user_name"],
        "ada@example.com"
    );
    let text = world.run(&["status", "person", &id]).await;
    assert!(text.stdout.contains("by scim:entra"), "{text:?}");
    // `audit --directory` lists each change with its maker, newest first.
    let audit = world
        .run(&["audit", "--directory", "--person", &id, "--json"])
        .await;
    assert_eq!(audit.code, Some(0), "{audit:?}");
    let changes: Value = serde_json::from_str(&audit.stdout).unwrap();
    let made: Vec<(&str, &str)> = changes
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["kind"].as_str().unwrap(), c["source"].as_str().unwrap()))
        .collect();
    assert_eq!(
        made,
        [
            ("update", "scim:entra"),
            ("update", "scim:okta"),
            ("join", "scim:okta"),
            ("create", "scim:okta")
        ],
        "{changes:#}"
    );
    for token in [OKTA_TOKEN, ENTRA_TOKEN] {
        assert!(
            !daemon.log().contains(token),
            "a SCIM token reached the log"
        );
        assert!(!run.all().contains(token));
    }
    daemon.stop().await;
}

/// Every refusal is a SCIM error body with the right status and
/// `scimType`, and changes nothing: the change sequence stands still.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_is_a_scim_error_and_changes_nothing() {
    let (world, daemon, scim) = world().await;
    let ada = scim
        .ok("POST", "/Users", Some(user("ada@example.com", "Ada")))
        .await;
    let id = ada["id"].as_str().unwrap().to_string();
    let seq_before = last_seq(&world).await;
    let users = format!("/Users/{id}");

    let expect = |status: StatusCode, scim_type: Option<&str>, answer: &Value, what: &str| {
        assert_eq!(
            answer["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error",
            "{what}: {answer:#}"
        );
        assert_eq!(
            answer["status"],
            status.as_u16().to_string(),
            "{what}: {answer:#}"
        );
        if let Some(scim_type) = scim_type {
            assert_eq!(answer["scimType"], scim_type, "{what}: {answer:#}");
        }
    };

    // Without a token, or with one that is not ours.
    for token in ["", "okta-scim-token-0123456789abcdeX"] {
        let response = scim
            .http
            .get(format!("{}/Users", scim.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(
            response.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
        let answer: Value = response.json().await.unwrap();
        expect(StatusCode::UNAUTHORIZED, None, &answer, "no token");
    }

    // Bodies: the wrong type, not JSON, too large. Each on a connection of
    // its own: the server refuses them without reading the whole body,
    // and closes the connection, which a pooled client would reuse.
    let raw = |content_type: &'static str, body: Vec<u8>| {
        let scim = scim.clone();
        async move {
            let response = reqwest::Client::new()
                .post(format!("{}/Users", scim.base))
                .bearer_auth(scim.token)
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        }
    };
    let (status, answer) = raw(
        "text/plain",
        user("x@example.com", "X").to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    expect(status, None, &answer, "content type");
    let (status, answer) = raw(SCIM_JSON, b"{\"schemas\": [".to_vec()).await;
    expect(status, Some("invalidSyntax"), &answer, "malformed JSON");
    let mut big = user("big@example.com", "Big");
    big["title"] = "x".repeat(2 << 20).into();
    // The server answers 413 from the Content-Length, before reading the
    // body, and closes the connection: a client still writing the body
    // may meet the close before it reads the answer. Either way nothing
    // is read past the cap, and nothing changes (checked at the end).
    let oversized = reqwest::Client::new()
        .post(format!("{}/Users", scim.base))
        .bearer_auth(scim.token)
        .header("content-type", SCIM_JSON)
        .body(big.to_string())
        .send()
        .await;
    match oversized {
        Ok(response) => {
            let status = response.status();
            assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
            expect(status, None, &response.json().await.unwrap(), "oversized");
        }
        Err(error) => assert!(error.is_request(), "{error:?}"),
    }
    // Without a Content-Length, the body is read up to the cap only.
    let chunks =
        futures_util::stream::iter((0..3).map(|_| Ok::<_, std::io::Error>(vec![b' '; 1 << 20])));
    let streamed = reqwest::Client::new()
        .post(format!("{}/Users", scim.base))
        .bearer_auth(scim.token)
        .header("content-type", SCIM_JSON)
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await;
    match streamed {
        Ok(response) => assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE),
        Err(error) => assert!(error.is_request(), "{error:?}"),
    }

    // Resources the directory cannot keep.
    let cases = [
        (
            json!({"schemas": [USER, "urn:example:custom"], "userName": "u@x", "urn:example:custom": {"level": 3}}),
            "invalidValue",
            "unknown schema",
        ),
        (
            json!({"schemas": [USER], "userName": "u@x", "nickName": "U"}),
            "invalidValue",
            "nick_name",
        ),
        (
            json!({"schemas": [USER], "name": {"givenName": "U"}}),
            "invalidValue",
            "userName",
        ),
        (
            json!({"schemas": [USER], "userName": 7}),
            "invalidValue",
            "string",
        ),
    ];
    for (body, scim_type, says) in cases {
        let (status, answer) = scim.send("POST", "/Users", Some(body)).await;
        expect(StatusCode::BAD_REQUEST, Some(scim_type), &answer, says);
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            answer["detail"].as_str().unwrap().contains(says),
            "{answer:#}"
        );
    }
    // A userName that differs only in case is the same userName.
    let (status, answer) = scim
        .send("POST", "/Users", Some(user("ADA@example.com", "Other")))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    expect(status, Some("uniqueness"), &answer, "duplicate userName");

    // Queries.
    let (status, answer) = scim
        .send("GET", "/Users?filter=userName%20eqq%20%22a%22", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    expect(status, Some("invalidFilter"), &answer, "bad filter");
    let (_, answer) = scim
        .send("GET", "/Users?filter=(userName%20eq%20%22a%22", None)
        .await;
    expect(
        StatusCode::BAD_REQUEST,
        Some("invalidFilter"),
        &answer,
        "unbalanced",
    );
    let (_, answer) = scim
        .send("GET", "/Users?filter=active%20gt%20true", None)
        .await;
    expect(
        StatusCode::BAD_REQUEST,
        Some("invalidFilter"),
        &answer,
        "gt on a boolean",
    );

    // PATCH.
    let patches = [
        (
            json!([{"op": "replace", "path": "user name", "value": "x"}]),
            "invalidPath",
        ),
        (
            json!([{"op": "replace", "path": "emails[type zz \"work\"].value", "value": "x"}]),
            "invalidFilter",
        ),
        (json!([{"op": "remove"}]), "noTarget"),
        (
            json!([{"op": "replace", "path": "id", "value": "other"}]),
            "mutability",
        ),
        (
            json!([{"op": "frobnicate", "path": "title", "value": "x"}]),
            "invalidSyntax",
        ),
        (
            json!([{"op": "add", "path": "groups", "value": [{"value": "g"}]}]),
            "mutability",
        ),
        (
            json!([{"op": "replace", "path": "active", "value": "perhaps"}]),
            "invalidValue",
        ),
    ];
    for (operations, scim_type) in patches {
        let (status, answer) = scim
            .send("PATCH", &users, Some(patch(operations.clone())))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{operations}: {answer:#}");
        expect(status, Some(scim_type), &answer, &operations.to_string());
    }
    let (_, answer) = scim
        .send("PATCH", &users, Some(json!({"Operations": []})))
        .await;
    expect(
        StatusCode::BAD_REQUEST,
        Some("invalidSyntax"),
        &answer,
        "no PatchOp schema",
    );

    // A stale version.
    let response = scim
        .http
        .put(format!("{}{users}", scim.base))
        .bearer_auth(scim.token)
        .header("content-type", SCIM_JSON)
        .header("if-match", "W/\"999\"")
        .body(user("ada@example.com", "Ada").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PRECONDITION_FAILED);

    // Nothing there.
    let (status, answer) = scim.send("GET", "/Users/nobody", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    expect(status, None, &answer, "missing user");
    let (status, answer) = scim.send("GET", "/Widgets", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    expect(status, None, &answer, "unknown endpoint");
    let (status, answer) = scim
        .send("POST", "/ServiceProviderConfig", Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    expect(status, None, &answer, "method");

    // Outside /scim/v2 nothing is said, token or not.
    let response = scim
        .http
        .get(format!("{}/../../Users", scim.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let text = response.text().await.unwrap();
    assert!(!text.contains("/Users"), "{text}");
    // A PATCH too large to apply while every other write waits.
    let many: Vec<Value> = (0..1001)
        .map(|n| json!({"op": "replace", "path": "title", "value": format!("t{n}")}))
        .collect();
    let (status, answer) = scim
        .send("PATCH", &users, Some(patch(Value::Array(many))))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        answer["detail"].as_str().unwrap().contains("at most 1000"),
        "{answer:#}"
    );

    assert_eq!(
        last_seq(&world).await,
        seq_before,
        "a refused request changed the directory"
    );
    let (_, again) = scim.send("GET", &users, None).await;
    assert_eq!(again["name"], ada["name"]);
    assert_eq!(again["meta"]["version"], ada["meta"]["version"]);
    daemon.stop().await;
}

/// The directory's newest change, read from the state file.
async fn last_seq(world: &World) -> i64 {
    let state = intact_state(&world.fixture);
    state
        .query_row("SELECT COALESCE(MAX(seq), 0) FROM changes", [], |r| {
            r.get(0)
        })
        .unwrap()
}

/// The requests Microsoft documents for Entra ID's SCIM client ("Develop
/// and plan provisioning for a SCIM endpoint"), in its order, with its
/// bodies: an extra schema of its own, `"roles": []`, operation names
/// capitalised, `emails[type eq "work"].value` paths, and members removed
/// by value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entra_ids_documented_sequence() {
    let (_world, daemon, scim) = world().await;
    let scim = scim.as_token(ENTRA_TOKEN);
    let user_name = "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1";
    let query = format!("/Users?filter=userName%20eq%20%22{user_name}%22");
    let empty = scim.ok("GET", &query, None).await;
    assert_eq!(empty["totalResults"], 0);
    assert_eq!(empty["Resources"], json!([]));

    let created = scim
        .ok(
            "POST",
            "/Users",
            Some(json!({
                "schemas": [USER, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
                "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
                "userName": user_name,
                "active": true,
                "emails": [{"primary": true, "type": "work", "value": "Test_User_fd0ea19b@testuser.com"}],
                "meta": {"resourceType": "User"},
                "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
                "roles": [],
            })),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(
        created["externalId"],
        "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"
    );
    assert_eq!(
        scim.ok("GET", &format!("/Users/{id}"), None).await["userName"],
        user_name
    );
    // By userName, in another case, and by externalId.
    let found = scim
        .ok(
            "GET",
            &query
                .to_uppercase()
                .replace("/USERS?FILTER=USERNAME%20EQ", "/Users?filter=userName%20eq"),
            None,
        )
        .await;
    assert_eq!(found["totalResults"], 1, "{found:#}");
    let by_external = scim
        .ok(
            "GET",
            "/Users?filter=externalId%20eq%20%220a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef%22",
            None,
        )
        .await;
    assert_eq!(by_external["Resources"][0]["id"], id.as_str());
    let none = scim
        .ok(
            "GET",
            "/Users?filter=userName%20eq%20%22non-existent%22",
            None,
        )
        .await;
    assert_eq!(none["totalResults"], 0);

    let user = format!("/Users/{id}");
    let updated = scim
        .ok(
            "PATCH",
            &user,
            Some(patch(json!([
                {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "updatedEmail@microsoft.com"},
                {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
            ]))),
        )
        .await;
    assert_eq!(updated["emails"][0]["value"], "updatedEmail@microsoft.com");
    assert_eq!(updated["name"]["familyName"], "updatedFamilyName");
    let renamed = scim
        .ok(
            "PATCH",
            &user,
            Some(patch(
                json!([{"op": "Replace", "path": "userName", "value": "5b50642d@testuser.com"}]),
            )),
        )
        .await;
    assert_eq!(renamed["userName"], "5b50642d@testuser.com");
    // Entra ID's default mappings: the manager as a bare id, a fax number.
    let mapped = scim
        .ok(
            "PATCH",
            &user,
            Some(patch(json!([
                {"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": "m-42"},
                {"op": "Add", "path": "phoneNumbers[type eq \"fax\"].value", "value": "+1 555 0100"},
            ]))),
        )
        .await;
    assert_eq!(
        mapped["phoneNumbers"][0],
        json!({"type": "fax", "value": "+1 555 0100"}),
        "{mapped:#}"
    );
    assert_eq!(
        mapped["urn:provisioner:params:scim:schemas:extension:directory:2.0:User"]["manager"],
        "m-42"
    );
    let disabled = scim
        .ok(
            "PATCH",
            &user,
            Some(patch(
                json!([{"op": "Replace", "path": "active", "value": false}]),
            )),
        )
        .await;
    assert_eq!(disabled["active"], false);

    // Groups.
    let group = scim
        .ok(
            "POST",
            "/Groups",
            Some(json!({
                "schemas": [GROUP, "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/Group"],
                "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
                "displayName": "displayName",
                "meta": {"resourceType": "Group"},
            })),
        )
        .await;
    let gid = group["id"].as_str().unwrap().to_string();
    let path = format!("/Groups/{gid}");
    let read = scim
        .ok("GET", &format!("{path}?excludedAttributes=members"), None)
        .await;
    assert_eq!(read["displayName"], "displayName");
    assert!(read.get("members").is_none(), "{read:#}");
    let listed = scim
        .ok(
            "GET",
            "/Groups?excludedAttributes=members&filter=displayName%20eq%20%22displayName%22",
            None,
        )
        .await;
    assert_eq!(listed["totalResults"], 1);
    assert_eq!(listed["Resources"][0]["id"], gid.as_str());
    let new_name = "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName";
    scim.ok(
        "PATCH",
        &path,
        Some(patch(
            json!([{"op": "Replace", "path": "displayName", "value": new_name}]),
        )),
    )
    .await;
    let added = scim
        .ok(
            "PATCH",
            &path,
            Some(patch(
                json!([{"op": "Add", "path": "members", "value": [{"$ref": null, "value": id}]}]),
            )),
        )
        .await;
    assert_eq!(added["displayName"], new_name);
    assert_eq!(added["members"][0]["value"], id.as_str());
    // Entra ID asks whether a user is a member with a filter on both.
    let probe = |member: &str| {
        format!(
            "/Groups?excludedAttributes=members&filter=id%20eq%20%22{gid}%22%20and%20members%5Bvalue%20eq%20%22{member}%22%5D"
        )
    };
    assert_eq!(scim.ok("GET", &probe(&id), None).await["totalResults"], 1);
    assert_eq!(
        scim.ok("GET", &probe("someone-else"), None).await["totalResults"],
        0
    );
    // The group's id stayed through the rename, and the person carries it.
    assert_eq!(
        scim.ok("GET", &user, None).await["groups"][0]["value"],
        gid.as_str()
    );
    let removed = scim
        .ok("PATCH", &path, Some(patch(json!([{"op": "Remove", "path": "members", "value": [{"$ref": null, "value": id}]}]))))
        .await;
    assert_eq!(removed["members"], json!([]));
    let (status, _) = scim.send("DELETE", &path, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = scim.send("GET", &path, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = scim.send("DELETE", &user, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = scim.send("GET", &user, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    daemon.stop().await;
}

/// The requests Okta documents for its SCIM 2.0 client: a `userName eq`
/// query before the create, a create carrying a password and empty groups,
/// updates by PUT, deactivation by `active: false` without a path, and
/// groups renamed with their own id restated and members removed by
/// filter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oktas_documented_sequence() {
    let (world, daemon, scim) = world().await;
    let empty = scim
        .ok(
            "GET",
            "/Users?filter=userName%20eq%20%22test.user@okta.local%22&startIndex=1&count=100",
            None,
        )
        .await;
    assert_eq!(empty["totalResults"], 0);
    let body = json!({
        "schemas": [USER],
        "userName": "test.user@okta.local",
        "name": {"givenName": "Test", "familyName": "User"},
        "emails": [{"primary": true, "value": "test.user@okta.local", "type": "work"}],
        "displayName": "Test User",
        "locale": "en-US",
        "externalId": "00ujl29u0le5T6Aj10h7",
        "groups": [],
        "password": "1mz050nq-never-kept",
        "active": true,
    });
    let created = scim.ok("POST", "/Users", Some(body.clone())).await;
    let id = created["id"].as_str().unwrap().to_string();
    assert!(created.get("password").is_none());
    let user = format!("/Users/{id}");
    assert_eq!(
        scim.ok("GET", &user, None).await["displayName"],
        "Test User"
    );
    let mut replaced = body.clone();
    replaced["name"]["familyName"] = "Renamed".into();
    replaced["id"] = id.clone().into();
    let after = scim.ok("PUT", &user, Some(replaced)).await;
    assert_eq!(after["name"]["familyName"], "Renamed");
    let off = scim
        .ok(
            "PATCH",
            &user,
            Some(patch(
                json!([{"op": "replace", "value": {"active": false}}]),
            )),
        )
        .await;
    assert_eq!(off["active"], false);

    let group = scim
        .ok(
            "POST",
            "/Groups",
            Some(json!({"schemas": [GROUP], "displayName": "Test SCIMv2", "members": []})),
        )
        .await;
    let gid = group["id"].as_str().unwrap().to_string();
    let path = format!("/Groups/{gid}");
    let renamed = scim
        .ok("PATCH", &path, Some(patch(json!([{"op": "replace", "value": {"id": gid, "displayName": "Test SCIMv2 renamed"}}]))))
        .await;
    assert_eq!(renamed["displayName"], "Test SCIMv2 renamed");
    scim.ok("PATCH", &path, Some(patch(json!([{"op": "add", "path": "members", "value": [{"value": id, "display": "test.user@okta.local"}]}]))))
        .await;
    let filter = format!("members[value eq \"{id}\"]");
    let without = scim
        .ok(
            "PATCH",
            &path,
            Some(patch(json!([{"op": "remove", "path": filter}]))),
        )
        .await;
    assert_eq!(without["members"], json!([]));
    let (status, _) = scim.send("DELETE", &path, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let state = intact_state(&world.fixture);
    let passwords: i64 = state
        .query_row(
            "SELECT COUNT(*) FROM people WHERE attributes LIKE '%1mz050nq%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(passwords, 0, "a password was kept");
    assert!(!daemon.log().contains("1mz050nq"));
    daemon.stop().await;
}

/// Fifty clients at once: fifty creates, then each adding its person to
/// one group and retitling them, lose nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_clients_lose_no_write() {
    let (_world, daemon, scim) = world().await;
    let group = scim
        .ok(
            "POST",
            "/Groups",
            Some(json!({"schemas": [GROUP], "displayName": "crowd"})),
        )
        .await;
    let gid = group["id"].as_str().unwrap().to_string();
    let clients: Vec<_> = (0..50)
        .map(|n| {
            let scim = scim.clone();
            let gid = gid.clone();
            tokio::spawn(async move {
                let created = scim
                    .ok(
                        "POST",
                        "/Users",
                        Some(user(&format!("u{n}@example.com"), "U")),
                    )
                    .await;
                let id = created["id"].as_str().unwrap().to_string();
                let join =
                    patch(json!([{"op": "add", "path": "members", "value": [{"value": id}]}]));
                scim.ok("PATCH", &format!("/Groups/{gid}"), Some(join))
                    .await;
                let title =
                    patch(json!([{"op": "replace", "path": "title", "value": format!("T{n}")}]));
                scim.ok("PATCH", &format!("/Users/{id}"), Some(title)).await;
                id
            })
        })
        .collect();
    let mut ids = Vec::new();
    for client in clients {
        ids.push(client.await.unwrap());
    }
    let group = scim.ok("GET", &format!("/Groups/{gid}"), None).await;
    assert_eq!(group["members"].as_array().unwrap().len(), 50, "{group:#}");
    let all = scim.ok("GET", "/Users?count=1000", None).await;
    assert_eq!(all["totalResults"], 50);
    for resource in all["Resources"].as_array().unwrap() {
        let n = resource["userName"]
            .as_str()
            .unwrap()
            .trim_start_matches('u')
            .trim_end_matches("@example.com");
        assert_eq!(resource["title"], format!("T{n}"), "{resource:#}");
        assert_eq!(resource["groups"][0]["display"], "crowd");
    }
    daemon.stop().await;
}

/// The Python `scim2-client` (installed by `tests/setup.sh`), which checks
/// every answer against the schemas the service provider publishes:
/// discovery, then a User's and a Group's whole life.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scim_client_no_one_here_wrote_drives_the_whole_life() {
    let (_world, daemon, scim) = world().await;
    let python = scim_client_python();
    let output = tokio::process::Command::new(&python)
        .arg(repo_root().join("tests/scim-client/drive.py"))
        .args([&scim.base, OKTA_TOKEN])
        .output()
        .await
        .unwrap_or_else(|e| panic!("running {}: {e}", python.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "scim2-client refused an answer:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: Value = serde_json::from_str(stdout.trim()).unwrap();
    let id = seen["created"]["id"].as_str().unwrap();
    assert_eq!(seen["resource_types"], json!(["Group", "User"]));
    assert_eq!(
        seen["found"],
        json!([id]),
        "found by userName in another case"
    );
    assert_eq!(seen["replaced_title"], "Countess");
    assert_eq!(seen["active_after_patch"], false);
    assert_eq!(seen["group_members"], json!([id]));
    assert_eq!(seen["user_groups"], json!(["Analysts"]));
    assert_eq!(seen["left"], 0);
    daemon.stop().await;
}

/// Where `tests/scim-client.sh` installs the client.
fn scim_client_python() -> std::path::PathBuf {
    let venv = std::env::var_os("PROVISIONER_SCIM_CLIENT_VENV")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(std::path::PathBuf::from)
                .unwrap_or_else(|| {
                    std::path::PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache")
                });
            cache.join("provisioner-test-tools/scim2-client-0.13.2")
        });
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "the SCIM client is not installed at {}; run `bash tests/setup.sh`",
        python.display()
    );
    python
}

/// A person imported from a file has no userName of their own: SCIM shows
/// their email as it, an identity provider's `userName eq` query finds
/// them by it, and a create with it is refused as taken, so that the
/// provider links to the person rather than making a second one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_imported_from_a_file_is_found_by_their_email() {
    let (world, daemon, scim) = world().await;
    world
        .import(json!([{"id": "p1", "email": "Grace@Example.com", "given_name": "Grace", "groups": ["prospects"]}]))
        .await;
    let found = scim
        .ok(
            "GET",
            "/Users?filter=userName%20eq%20%22grace@example.com%22",
            None,
        )
        .await;
    assert_eq!(found["totalResults"], 1, "{found:#}");
    assert_eq!(found["Resources"][0]["id"], "p1");
    assert_eq!(found["Resources"][0]["userName"], "Grace@Example.com");
    let (status, answer) = scim
        .send("POST", "/Users", Some(user("grace@example.com", "Grace")))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer:#}");
    assert_eq!(answer["scimType"], "uniqueness");

    // A PATCH of something else leaves her without a userName of her own.
    let title = patch(json!([{"op": "replace", "path": "title", "value": "Admiral"}]));
    scim.ok("PATCH", "/Users/p1", Some(title)).await;
    let run = world.run(&["people", "show", "p1"]).await;
    assert!(run.stdout.contains("Admiral"), "{run:?}");
    assert!(!run.stdout.contains("user_name"), "{run:?}");
    daemon.stop().await;
}

/// A group that only imported people name is a group too: a SCIM group
/// renamed onto its name would merge the two, so the rename is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_cannot_take_the_name_people_carry() {
    let (world, daemon, scim) = world().await;
    world
        .import(json!([{"id": "p1", "email": "p1@example.com", "groups": ["admins"]}]))
        .await;
    let listed = scim
        .ok(
            "GET",
            "/Groups?filter=displayName%20eq%20%22admins%22",
            None,
        )
        .await;
    assert_eq!(listed["totalResults"], 1);
    assert_eq!(listed["Resources"][0]["members"][0]["value"], "p1");
    let (status, _) = scim
        .send(
            "POST",
            "/Groups",
            Some(json!({"schemas": [GROUP], "displayName": "admins"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let ops = scim
        .ok(
            "POST",
            "/Groups",
            Some(json!({"schemas": [GROUP], "displayName": "ops"})),
        )
        .await;
    let rename = patch(json!([{"op": "replace", "path": "displayName", "value": "admins"}]));
    let (status, answer) = scim
        .send(
            "PATCH",
            &format!("/Groups/{}", ops["id"].as_str().unwrap()),
            Some(rename),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer:#}");
    assert_eq!(answer["scimType"], "uniqueness");
    let run = world.run(&["people", "show", "p1"]).await;
    assert!(run.stdout.contains("admins"), "{run:?}");
    daemon.stop().await;
}

/// A self-signed certificate for `localhost` and 127.0.0.1: (certificate
/// PEM, key PEM).
fn certificate() -> (String, String) {
    let pair =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    (pair.cert.pem(), pair.signing_key.serialize_pem())
}

/// A client that trusts only `certificate`.
fn trusting(certificate: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(certificate.as_bytes()).unwrap()])
        .build()
        .unwrap()
}

/// `[scim.tls]`: HTTPS with the operator's certificate, which a client must
/// trust; plain HTTP on the same port, and a client that connects and
/// never starts its handshake, get nothing and hold up no one; a renewed
/// certificate written over the files is served from the next handshake
/// on, without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scim_is_served_over_tls_with_a_certificate_renewed_in_place() {
    let (old_cert, old_key) = certificate();
    let (world, daemon, scim) = world_with(
        "\n[scim.tls]\ncertificate = \"scim.crt\"\nkey = \"scim.key\"\n",
        &[("scim.crt", &old_cert), ("scim.key", &old_key)],
    )
    .await;
    assert!(scim.base.starts_with("https://127.0.0.1:"), "{}", scim.base);
    let port = scim.base["https://127.0.0.1:".len()..]
        .split('/')
        .next()
        .unwrap()
        .to_string();

    // A client that connects and says nothing, held open throughout.
    let silent = tokio::net::TcpStream::connect(format!("127.0.0.1:{port}"))
        .await
        .unwrap();

    let scim = Scim {
        http: trusting(&old_cert),
        ..scim
    };
    // Served while the silent client holds its connection: well before
    // the handshake limit would let a server that handshakes in its accept
    // loop move on.
    let ada = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        scim.ok("POST", "/Users", Some(user("ada@example.com", "Ada"))),
    )
    .await
    .expect("a silent client holds up the server");
    assert!(
        ada["meta"]["location"]
            .as_str()
            .unwrap()
            .starts_with(&scim.base),
        "{ada:#}"
    );

    // A client that does not trust the certificate gets no answer.
    let untrusting = reqwest::Client::new()
        .get(format!("{}/Users", scim.base))
        .bearer_auth(OKTA_TOKEN)
        .send()
        .await;
    assert!(untrusting.is_err(), "{untrusting:?}");

    // Plain HTTP on the TLS port: no HTTP answer, let alone a person.
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/scim/v2/Users"))
        .bearer_auth(OKTA_TOKEN)
        .send()
        .await;
    assert!(plain.is_err(), "{plain:?}");

    // Renewed in place: a new key and certificate over the old files.
    let (new_cert, new_key) = certificate();
    write_private(&world.fixture.path().join("scim.key"), &new_key);
    write_private(&world.fixture.path().join("scim.crt"), &new_cert);
    let renewed = Scim {
        http: trusting(&new_cert),
        ..scim.clone()
    };
    let found = renewed
        .ok(
            "GET",
            "/Users?filter=userName%20eq%20%22ada@example.com%22",
            None,
        )
        .await;
    assert_eq!(found["totalResults"], 1);
    let stale = trusting(&old_cert)
        .get(format!("{}/Users", scim.base))
        .bearer_auth(OKTA_TOKEN)
        .send()
        .await;
    assert!(
        stale.is_err(),
        "the old certificate is still served: {stale:?}"
    );

    // A key that does not match is not served; the pair in service stays.
    let (_, stray_key) = certificate();
    write_private(&world.fixture.path().join("scim.key"), &stray_key);
    let fresh = Scim {
        http: trusting(&new_cert),
        ..scim.clone()
    };
    let still = fresh.ok("GET", "/ServiceProviderConfig", None).await;
    assert!(still["schemas"].is_array());
    eventually("the refused pair to be logged", async || {
        daemon.log().contains("cannot be served")
    })
    .await;

    drop(silent);
    daemon.stop().await;
}

/// `check` refuses a TLS pair that cannot be served, naming the file and
/// what was expected, before anything listens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_refuses_a_tls_pair_that_cannot_be_served() {
    let world = World::default().await;
    let (cert, key) = certificate();
    let (_, other_key) = certificate();
    let dir = world.fixture.path();
    write_private(&dir.join("scim.crt"), &cert);
    write_private(&dir.join("mine.key"), &key);
    write_private(&dir.join("other.key"), &other_key);
    write_private(&dir.join("empty.key"), "not a key\n");
    write_private(&dir.join("open.key"), &key);
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.join("open.key"), std::fs::Permissions::from_mode(0o644))
            .unwrap();
    }
    world.fixture.write_secrets(&format!(
        "{}scim_okta = \"{OKTA_TOKEN}\"\n",
        json_store_secrets()
    ));
    let cases = [
        (
            "scim.crt",
            "other.key",
            "does not belong to the certificate",
        ),
        ("scim.crt", "empty.key", "holds no PEM private key"),
        ("scim.crt", "open.key", "readable by every user"),
        ("mine.key", "mine.key", "holds no PEM certificate"),
        ("missing.crt", "mine.key", "missing.crt"),
    ];
    for (certificate, key, expected) in cases {
        world.configure(
            ALL,
            "",
            &format!(
                "\n[scim]\nlisten = \"0.0.0.0:0\"\nbase_url = \"https://idp.example.com/scim/v2\"\n[scim.tokens]\nokta = {{ secrets_file = \"scim_okta\" }}\n[scim.tls]\ncertificate = \"{certificate}\"\nkey = \"{key}\"\n"
            ),
        );
        let check = world.run(&["check"]).await;
        assert_eq!(check.code, Some(1), "{certificate} {key}: {check:?}");
        let said = format!("{}{}", check.stdout, check.stderr);
        assert!(
            said.contains("[scim.tls]") && said.contains(expected),
            "{certificate} {key}: {said}"
        );
        assert!(
            !said.contains("PRIVATE KEY-----\nM"),
            "the key leaked: {said}"
        );
    }
    world.configure(
        ALL,
        "",
        "\n[scim]\nlisten = \"0.0.0.0:0\"\nbase_url = \"https://idp.example.com/scim/v2\"\n[scim.tokens]\nokta = { secrets_file = \"scim_okta\" }\n[scim.tls]\ncertificate = \"scim.crt\"\nkey = \"mine.key\"\n",
    );
    let check = world.run(&["check"]).await;
    assert_eq!(
        check.code,
        Some(0),
        "a good pair beyond loopback: {check:?}"
    );
}

/// A request with `If-Match`: its status, and the answer's `ETag`.
async fn send_if_match(
    scim: &Scim,
    method: &str,
    path: &str,
    tag: &str,
    body: Value,
) -> (StatusCode, Option<String>) {
    let response = scim
        .http
        .request(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            format!("{}{path}", scim.base),
        )
        .bearer_auth(scim.token)
        .header("content-type", SCIM_JSON)
        .header("if-match", tag)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let etag = response
        .headers()
        .get("etag")
        .map(|t| t.to_str().unwrap().to_string());
    (response.status(), etag)
}

/// A group's version covers its members however they joined: a client
/// that read a group before someone joined it from the command line
/// cannot write its older member list back over them, with or without a
/// record for the group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_written_from_an_older_read_does_not_undo_a_join_made_elsewhere() {
    let (world, daemon, scim) = world().await;
    let ada = scim
        .ok("POST", "/Users", Some(user("ada@example.com", "Ada")))
        .await;
    let bob = scim
        .ok("POST", "/Users", Some(user("bob@example.com", "Bob")))
        .await;
    let (ada, bob) = (ada["id"].as_str().unwrap(), bob["id"].as_str().unwrap());
    let group = scim
        .ok(
            "POST",
            "/Groups",
            Some(
                json!({"schemas": [GROUP], "displayName": "analysts", "members": [{"value": ada}]}),
            ),
        )
        .await;
    let read = group["meta"]["version"].as_str().unwrap().to_string();
    let path = format!("/Groups/{}", group["id"].as_str().unwrap());

    let run = world
        .run(&["people", "set", bob, "--group", "analysts"])
        .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let only_ada =
        json!({"schemas": [GROUP], "displayName": "analysts", "members": [{"value": ada}]});
    let (status, _) = send_if_match(&scim, "PUT", &path, &read, only_ada.clone()).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    let now = scim.ok("GET", &path, None).await;
    assert_eq!(now["members"].as_array().unwrap().len(), 2, "{now:#}");
    let fresh = now["meta"]["version"].as_str().unwrap();
    assert_ne!(fresh, read);
    let (status, etag) = send_if_match(&scim, "PUT", &path, fresh, only_ada).await;
    assert_eq!(status, StatusCode::OK, "the current version is written");
    assert!(etag.is_some_and(|t| t != fresh));

    // A group only people name, with no record: its version is its members.
    let run = world
        .run(&["people", "set", ada, "--group", "readers"])
        .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let listed = scim
        .ok(
            "GET",
            "/Groups?filter=displayName%20eq%20%22readers%22&excludedAttributes=members",
            None,
        )
        .await;
    let readers = &listed["Resources"][0];
    let read = readers["meta"]["version"].as_str().unwrap().to_string();
    let path = format!("/Groups/{}", readers["id"].as_str().unwrap());
    let got = scim.ok("GET", &path, None).await;
    assert_eq!(
        got["meta"]["version"],
        read.as_str(),
        "one version, however read"
    );
    let run = world
        .run(&["people", "set", bob, "--group", "readers"])
        .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let leave = patch(json!([{"op": "remove", "path": format!("members[value eq \"{ada}\"]")}]));
    let (status, _) = send_if_match(&scim, "PATCH", &path, &read, leave.clone()).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    let now = scim.ok("GET", &path, None).await;
    let fresh = now["meta"]["version"].as_str().unwrap();
    assert_ne!(fresh, read);
    let (status, _) = send_if_match(&scim, "PATCH", &path, fresh, leave).await;
    assert_eq!(status, StatusCode::OK);
    daemon.stop().await;
}

/// A filter that no index answers reads everyone; past `[scim] max_scan`
/// people it is refused with `tooMany`, naming the filters that are
/// looked up instead. Lookups by userName, and listing everyone page by
/// page, still answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_that_would_read_everyone_is_refused_past_max_scan() {
    let (_world, daemon, scim) = world_with("max_scan = 3\n", &[]).await;
    for n in 0..5 {
        scim.ok(
            "POST",
            "/Users",
            Some(user(&format!("u{n}@example.com"), "U")),
        )
        .await;
    }
    let (status, answer) = scim
        .send("GET", "/Users?filter=title%20eq%20%22Engineer%22", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer:#}");
    assert_eq!(answer["scimType"], "tooMany", "{answer:#}");
    assert!(
        answer["detail"].as_str().unwrap().contains("userName eq"),
        "{answer:#}"
    );
    let found = scim
        .ok(
            "GET",
            "/Users?filter=userName%20eq%20%22U3@example.com%22",
            None,
        )
        .await;
    assert_eq!(found["totalResults"], 1);
    let page = scim.ok("GET", "/Users?startIndex=2&count=2", None).await;
    assert_eq!(page["totalResults"], 5);
    assert_eq!(page["Resources"].as_array().unwrap().len(), 2);
    daemon.stop().await;
}
