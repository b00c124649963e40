//! What every contract version shares unchanged: the host side of the
//! imports (`http`, `config`, `log`), and the calls of the exports 0.1
//! already had with the conversions they need. Each version's bindings
//! generate their own Rust types for them, identical in shape, so one macro
//! writes the code for each instead of a copy per version.

/// Implements `http`, `config` and `log` for [`PluginState`] against the
/// generated modules of those names in the calling module.
///
/// [`PluginState`]: crate::runtime::sandbox::PluginState
macro_rules! brokered_imports {
    () => {
        impl http::Host for $crate::runtime::sandbox::PluginState {
            async fn send(&mut self, request: http::Request) -> Result<http::Response, http::HttpError> {
                let started = std::time::Instant::now();
                let result = match self.broker() {
                    Some(broker) => broker.send_in(request.into(), self.call_scope()).await,
                    None => Err($crate::broker::HttpError::Denied(
                        "no connection is bound to this call (describe runs without network access)".into(),
                    )),
                };
                // Time spent waiting on the network is not the plugin's CPU time.
                self.add_host_time(started.elapsed());
                if let Err(error) = &result {
                    self.record_http_error(error.clone());
                }
                result.map(Into::into).map_err(Into::into)
            }
        }

        impl config::Host for $crate::runtime::sandbox::PluginState {
            fn get(&mut self, name: String) -> Option<String> {
                self.broker().and_then(|b| b.setting(&name))
            }

            fn egress_url(&mut self, index: u32) -> Option<String> {
                self.broker()
                    .and_then(|b| b.egress_url(usize::try_from(index).ok()?))
            }

            fn session(&mut self, name: String) -> Option<String> {
                self.broker().and_then(|b| b.session(&name))
            }

            fn connection_name(&mut self) -> String {
                self.broker()
                    .map(|b| b.connection().to_string())
                    .unwrap_or_default()
            }
        }

        impl log::Host for $crate::runtime::sandbox::PluginState {
            fn log(&mut self, level: log::Level, message: String) {
                let level = match level {
                    log::Level::Trace => tracing::Level::TRACE,
                    log::Level::Debug => tracing::Level::DEBUG,
                    log::Level::Info => tracing::Level::INFO,
                    log::Level::Warn => tracing::Level::WARN,
                    log::Level::Error => tracing::Level::ERROR,
                };
                self.plugin_log(level, "log", &message);
            }
        }

        impl From<http::Request> for $crate::broker::HttpRequest {
            fn from(request: http::Request) -> Self {
                $crate::broker::HttpRequest {
                    method: match request.method {
                        http::Method::Get => $crate::broker::Method::Get,
                        http::Method::Head => $crate::broker::Method::Head,
                        http::Method::Post => $crate::broker::Method::Post,
                        http::Method::Put => $crate::broker::Method::Put,
                        http::Method::Patch => $crate::broker::Method::Patch,
                        http::Method::Delete => $crate::broker::Method::Delete,
                    },
                    url: request.url,
                    headers: request.headers,
                    body: request.body,
                    credential: match request.credential {
                        http::Credential::None => $crate::broker::Credential::None,
                        http::Credential::AuthorizationHeader => $crate::broker::Credential::AuthorizationHeader,
                        http::Credential::Body(body) => $crate::broker::Credential::Body {
                            placeholder: body.placeholder,
                            expired_marker: body.expired_marker,
                        },
                    },
                }
            }
        }

        impl From<$crate::broker::HttpResponse> for http::Response {
            fn from(response: $crate::broker::HttpResponse) -> Self {
                http::Response {
                    status: response.status,
                    headers: response.headers,
                    body: response.body,
                }
            }
        }

        impl From<$crate::broker::HttpError> for http::HttpError {
            fn from(error: $crate::broker::HttpError) -> Self {
                match error {
                    $crate::broker::HttpError::Denied(m) => http::HttpError::Denied(m),
                    $crate::broker::HttpError::Unreachable(m) => http::HttpError::Unreachable(m),
                    $crate::broker::HttpError::Tls(m) => http::HttpError::Tls(m),
                    $crate::broker::HttpError::Timeout(m) => http::HttpError::Timeout(m),
                    $crate::broker::HttpError::TooLarge(cap) => http::HttpError::TooLarge(cap),
                    $crate::broker::HttpError::Unauthorized(m) => http::HttpError::Unauthorized(m),
                    $crate::broker::HttpError::InvalidRequest(m) => http::HttpError::InvalidRequest(m),
                    $crate::broker::HttpError::Protocol(m) => http::HttpError::Protocol(m),
                }
            }
        }
    };
}

