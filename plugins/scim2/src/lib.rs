//! A connector for any SCIM 2.0 service provider (RFC 7643, 7644): people
//! as `/Users`, groups as `/Groups`, on the SDK. The host holds the bearer
//! token and brokers every request; this crate only translates.
//!
//! What the provider supports decides how a batch goes out, as its
//! `/ServiceProviderConfig` says (read once and cached for the
//! connection):
//!
//! - `/Bulk`, when supported and not turned off: one request per batch,
//!   within the provider's `maxOperations` and `maxPayloadSize`;
//! - otherwise one request per operation: PATCH with only what changed
//!   where the provider has PATCH, PUT of the whole resource where not.
//!
//! A create refused for `uniqueness` (the user exists, and the lookup
//! before it missed, say because it matched on another attribute) adopts
//! the existing user: found by `userName`, brought up to date, and its id
//! answered, so that the host links it instead of failing or duplicating.
//!
//! Build: `cargo build --release --target wasm32-wasip2 -p scim2-connector`.

pub mod wire;

use std::time::Duration;

use provisioner_connector::http::{Client, Response};
use provisioner_connector::{
    Attribute, AttributeType, Capability, ConnectionReport, Connector, Descriptor,
    DescriptorBuilder, Group, GroupOperation, GroupPage, GroupRename, Match, NewGroup, Operation,
    Outcome, Page, Source, StoreError, StoredRecord, Update, Value, cache, pair_matches, settings,
    stamped,
};
use serde_json::{Value as Json, json};

use wire::{BulkOperation, Features, ListResponse};

/// The plugin's name, as connections name it.
pub const NAME: &str = "scim2";
const VERSION: &str = stamped(
    option_env!("SCIM2_CONNECTOR_VERSION"),
    env!("CARGO_PKG_VERSION"),
);

/// The work email, as a path; also what `match_by = "email"` filters on.
pub const WORK_EMAIL: &str = r#"emails[type eq "work"].value"#;

/// Values per lookup request, at most: one `or` filter of them, in one
/// page of results.
const LOOKUP_CHUNK: usize = 100;

/// The longest filter a lookup sends, in characters before encoding: the
/// URL stays under the 8 KiB that many servers and proxies take.
const LOOKUP_FILTER_CHARS: usize = 4000;

/// How long the provider's configuration is trusted before it is read
/// again.
const FEATURES_TTL: Duration = Duration::from_secs(600);
const FEATURES_KEY: &str = "service-provider-config";
/// Set when the provider refused a filter with `or`, so that lookups ask
/// one value at a time.
const NO_OR_KEY: &str = "filter-without-or";

/// Operations per `/Bulk` request when the provider names no maximum.
const BULK_DEFAULT_OPERATIONS: usize = 200;

/// How updates are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Patch,
    Put,
}

/// A connection to one SCIM service provider, for one call.
pub struct Scim2 {
    client: Client,
    /// The SCIM base path, without a trailing slash: `/scim/v2`.
    base: String,
    users: String,
    groups: String,
    page_size: u32,
    match_on: &'static str,
    style: Option<Style>,
    bulk: bool,
}

fn path_setting(name: &str, default: &str) -> Result<String, StoreError> {
    let value = settings::text(name).unwrap_or_else(|| default.to_string());
    let value = value.trim().trim_end_matches('/');
    if !(value.is_empty() || value.starts_with('/')) || value.contains(['?', '#', ' ']) {
        return Err(StoreError::rejected(
            "INVALID_SETTING",
            format!("setting {name} is {value:?}; expected a path such as {default}"),
        ));
    }
    Ok(value.to_string())
}

