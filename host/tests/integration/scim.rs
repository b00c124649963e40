//! The SCIM 2.0 connector through the real binary, against the reference
//! SCIM server (`scim2-server`, installed by `tests/setup.sh`): a
//! person's whole life as the sync engine drives it, adoption of a user
//! an administrator made by hand, and `plugins conform`.

use crate::common;
use crate::conform::verdict;

use common::world::{actions, summary};
use common::*;
use scim_reference::{Options, ScimServer};
use serde_json::{Value, json};

const TOKEN_SECRET: &str = "scim-test-token-0123456789";

/// The reference server, started off the async worker threads (its client
/// and its start are blocking).
fn start(features: Option<Value>) -> ScimServer {
    tokio::task::block_in_place(|| {
        ScimServer::start(Options {
            token: TOKEN_SECRET.into(),
            features,
        })
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

fn users(server: &ScimServer) -> Vec<Value> {
    tokio::task::block_in_place(|| server.users())
}

fn fixture(server: &ScimServer, preferences: &str) -> Fixture {
    fixture_with(server, preferences, "")
}

/// The fixture, with `rule` added to the `staff` rule's table.
fn fixture_with(server: &ScimServer, preferences: &str, rule: &str) -> Fixture {
    let fixture = Fixture::new(&[test_plugins::SCIM2]);
    fixture.write_config(&format!(
        r#"{HEADER}
[connections.scim]
plugin = "scim2"
allow_insecure_loopback = true

[connections.scim.settings]
host = "{host}"
base_path = "{base}"

[connections.scim.secrets]
token = {{ secrets_file = "scim_token" }}

[connections.scim.preferences]
{preferences}

[rules.staff]
connection = "scim"
scope = {{ group = "staff" }}
{rule}
"#,
        host = server.host(),
        base = scim_reference::BASE_PATH,
    ));
    fixture.write_secrets(&format!("scim_token = \"{TOKEN_SECRET}\"\n"));
    fixture
}

fn person(id: &str, title: &str, groups: &[&str]) -> Value {
    json!({ "id": id, "groups": groups, "given_name": "Ada", "family_name": id,
            "email": format!("{id}@example.com"), "title": title, "department": "Research" })
}

async fn import(fixture: &Fixture, people: Value) {
    std::fs::write(fixture.path().join("people.json"), people.to_string()).unwrap();
    let run = fixture
        .provisioner(&["people", "import", "people.json"], &[])
        .await;
    assert_eq!(run.code, Some(0), "{run:?}");
}

async fn sync(fixture: &Fixture) -> Value {
    let run = fixture.provisioner(&["sync", "--json"], &[]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_no_secret(&run.all());
    assert!(!run.all().contains(TOKEN_SECRET), "{run:?}");
    serde_json::from_str(&run.stdout).unwrap()
}

fn user<'a>(users: &'a [Value], user_name: &str) -> &'a Value {
    users
        .iter()
        .find(|u| u["userName"] == user_name)
        .unwrap_or_else(|| panic!("no user {user_name}: {users:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_is_created_updated_disabled_and_deleted_in_the_reference_server() {
    let server = start(None);
    let fixture = fixture(
        &server,
        "allow_delete = true\nremove_action_deleted = \"delete\"",
    );
    import(
        &fixture,
        json!([
            person("ada", "Engineer", &["staff"]),
            person("bob", "Clerk", &["staff"]),
            person("eve", "Spy", &[])
        ]),
    )
    .await;

    let report = sync(&fixture).await;
    assert_eq!(actions(&report, "staff", "created"), 2, "{report}");
    let all = users(&server);
    assert_eq!(all.len(), 2, "only people in scope: {all:?}");
    let ada = user(&all, "ada@example.com");
    assert_eq!(ada["name"]["familyName"], "ada");
    assert_eq!(ada["displayName"], "Ada ada");
    assert_eq!(
        ada["emails"][0],
        json!({"type": "work", "value": "ada@example.com"})
    );
    assert_eq!(
        ada[scim2_connector::wire::ENTERPRISE]["department"],
        "Research"
    );
    assert_eq!(ada["active"], true);

    // Nothing changed: nothing is sent, and everyone is a success.
    let report = sync(&fixture).await;
    assert_eq!(summary(&report, "staff", "success"), 2, "{report}");
    assert_eq!(actions(&report, "staff", "updated"), 0, "{report}");

    // A change of title is one update, of that user only.
    import(
        &fixture,
        json!([
            person("ada", "Countess", &["staff"]),
            person("bob", "Clerk", &["staff"]),
            person("eve", "Spy", &[])
        ]),
    )
    .await;
    let report = sync(&fixture).await;
    assert_eq!(actions(&report, "staff", "updated"), 1, "{report}");
    assert_eq!(
        user(&users(&server), "ada@example.com")["title"],
        "Countess"
    );

    // Bob leaves the scope: disabled, as the connection's default remove
    // action says; then deleted from the directory: deleted there too.
    import(
        &fixture,
        json!([
            person("ada", "Countess", &["staff"]),
            person("bob", "Clerk", &[]),
            person("eve", "Spy", &[])
        ]),
    )
    .await;
    let report = sync(&fixture).await;
    assert_eq!(actions(&report, "staff", "disabled"), 1, "{report}");
    assert_eq!(user(&users(&server), "bob@example.com")["active"], false);

    let run = fixture.provisioner(&["people", "delete", "ada"], &[]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let report = sync(&fixture).await;
    assert_eq!(actions(&report, "staff", "removed"), 1, "{report}");
    let left: Vec<_> = users(&server)
        .iter()
        .map(|u| u["userName"].clone())
        .collect();
    assert_eq!(left, vec![json!("bob@example.com")]);
}

/// A user an administrator made by hand is found by its userName and
/// adopted, brought up to date, never duplicated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_made_by_hand_is_adopted() {
    let server = start(Some(scim_reference::without_bulk()));
    let existing = tokio::task::block_in_place(|| {
        server.create_user(json!({
            "schemas": [scim2_connector::wire::USER],
            "userName": "ADA@example.com",
            "title": "Intern",
        }))
    });
    let fixture = fixture(&server, "");
    import(&fixture, json!([person("ada", "Engineer", &["staff"])])).await;
    let report = sync(&fixture).await;
    assert_eq!(actions(&report, "staff", "adopted"), 1, "{report}");
    let all = users(&server);
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["id"], existing.as_str());
    assert_eq!(all[0]["title"], "Engineer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scim_connector_conforms_against_the_reference_server() {
    let server = start(None);
    let fixture = fixture(&server, "allow_delete = true");
    let run = fixture
        .provisioner(&["plugins", "conform", "scim", "--json"], &[])
        .await;
    let report: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("no JSON report ({e}): {run:?}"));
    assert_eq!(run.code, Some(0), "{report:#}");
    let failed: Vec<_> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["verdict"] == "fail")
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
    // Every check applies to a SCIM provider; none may be skipped.
    for check in [
        "test-connection refuses wrong credentials",
        "create",
        "lookup",
        "read back as written",
        "update",
        "versions",
        "list",
        "batch with a bad operation",
        "disable",
        "enable",
        "delete",
        "lookup after delete",
        "update after delete",
        "transient answers",
    ] {
        assert_eq!(verdict(&report, check), "pass", "{check}: {report:#}");
    }
    assert_eq!(report["left"], json!([]));
    assert!(users(&server).is_empty(), "conform left users behind");
    assert!(!run.all().contains(TOKEN_SECRET));
}

fn groups(server: &ScimServer) -> Vec<Value> {
    tokio::task::block_in_place(|| server.groups())
}

/// The userNames of a group's members in the server.
fn members(server: &ScimServer, group: &str) -> Vec<String> {
    let all = users(server);
    let groups = groups(server);
    let group = groups
        .iter()
        .find(|g| g["displayName"] == group)
        .unwrap_or_else(|| panic!("no group {group}: {groups:?}"));
    let mut names: Vec<String> = group["members"]
        .as_array()
        .map(|m| m.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|m| {
            let id = m["value"].as_str().unwrap_or_default();
            all.iter()
                .find(|u| u["id"] == id)
                .and_then(|u| u["userName"].as_str())
                .unwrap_or(id)
                .to_string()
        })
        .collect();
    names.sort();
    names
}

/// Groups pushed through the real binary into the reference server: made
/// with the members the rule has there, kept equal to the directory's
/// group as people join, leave and leave the rule's scope.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_groups_follow_the_directory_in_the_reference_server() {
    let server = start(None);
    let fixture = fixture_with(&server, "", "push_groups = [\"engineering\", \"sales\"]");
    import(
        &fixture,
        json!([
            person("ada", "Engineer", &["staff", "engineering"]),
            person("bob", "Engineer", &["staff", "engineering"]),
            person("cy", "Seller", &["staff", "sales"]),
            person("eve", "Outsider", &["engineering"]),
        ]),
    )
    .await;
    let report = sync(&fixture).await;
    let lines = report["pass"]["rules"][0]["groups"].clone();
    assert_eq!(
        lines,
        json!([
            {"group": "engineering", "action": "created", "detail": ""},
            {"group": "sales", "action": "created", "detail": ""},
        ]),
        "{report}"
    );
    assert_eq!(
        members(&server, "engineering"),
        ["ada@example.com", "bob@example.com"]
    );
    assert_eq!(members(&server, "sales"), ["cy@example.com"]);

    // The Group Sync Summary, and one group's standing and trace.
    let run = fixture.provisioner(&["status", "--json"], &[]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let status: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        status["rules"][0]["group_counts"],
        json!({"impacted": 2, "success": 2, "unsynced": 0, "partially_synced": 0, "failed": 0}),
        "{status:#}"
    );
    let run = fixture.provisioner(&["status"], &[]).await;
    assert!(run.stdout.contains("GROUPS OF RULE"), "{}", run.stdout);
    let run = fixture
        .provisioner(&["status", "group", "engineering", "--json"], &[])
        .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let group: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(group["members"], 3, "ada, bob and eve, in the directory");
    let standing = &group["rules"][0];
    assert_eq!(standing["link"]["state"], "synced", "{group:#}");
    assert_eq!(
        standing["link"]["members"].as_array().map(Vec::len),
        Some(2)
    );
    assert_eq!(standing["trace"][0]["action"], "group-create", "{group:#}");
    assert_eq!(standing["trace"][0]["outcome"], "ok");
    assert_eq!(standing["trace"][0]["detail"]["members"], 2);
    let run = fixture
        .provisioner(&["status", "group", "engineering"], &[])
        .await;
    assert!(
        run.stdout.contains("group-create (2 members) ok"),
        "{}",
        run.stdout
    );

    // Bob moves to sales; Dee joins engineering and the directory at once.
    import(
        &fixture,
        json!([
            person("ada", "Engineer", &["staff", "engineering"]),
            person("bob", "Seller", &["staff", "sales"]),
            person("cy", "Seller", &["staff", "sales"]),
            person("dee", "Engineer", &["staff", "engineering"]),
            person("eve", "Outsider", &["engineering"]),
        ]),
    )
    .await;
    sync(&fixture).await;
    assert_eq!(
        members(&server, "engineering"),
        ["ada@example.com", "dee@example.com"]
    );
    assert_eq!(
        members(&server, "sales"),
        ["bob@example.com", "cy@example.com"]
    );
    assert_eq!(groups(&server).len(), 2, "groups are kept, not made again");

    // The dry run of a pass with nothing to do says so, group by group.
    let run = fixture.provisioner(&["sync", "--dry-run"], &[]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.contains("group engineering"), "{}", run.stdout);
    assert!(run.stdout.contains("unchanged"), "{}", run.stdout);
}

/// `check` refuses a rule that pushes groups through a connector that
/// cannot keep them, naming the rule, the plugin and what it can do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_refuses_push_groups_without_the_groups_capability() {
    let fixture = Fixture::new(&[test_plugins::JSON_STORE]);
    fixture.write_config(&format!(
        "{HEADER}{}\n[rules.staff]\nconnection = \"store\"\nscope = {{}}\npush_groups = [\"engineering\"]\n",
        json_store_connection("store", "127.0.0.1:9")
    ));
    fixture.write_secrets(&json_store_secrets());
    let run = fixture.provisioner(&["check"], &[]).await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.all().contains("rule staff: push_groups needs a connector with the groups capability, and plugin json-store"),
        "{}",
        run.all()
    );
}