pub(crate) use brokered_imports;

/// One call of an export in a fresh instance of `$pre` in `$store`: the
/// same steps in every version's bindings.
macro_rules! call {
    ($pre:expr, $store:expr, $method:ident ( $($arg:expr),* )) => {{
        let bindings = $pre.instantiate_async(&mut *$store).await?;
        bindings
            .provisioner_identity_store_identity_store()
            .$method($store $(, $arg)*)
            .await?
    }};
}

pub(crate) use call;

/// The exports 0.1 had (`describe`, `test-connection`, `apply`,
/// `lookup-records`, `list-records`) on `BindingsPre`, and the conversions
/// of the types they share, against the generated modules `types` and
/// `wit` and the version-independent names imported in the calling module.
/// A version's own conversions (values, errors, descriptor, operations,
/// records) stay in its module: their variants differ.
macro_rules! shared_exports {
    () => {
        /// One call of each export, instantiated in `store` and answered in
        /// the version-independent types.
        impl BindingsPre<PluginState> {
            pub(crate) async fn describe(
                &self,
                store: &mut wasmtime::Store<PluginState>,
            ) -> wasmtime::Result<Descriptor> {
                Ok(call!(self, store, call_describe()).into())
            }

            pub(crate) async fn test_connection(
                &self,
                store: &mut wasmtime::Store<PluginState>,
            ) -> wasmtime::Result<Result<ConnectionReport, StoreError>> {
                let answer = call!(self, store, call_test_connection());
                Ok(answer.map(Into::into).map_err(Into::into))
            }

            pub(crate) async fn apply(
                &self,
                store: &mut wasmtime::Store<PluginState>,
                operations: Vec<Operation>,
            ) -> wasmtime::Result<Vec<Result<Outcome, StoreError>>> {
                let operations: Vec<wit::Operation> =
                    operations.into_iter().map(Into::into).collect();
                Ok(super::answers(call!(self, store, call_apply(&operations))))
            }

            pub(crate) async fn lookup(
                &self,
                store: &mut wasmtime::Store<PluginState>,
                attribute: &str,
                values: &[String],
            ) -> wasmtime::Result<Result<Vec<Match>, StoreError>> {
                let answer = call!(self, store, call_lookup_records(attribute, values));
                Ok(answer
                    .map(|matches| matches.into_iter().map(Into::into).collect())
                    .map_err(Into::into))
            }

            pub(crate) async fn list(
                &self,
                store: &mut wasmtime::Store<PluginState>,
                cursor: Option<&str>,
            ) -> wasmtime::Result<Result<Page, StoreError>> {
                let answer = call!(self, store, call_list_records(cursor));
                Ok(answer.map(Into::into).map_err(Into::into))
            }
        }

        fn attributes_in(attributes: Vec<types::Attribute>) -> Vec<Attribute> {
            attributes
                .into_iter()
                .map(|a| Attribute {
                    name: a.name,
                    value: a.value.into(),
                })
                .collect()
        }

        fn attributes_out(attributes: Vec<Attribute>) -> Vec<types::Attribute> {
            attributes
                .into_iter()
                .map(|a| types::Attribute {
                    name: a.name,
                    value: a.value.into(),
                })
                .collect()
        }

        impl From<wit::ConnectionReport> for ConnectionReport {
            fn from(r: wit::ConnectionReport) -> Self {
                ConnectionReport {
                    summary: r.summary,
                    details: r.details,
                }
            }
        }

        /// A descriptor's settings, which every version declares alike.
        fn settings_in(settings: Vec<wit::Setting>) -> Vec<SettingSpec> {
            settings
                .into_iter()
                .map(|s| SettingSpec {
                    name: s.name,
                    description: s.description,
                    kind: match s.kind {
                        wit::SettingKind::Text => SettingKind::Text,
                        wit::SettingKind::Boolean => SettingKind::Boolean,
                        wit::SettingKind::Integer => SettingKind::Integer,
                        wit::SettingKind::Choice(choices) => SettingKind::Choice(choices),
                    },
                    required: s.required,
                    secret: s.secret,
                    default_value: s.default_value,
                })
                .collect()
        }

        /// A descriptor's auth scheme, which every version declares alike.
        fn auth_in(auth: wit::AuthScheme) -> AuthScheme {
            match auth {
                wit::AuthScheme::None => AuthScheme::None,
                wit::AuthScheme::Oauth2(o) => AuthScheme::OAuth2 {
                    token_url: o.token_url,
                },
                wit::AuthScheme::Bearer(secret) => AuthScheme::Bearer { secret },
            }
        }
    };
}

pub(crate) use shared_exports;