impl Connector for Scim2 {
    fn describe() -> Descriptor {
        use Capability::*;
        let enterprise = |name: &str| format!("{}:{name}", wire::ENTERPRISE);
        DescriptorBuilder::new(NAME, VERSION, "People and groups in a SCIM 2.0 service provider")
            .text_setting("host", "Host name and optional port of the SCIM service", true)
            .text_setting("base_path", "Path of the SCIM endpoints, e.g. /scim/v2", false)
            .with_default("/scim/v2")
            .text_setting("users_path", "Path of the users under the base path", false)
            .with_default("/Users")
            .text_setting("groups_path", "Path of the groups under the base path", false)
            .with_default("/Groups")
            .choice_setting(
                "match_by",
                "What a lookup compares the userName values with: userName, or the work email",
                &["userName", "email"],
            )
            .integer_setting("page_size", "Resources per page when listing", 100)
            .choice_setting(
                "update_style",
                "PATCH with only what changed, PUT of the whole resource, or auto (PATCH where the provider supports it)",
                &["auto", "patch", "put"],
            )
            .choice_setting(
                "bulk",
                "Send batches through /Bulk where the provider supports it (auto), or never (off)",
                &["auto", "off"],
            )
            .egress("https://{host}")
            .bearer("token")
            .capabilities([Create, Update, Disable, Enable, Delete, Lookup, List, Groups])
            .match_attribute("userName")
            // RFC 7643: userName and email values compare without case.
            .attribute("userName", AttributeType::Text, false)
            .attribute(WORK_EMAIL, AttributeType::Text, false)
            .attribute("active", AttributeType::Boolean, true)
            .attribute(&enterprise("department"), AttributeType::Text, true)
            .attribute(&enterprise("employeeNumber"), AttributeType::Text, true)
            .attribute(&enterprise("manager.value"), AttributeType::Text, true)
            .map("userName", Source::attribute("email"))
            .map(WORK_EMAIL, Source::attribute("email"))
            .map("name.givenName", Source::attribute("given_name"))
            .map("name.familyName", Source::attribute("family_name"))
            .map("displayName", Source::template("{given_name} {family_name}"))
            .map("title", Source::attribute("title"))
            .map(&enterprise("department"), Source::attribute("department"))
            .map(&enterprise("employeeNumber"), Source::attribute("employee_number"))
            .build()
    }

    fn connect() -> Result<Self, StoreError> {
        let agent = format!("provisioner-scim2/{VERSION}");
        let client = Client::egress(0)?
            .with_header("user-agent", &agent)
            .with_header("accept", wire::MEDIA_TYPE);
        let base = path_setting("base_path", "/scim/v2")?;
        let users = format!("{base}{}", path_setting("users_path", "/Users")?);
        let groups = format!("{base}{}", path_setting("groups_path", "/Groups")?);
        let match_on = match settings::text("match_by").as_deref() {
            Some("email") => WORK_EMAIL,
            _ => "userName",
        };
        let style = match settings::text("update_style").as_deref() {
            Some("patch") => Some(Style::Patch),
            Some("put") => Some(Style::Put),
            _ => None,
        };
        Ok(Scim2 {
            client,
            base,
            users,
            groups,
            page_size: settings::get("page_size")?.unwrap_or(100).clamp(1, 1000),
            match_on,
            style,
            bulk: settings::text("bulk").as_deref() != Some("off"),
        })
    }

    fn test_connection(&self) -> Result<ConnectionReport, StoreError> {
        let page: ListResponse = self
            .client
            .get(&self.users)
            .query("startIndex", "1")
            .query("count", "1")
            .send_json()?;
        let features = self.features()?;
        let yes = |flag: bool| if flag { "yes" } else { "no" };
        Ok(ConnectionReport::new(format!(
            "connected to the SCIM service at {}{}; {} users",
            self.client.origin(),
            self.base,
            page.total_results
        ))
        .detail("users", page.total_results.to_string())
        .detail("patch", yes(features.patch.supported))
        .detail("bulk", yes(features.bulk.supported))
        .detail("filter", yes(features.filter.supported))
        .detail("etag", yes(features.etag.supported)))
    }

    fn apply(&self, operations: Vec<Operation>) -> Vec<Result<Outcome, StoreError>> {
        let features = match self.features() {
            Ok(features) => features,
            Err(error) => return operations.iter().map(|_| Err(error.clone())).collect(),
        };
        if self.bulk && features.bulk.supported && operations.len() > 1 {
            return self.apply_bulk(operations, &features);
        }
        let style = self.style_for(&features);
        operations
            .into_iter()
            .map(|operation| self.apply_one(operation, style))
            .collect()
    }