const CLIENT_SECRET: &str = "idp/secret+with&marks-0123456789";
/// `scim-client:` and [`CLIENT_SECRET`], each form-encoded, in base64: the
/// Basic credentials of RFC 6749 2.3.1, worked out apart from the host.
const BASIC: &str = "Basic c2NpbS1jbGllbnQ6aWRwJTJGc2VjcmV0JTJCd2l0aCUyNm1hcmtzLTAxMjM0NTY3ODk=";

/// An identity provider's token endpoint on loopback: it issues the SCIM
/// server's token for the client-credentials grant with the right Basic
/// credentials, refuses anything else as `invalid_client`, and records
/// each request's `authorization` header and form.
struct Idp {
    url: String,
    seen: std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>,
}

async fn idp(issues: &str) -> Idp {
    use axum::http::{HeaderMap, StatusCode};
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let recorded = seen.clone();
    let issues = issues.to_string();
    let app = axum::Router::new().route(
        "/oauth2/v1/token",
        axum::routing::post(move |headers: HeaderMap, form: String| async move {
            let authorization = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let good = authorization == BASIC && form.starts_with("grant_type=client_credentials&");
            recorded.lock().unwrap().push((authorization, form));
            if good {
                let token = json!({"access_token": issues, "token_type": "Bearer",
                                   "expires_in": 3600, "scope": "scim"});
                (StatusCode::OK, axum::Json(token))
            } else {
                let refusal = json!({"error": "invalid_client",
                                     "error_description": "client authentication failed"});
                (StatusCode::UNAUTHORIZED, axum::Json(refusal))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/oauth2/v1/token", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Idp { url, seen }
}

/// The SCIM connection, its bearer token obtained from `token_url`
/// (`oauth2`: the rest of the `[connections.scim.oauth2]` table; `secrets`:
/// `[connections.scim.secrets]`).
fn oauth2_fixture(server: &ScimServer, oauth2: &str, secrets: &str) -> Fixture {
    let fixture = Fixture::new(&[test_plugins::SCIM2]);
    fixture.write_config(&format!(
        r#"{HEADER}
[connections.scim]
plugin = "scim2"
allow_insecure_loopback = true

[connections.scim.settings]
host = "{host}"
base_path = "{base}"

[connections.scim.oauth2]
{oauth2}

[connections.scim.secrets]
{secrets}

[rules.staff]
connection = "scim"
scope = {{ group = "staff" }}
"#,
        host = server.host(),
        base = scim_reference::BASE_PATH,
    ));
    fixture.write_secrets(&format!(
        "scim_client = \"scim-client\"\nscim_secret = \"{CLIENT_SECRET}\"\nwrong_secret = \"not-the-secret-0123456789\"\nscim_token = \"{TOKEN_SECRET}\"\n"
    ));
    fixture
}

const CLIENT_SECRETS: &str = r#"client_id = { secrets_file = "scim_client" }
client_secret = { secrets_file = "scim_secret" }"#;

/// A provider behind an identity provider: the host obtains the bearer
/// token by the client-credentials grant, and the SCIM connector, which
/// only knows it takes a bearer token, works unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bearer_token_comes_from_an_identity_provider_by_client_credentials() {
    let server = start(None);
    let idp = idp(server.token()).await;
    let fixture = oauth2_fixture(
        &server,
        &format!(
            "token_url = \"{}\"\nscope = \"scim:users scim:groups\"",
            idp.url
        ),
        CLIENT_SECRETS,
    );
    import(
        &fixture,
        json!([
            person("ada", "Engineer", &["staff"]),
            person("bob", "Clerk", &["staff"])
        ]),
    )
    .await;
    let report = sync(&fixture).await;
    assert_eq!(actions(&report, "staff", "created"), 2, "{report}");
    assert_eq!(users(&server).len(), 2);

    let seen = idp.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "one token for the whole sync: {seen:?}");
    assert_eq!(seen[0].0, BASIC);
    assert_eq!(
        seen[0].1, "grant_type=client_credentials&scope=scim%3Ausers+scim%3Agroups",
        "the secret goes in the Basic credentials, not the form"
    );

    // The wrong secret: the provider's refusal, in its own words, and
    // nothing sent to a SCIM server that has had no request yet.
    let server = start(None);
    let fixture = oauth2_fixture(
        &server,
        &format!("token_url = \"{}\"", idp.url),
        r#"client_id = { secrets_file = "scim_client" }
client_secret = { secrets_file = "wrong_secret" }"#,
    );
    let run = fixture
        .provisioner(&["connections", "test", "scim"], &[])
        .await;
    assert_ne!(run.code, Some(0), "{run:?}");
    assert!(
        run.all()
            .contains("refused the client_credentials grant: invalid_client"),
        "{run:?}"
    );
    for secret in [CLIENT_SECRET, "not-the-secret-0123456789", TOKEN_SECRET] {
        assert!(!run.all().contains(secret), "{run:?}");
    }
    assert_eq!(
        tokio::task::block_in_place(|| server.requests()),
        0,
        "no request reached the SCIM server without a token"
    );
}

/// `[connections.NAME.oauth2]` is checked before anything is sent: the
/// client secret goes to no URL but an HTTPS one the operator wrote whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_refuses_client_credentials_that_would_leak_or_cannot_work() {
    let server = start(None);
    let cases = [
        (
            "token_url = \"http://idp.example.com/token\"",
            CLIENT_SECRETS.to_string(),
            "must be an https:// URL",
        ),
        (
            "token_url = \"https://scim-client:hunter2@idp.example.com/token\"",
            CLIENT_SECRETS.to_string(),
            "user name or password",
        ),
        (
            "token_url = \"https://idp.example.com/token\"",
            format!("{CLIENT_SECRETS}\ntoken = {{ secrets_file = \"scim_token\" }}"),
            "keep one",
        ),
        (
            "token_url = \"https://idp.example.com/token\"",
            "client_id = { secrets_file = \"scim_client\" }".to_string(),
            "needs the client's client_secret",
        ),
        (
            "token_url = \"https://idp.example.com/token\"\naudience = \"scim\"",
            CLIENT_SECRETS.to_string(),
            "audience",
        ),
        (
            "token_url = \"https://idp.example.com/token\"\nclient_auth = \"private_key_jwt\"",
            CLIENT_SECRETS.to_string(),
            "client_secret_basic",
        ),
    ];
    for (oauth2, secrets, says) in cases {
        let fixture = oauth2_fixture(&server, oauth2, &secrets);
        let run = fixture.provisioner(&["check"], &[]).await;
        assert_ne!(run.code, Some(0), "{oauth2}: {run:?}");
        assert!(run.stderr.contains(says), "{oauth2}: {run:?}");
        assert!(!run.all().contains(CLIENT_SECRET), "{run:?}");
    }
}