    fn lookup(&self, _attribute: String, values: Vec<String>) -> Result<Vec<Match>, StoreError> {
        let mut records = Vec::new();
        let one_by_one = cache::get(NO_OR_KEY).is_some();
        let most = if one_by_one { 1 } else { LOOKUP_CHUNK };
        for chunk in lookup_chunks(&values, self.match_on, most) {
            match self.find(&self.users, self.match_on, chunk) {
                Ok(found) => records.extend(found),
                Err(StoreError::Rejected(r)) if chunk.len() > 1 && r.code == "invalidFilter" => {
                    let _ = cache::set(NO_OR_KEY, "1", FEATURES_TTL);
                    for value in chunk {
                        records.extend(self.find(
                            &self.users,
                            self.match_on,
                            std::slice::from_ref(value),
                        )?);
                    }
                }
                Err(error) => return Err(error),
            }
        }
        // A match is reported with the value as asked, whichever of the
        // user's attributes it was compared with.
        Ok(pair_matches(records, self.match_on, &values, false))
    }

    fn list(&self, cursor: Option<String>) -> Result<Page, StoreError> {
        let (resources, next_cursor) = self.page(&self.users, cursor)?;
        let records = resources
            .iter()
            .map(wire::record)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page {
            records,
            next_cursor,
        })
    }

    fn apply_groups(&self, operations: Vec<GroupOperation>) -> Vec<Result<Outcome, StoreError>> {
        let style = match self.features() {
            Ok(features) => self.style_for(&features),
            Err(error) => return operations.iter().map(|_| Err(error.clone())).collect(),
        };
        // A group's members added and removed in one batch go out as one
        // PATCH, both answered by it.
        let mut results = Vec::with_capacity(operations.len());
        let mut operations = operations.into_iter().peekable();
        while let Some(operation) = operations.next() {
            let Some(id) = membership_of(&operation).filter(|_| style == Style::Patch) else {
                results.push(self.apply_group(operation, style));
                continue;
            };
            let mut changes = membership_patch(&operation);
            let mut answered = 1;
            while let Some(next) = operations.next_if(|next| membership_of(next) == Some(id)) {
                changes.extend(membership_patch(&next));
                answered += 1;
            }
            let result = self.patch_group(id, changes, None);
            results.extend(std::iter::repeat_n(result, answered));
        }
        results
    }

    fn lookup_groups(&self, display_names: Vec<String>) -> Result<Vec<Group>, StoreError> {
        let mut groups = Vec::new();
        for chunk in display_names.chunks(LOOKUP_CHUNK) {
            for resource in self.query(&self.groups, &wire::any_of("displayName", chunk))? {
                let group = group_of(&resource)?;
                if display_names
                    .iter()
                    .any(|n| n.eq_ignore_ascii_case(&group.display_name))
                {
                    groups.push(group);
                }
            }
        }
        Ok(groups)
    }

    fn list_groups(&self, cursor: Option<String>) -> Result<GroupPage, StoreError> {
        let (resources, next_cursor) = self.page(&self.groups, cursor)?;
        let groups = resources
            .iter()
            .map(group_of)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(GroupPage {
            groups,
            next_cursor,
        })
    }
}

fn group_of(resource: &Json) -> Result<Group, StoreError> {
    let (id, version) = wire::id_and_version(resource)?;
    let display_name = resource
        .get("displayName")
        .and_then(Json::as_str)
        .unwrap_or_default()
        .to_string();
    let members = resource
        .get("members")
        .and_then(Json::as_array)
        .map(|members| {
            members
                .iter()
                .filter_map(|m| m.get("value").and_then(Json::as_str).map(String::from))
                .collect()
        })
        .unwrap_or_default();
    Ok(Group {
        id,
        display_name,
        members,
        version,
    })
}

fn outcome(resource: &Json) -> Result<Outcome, StoreError> {
    let (id, version) = wire::id_and_version(resource)?;
    Ok(Outcome { id, version })
}

/// The outcome of a write answered with `204 No Content` or the resource.
fn written(id: &str, response: &Response) -> Result<Outcome, StoreError> {
    if response.body.is_empty() {
        return Ok(Outcome {
            id: id.to_string(),
            version: response.etag(),
        });
    }
    let resource: Json = response.json()?;
    outcome(&resource)
}

impl Scim2 {
    /// The provider's configuration, read once per connection and cached.
    fn features(&self) -> Result<Features, StoreError> {
        let text = cache::get_or_fetch(FEATURES_KEY, FEATURES_TTL, || {
            let response = self
                .client
                .get(&format!("{}/ServiceProviderConfig", self.base))
                .send()?;
            String::from_utf8(response.body)
                .map_err(|_| StoreError::protocol("the ServiceProviderConfig is not UTF-8"))
        })?;
        serde_json::from_str(&text).map_err(|e| {
            cache::remove(FEATURES_KEY);
            StoreError::protocol(format!("the ServiceProviderConfig is not SCIM: {e}"))
        })
    }

    fn style_for(&self, features: &Features) -> Style {
        self.style.unwrap_or(if features.patch.supported {
            Style::Patch
        } else {
            Style::Put
        })
    }

    fn user(&self, id: &str) -> String {
        format!("{}/{}", self.users, provisioner_connector::http::encode(id))
    }

    fn group(&self, id: &str) -> String {
        format!(
            "{}/{}",
            self.groups,
            provisioner_connector::http::encode(id)
        )
    }

    fn apply_one(&self, operation: Operation, style: Style) -> Result<Outcome, StoreError> {
        match operation {
            Operation::Create(attributes) => self.create(attributes, style),
            Operation::Update(update) => self.write(update, None, style),
            Operation::Enable(update) => self.write(update, Some(true), style),
            Operation::Disable(id) => self.write(
                Update {
                    id,
                    attributes: Vec::new(),
                    version: None,
                },
                Some(false),
                style,
            ),
            Operation::Delete(id) => {
                self.client.delete(&self.user(&id)).send()?;
                Ok(Outcome { id, version: None })
            }
            Operation::Convert(_) => Err(StoreError::Unsupported(
                "SCIM users have one resource type".into(),
            )),
        }
    }

    fn create(&self, attributes: Vec<Attribute>, style: Style) -> Result<Outcome, StoreError> {
        let body = wire::new_user(&attributes)?;
        let answer = self
            .client
            .post(&self.users)
            .json(&body)
            .header("content-type", wire::MEDIA_TYPE)
            .send_json::<Json>();
        match answer {
            Ok(resource) => outcome(&resource),
            Err(StoreError::Rejected(r)) if r.code == "uniqueness" => self
                .adopt(&attributes, style)
                .map_err(|_| StoreError::Rejected(r)),
            Err(error) => Err(error),
        }
    }

    /// The user a refused create collided with, found by `userName` and
    /// brought up to date.
    fn adopt(&self, attributes: &[Attribute], style: Style) -> Result<Outcome, StoreError> {
        let user_name = attributes
            .iter()
            .find(|a| a.name == "userName")
            .and_then(|a| match &a.value {
                Value::Text(text) => Some(text.clone()),
                _ => None,
            })
            .ok_or_else(|| StoreError::protocol("no userName to adopt by"))?;
        let found = self.find(&self.users, "userName", &[user_name])?;
        let [existing] = found.as_slice() else {
            return Err(StoreError::protocol(
                "not exactly one user with that userName",
            ));
        };
        self.write(
            Update {
                id: existing.id.clone(),
                attributes: attributes.to_vec(),
                version: existing.version.clone(),
            },
            Some(true),
            style,
        )
    }

    /// Writes `update`'s attributes and `active` to a user, as `style`
    /// says; a PATCH whose value filter matches nothing (`noTarget`, a user
    /// without a work email yet) is written again as a PUT.
    fn write(
        &self,
        update: Update,
        active: Option<bool>,
        style: Style,
    ) -> Result<Outcome, StoreError> {
        let path = self.user(&update.id);
        if style == Style::Patch {
            let answer = self
                .client
                .patch(&path)
                .json(&wire::patch(&update.attributes, active))
                .header("content-type", wire::MEDIA_TYPE)
                .if_match(update.version.as_deref())
                .send();
            match answer {
                Ok(response) => return written(&update.id, &response),
                Err(StoreError::Rejected(r)) if r.code == "noTarget" => {}
                Err(error) => return Err(error),
            }
        }
        let current: Json = self.client.get(&path).send_json()?;
        let version = update.version.or_else(|| {
            current
                .pointer("/meta/version")
                .and_then(Json::as_str)
                .map(String::from)
        });
        let body = wire::replaced(current, &update.attributes, active)?;
        let response = self
            .client
            .put(&path)
            .json(&body)
            .header("content-type", wire::MEDIA_TYPE)
            .if_match(version.as_deref())
            .send()?;
        written(&update.id, &response)
    }

    /// A batch through `/Bulk`, in requests within the provider's limits.
    /// Creates refused for `uniqueness` are adopted one by one afterwards.
    fn apply_bulk(
        &self,
        operations: Vec<Operation>,
        features: &Features,
    ) -> Vec<Result<Outcome, StoreError>> {
        let max_operations = match features.bulk.max_operations {
            0 => BULK_DEFAULT_OPERATIONS,
            n => n as usize,
        };
        let max_bytes = match features.bulk.max_payload_size {
            0 => u64::MAX,
            n => n,
        };
        let style = self.style_for(features);
        let mut results: Vec<Option<Result<Outcome, StoreError>>> =
            Vec::with_capacity(operations.len());
        let mut encoded = Vec::new();
        for operation in &operations {
            match self.bulk_operation(operation) {
                Ok(op) => {
                    results.push(None);
                    encoded.push((results.len() - 1, op));
                }
                Err(error) => results.push(Some(Err(error))),
            }
        }
        for chunk in chunks(encoded, max_operations, max_bytes) {
            let request =
                wire::bulk_request(&chunk.iter().map(|(_, op)| op.clone()).collect::<Vec<_>>());
            let answers = self
                .client
                .post(&format!("{}/Bulk", self.base))
                .json(&request)
                .header("content-type", wire::MEDIA_TYPE)
                .send_json::<Json>()
                .map(|response| wire::bulk_results(&response, chunk.len()));
            for (position, (index, op)) in chunk.iter().enumerate() {
                let answer = match &answers {
                    Ok(answers) => answers[position].clone(),
                    Err(error) => Err(error.clone()),
                };
                let answer = answer.map(|(id, version)| Outcome {
                    id: if id.is_empty() { id_of(&op.path) } else { id },
                    version,
                });
                results[*index] = Some(answer);
            }
        }
        operations
            .into_iter()
            .zip(results)
            .map(|(operation, result)| match (operation, result) {
                (Operation::Create(attributes), Some(Err(StoreError::Rejected(r))))
                    if r.code == "uniqueness" =>
                {
                    self.adopt(&attributes, style)
                        .map_err(|_| StoreError::Rejected(r))
                }
                (_, Some(result)) => result,
                (_, None) => Err(StoreError::protocol("an operation was not sent")),
            })
            .collect()
    }

    /// An operation as `/Bulk` takes it, with paths relative to the base.
    fn bulk_operation(&self, operation: &Operation) -> Result<BulkOperation, StoreError> {
        let users = self
            .users
            .strip_prefix(&self.base)
            .unwrap_or(&self.users)
            .to_string();
        let user = |id: &str| format!("{users}/{}", provisioner_connector::http::encode(id));
        Ok(match operation {
            Operation::Create(attributes) => BulkOperation {
                method: "POST",
                path: users.clone(),
                data: Some(wire::new_user(attributes)?),
                version: None,
            },
            Operation::Update(u) | Operation::Enable(u) => BulkOperation {
                method: "PATCH",
                path: user(&u.id),
                data: Some(wire::patch(
                    &u.attributes,
                    matches!(operation, Operation::Enable(_)).then_some(true),
                )),
                version: u.version.clone(),
            },
            Operation::Disable(id) => BulkOperation {
                method: "PATCH",
                path: user(id),
                data: Some(wire::patch(&[], Some(false))),
                version: None,
            },
            Operation::Delete(id) => BulkOperation {
                method: "DELETE",
                path: user(id),
                data: None,
                version: None,
            },
            Operation::Convert(_) => {
                return Err(StoreError::Unsupported(
                    "SCIM users have one resource type".into(),
                ));
            }
        })
    }

    /// Resources at `path` whose `attribute` equals one of `values`.
    fn find(
        &self,
        path: &str,
        attribute: &str,
        values: &[String],
    ) -> Result<Vec<StoredRecord>, StoreError> {
        self.query(path, &wire::any_of(attribute, values))?
            .iter()
            .map(wire::record)
            .collect()
    }

    /// Every resource at `path` that `filter` selects, over as many pages
    /// as it takes; pages large enough for a lookup's values to fit in one.
    fn query(&self, path: &str, filter: &str) -> Result<Vec<Json>, StoreError> {
        let mut out = Vec::new();
        let mut start = 1;
        let count = self.page_size.max(LOOKUP_CHUNK as u32).to_string();
        loop {
            let page: ListResponse = self
                .client
                .get(path)
                .query("filter", filter)
                .query("startIndex", &start.to_string())
                .query("count", &count)
                .send_json()?;
            let next = page.next_start(start);
            out.extend(page.resources);
            match next {
                Some(next) => start = next,
                None => return Ok(out),
            }
        }
    }

    /// One page of every resource at `path`; the cursor is the next
    /// `startIndex`.
    fn page(
        &self,
        path: &str,
        cursor: Option<String>,
    ) -> Result<(Vec<Json>, Option<String>), StoreError> {
        let start: u64 = match cursor {
            None => 1,
            Some(cursor) => cursor.parse().map_err(|_| {
                StoreError::protocol(format!("{cursor:?} is not a cursor of this connector"))
            })?,
        };
        let page: ListResponse = self
            .client
            .get(path)
            .query("startIndex", &start.to_string())
            .query("count", &self.page_size.to_string())
            .send_json()?;
        let next = page.next_start(start).map(|n| n.to_string());
        Ok((page.resources, next))
    }

    /// One PATCH of a group.
    fn patch_group(
        &self,
        id: &str,
        operations: Vec<Json>,
        version: Option<&str>,
    ) -> Result<Outcome, StoreError> {
        let response = self
            .client
            .patch(&self.group(id))
            .json(&json!({ "schemas": [wire::PATCH_OP], "Operations": operations }))
            .header("content-type", wire::MEDIA_TYPE)
            .if_match(version)
            .send()?;
        written(id, &response)
    }

    fn apply_group(&self, operation: GroupOperation, style: Style) -> Result<Outcome, StoreError> {
        match (operation, style) {
            (
                GroupOperation::Create(NewGroup {
                    display_name,
                    members: ids,
                }),
                _,
            ) => {
                let body = json!({ "schemas": [wire::GROUP], "displayName": display_name, "members": member_values(&ids) });
                let resource: Json = self
                    .client
                    .post(&self.groups)
                    .json(&body)
                    .header("content-type", wire::MEDIA_TYPE)
                    .send_json()?;
                outcome(&resource)
            }
            (GroupOperation::Delete(id), _) => {
                self.client.delete(&self.group(&id)).send()?;
                Ok(Outcome { id, version: None })
            }
            (
                GroupOperation::Rename(GroupRename {
                    id,
                    display_name,
                    version,
                }),
                Style::Patch,
            ) => self.patch_group(
                &id,
                vec![json!({ "op": "replace", "path": "displayName", "value": display_name })],
                version.as_deref(),
            ),
            (
                operation @ (GroupOperation::AddMembers(_) | GroupOperation::RemoveMembers(_)),
                Style::Patch,
            ) => {
                let id = membership_of(&operation).unwrap_or_default().to_string();
                self.patch_group(&id, membership_patch(&operation), None)
            }
            (operation, Style::Put) => self.put_group(operation),
        }
    }

    /// A rename or a membership change, for a provider without PATCH: the
    /// group read, changed and written back whole, at the version read.
    fn put_group(&self, operation: GroupOperation) -> Result<Outcome, StoreError> {
        let id = match &operation {
            GroupOperation::Rename(r) => r.id.clone(),
            GroupOperation::AddMembers(m) | GroupOperation::RemoveMembers(m) => m.id.clone(),
            GroupOperation::Create(_) | GroupOperation::Delete(_) => {
                return Err(StoreError::protocol("not a change of an existing group"));
            }
        };
        let path = self.group(&id);
        let mut group: Json = self.client.get(&path).send_json()?;
        let version = group
            .pointer("/meta/version")
            .and_then(Json::as_str)
            .map(String::from);
        let mut members: Vec<String> = group_of(&group)?.members;
        match operation {
            GroupOperation::Rename(r) => group["displayName"] = Json::from(r.display_name),
            GroupOperation::AddMembers(m) => {
                for id in m.members {
                    if !members.contains(&id) {
                        members.push(id);
                    }
                }
            }
            GroupOperation::RemoveMembers(m) => members.retain(|id| !m.members.contains(id)),
            GroupOperation::Create(_) | GroupOperation::Delete(_) => {}
        }
        group["members"] = members.iter().map(|id| json!({ "value": id })).collect();
        group["schemas"] = json!([wire::GROUP]);
        let response = self
            .client
            .put(&path)
            .json(&group)
            .header("content-type", wire::MEDIA_TYPE)
            .if_match(version.as_deref())
            .send()?;
        written(&id, &response)
    }
}

/// `values` in runs of at most `most` whose `or` filter on `attribute`
/// stays within [`LOOKUP_FILTER_CHARS`]; a value too long for that goes
/// alone.
fn lookup_chunks<'v>(values: &'v [String], attribute: &str, most: usize) -> Vec<&'v [String]> {
    let mut out = Vec::new();
    let (mut start, mut chars) = (0, 0);
    for (index, value) in values.iter().enumerate() {
        // `attribute eq "value" or `, with room for escapes.
        let term = attribute.len() + value.len() + 12;
        if index > start && (index - start >= most.max(1) || chars + term > LOOKUP_FILTER_CHARS) {
            out.push(&values[start..index]);
            (start, chars) = (index, 0);
        }
        chars += term;
    }
    if start < values.len() {
        out.push(&values[start..]);
    }
    out
}

fn member_values(ids: &[String]) -> Json {
    ids.iter().map(|id| json!({ "value": id })).collect()
}

/// The group whose members `operation` adds or removes.
fn membership_of(operation: &GroupOperation) -> Option<&str> {
    match operation {
        GroupOperation::AddMembers(m) | GroupOperation::RemoveMembers(m) => Some(&m.id),
        _ => None,
    }
}

/// The PATCH operations of a membership change: `add` on `members`, or a
/// `remove` of each member by its value (RFC 7644 §3.5.2.2).
fn membership_patch(operation: &GroupOperation) -> Vec<Json> {
    match operation {
        GroupOperation::AddMembers(m) => {
            vec![json!({ "op": "add", "path": "members", "value": member_values(&m.members) })]
        }
        GroupOperation::RemoveMembers(m) => m
            .members
            .iter()
            .map(|member| {
                json!({ "op": "remove", "path": format!("members[value eq {}]", wire::quote(member)) })
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The last segment of a resource path: the id of `/Users/{id}`.
fn id_of(path: &str) -> String {
    path.rsplit('/').next().unwrap_or_default().to_string()
}

/// Bulk operations in requests of at most `max_operations`, and of at
/// most `max_bytes` of JSON where the provider says so; an operation
/// larger than that on its own goes alone, for the provider to refuse.
fn chunks(
    operations: Vec<(usize, BulkOperation)>,
    max_operations: usize,
    max_bytes: u64,
) -> Vec<Vec<(usize, BulkOperation)>> {
    // The envelope and the bulk id around each operation.
    const OVERHEAD: u64 = 200;
    let mut out: Vec<Vec<(usize, BulkOperation)>> = Vec::new();
    let mut size = 0u64;
    for (index, operation) in operations {
        let bytes = operation
            .data
            .as_ref()
            .map_or(0, |d| d.to_string().len() as u64)
            + operation.path.len() as u64
            + OVERHEAD;
        let full = out
            .last()
            .is_none_or(|chunk| chunk.len() >= max_operations.max(1) || size + bytes > max_bytes);
        if full {
            out.push(Vec::new());
            size = OVERHEAD;
        }
        size += bytes;
        if let Some(chunk) = out.last_mut() {
            chunk.push((index, operation));
        }
    }
    out
}

provisioner_connector::export_connector!(Scim2);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_go_in_chunks_of_a_hundred_or_of_a_safe_filter_length() {
        let short: Vec<String> = (0..250).map(|i| format!("p{i}@x.test")).collect();
        let sizes: Vec<usize> = lookup_chunks(&short, "userName", LOOKUP_CHUNK)
            .iter()
            .map(|c| c.len())
            .collect();
        assert_eq!(sizes, [100, 100, 50]);
        let long: Vec<String> = (0..10)
            .map(|i| format!("{i}{}", "x".repeat(1500)))
            .collect();
        let chunks = lookup_chunks(&long, "userName", LOOKUP_CHUNK);
        assert!(
            chunks.iter().all(|c| c.len() <= 2),
            "{:?}",
            chunks.iter().map(|c| c.len()).collect::<Vec<_>>()
        );
        assert_eq!(chunks.iter().map(|c| c.len()).sum::<usize>(), 10);
        assert_eq!(
            lookup_chunks(&short, "userName", 1).len(),
            250,
            "one by one"
        );
        assert!(lookup_chunks(&[], "userName", LOOKUP_CHUNK).is_empty());
    }
}
