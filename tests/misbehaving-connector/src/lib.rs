//! Connectors that misbehave on purpose. Each cargo feature selects one
//! misbehaviour, which happens in `test-connection` (or, for
//! `future-contract` and `wasi-sockets`, in what the component imports and
//! exports), so that the host's tests can prove that the sandbox holds.

#[cfg(feature = "future-contract")]
mod future {
    wit_bindgen::generate!({ path: "wit-v0.3.0", world: "connector" });

    struct Future;
    export!(Future);

    impl exports::provisioner::identity_store::identity_store::Guest for Future {
        fn describe() -> String {
            "future-contract".into()
        }
    }
}

#[cfg(not(feature = "future-contract"))]
mod current {
    wit_bindgen::generate!({ path: "../../wit/v0.1.0", world: "connector" });

    use exports::provisioner::identity_store::identity_store::{
        AuthScheme, Capability, ConnectionReport, Descriptor, Guest, Match, Operation, Outcome,
        Page, Setting, SettingKind,
    };
    #[allow(unused_imports, reason = "only some misbehaviours read their settings")]
    use provisioner::identity_store::config;
    use provisioner::identity_store::types::StoreError;

    struct Misbehaving;
    export!(Misbehaving);

    fn name() -> &'static str {
        if cfg!(feature = "disallowed-host") {
            "disallowed-host"
        } else if cfg!(feature = "loop-forever") {
            "loop-forever"
        } else if cfg!(feature = "memory-bomb") {
            "memory-bomb"
        } else if cfg!(feature = "panic") {
            "panic"
        } else if cfg!(feature = "wasi-sockets") {
            "wasi-sockets"
        } else if cfg!(feature = "snoop") {
            "snoop"
        } else {
            "misbehaving"
        }
    }

    fn text_setting(name: &str, secret: bool) -> Setting {
        Setting {
            name: name.into(),
            description: format!("{name} (test setting)"),
            kind: SettingKind::Text,
            required: false,
            secret,
            default_value: None,
        }
    }

    impl Guest for Misbehaving {
        fn describe() -> Descriptor {
            let oauth = cfg!(feature = "snoop");
            let mut settings = vec![
                text_setting("domain", false),
                text_setting("target_url", false),
            ];
            if oauth {
                for secret in [
                    "client_id",
                    "client_secret",
                    "access_token",
                    "refresh_token",
                ] {
                    settings.push(text_setting(secret, true));
                }
            }
            Descriptor {
                name: name().into(),
                version: env!("CARGO_PKG_VERSION").into(),
                description: "misbehaves on purpose".into(),
                settings,
                capabilities: vec![Capability::Lookup],
                egress: vec!["https://{domain}".into()],
                auth: if oauth {
                    AuthScheme::Oauth2(
                        exports::provisioner::identity_store::identity_store::Oauth2 {
                            token_url: "https://{domain}/oauth/token".into(),
                        },
                    )
                } else {
                    AuthScheme::None
                },
                match_attribute: "email".into(),
                default_mappings: Vec::new(),
            }
        }

        fn test_connection() -> Result<ConnectionReport, StoreError> {
            misbehave()
        }

        fn apply(operations: Vec<Operation>) -> Vec<Result<Outcome, StoreError>> {
            operations
                .into_iter()
                .map(|_| Err(StoreError::Unsupported("misbehaving".into())))
                .collect()
        }

        fn lookup_records(
            _attribute: String,
            _values: Vec<String>,
        ) -> Result<Vec<Match>, StoreError> {
            misbehave().map(|_| Vec::new())
        }

        fn list_records(_cursor: Option<String>) -> Result<Page, StoreError> {
            Err(StoreError::Unsupported("misbehaving".into()))
        }
    }

    #[allow(dead_code, reason = "only some misbehaviours report")]
    fn report(summary: String, details: Vec<(String, String)>) -> ConnectionReport {
        ConnectionReport { summary, details }
    }

    #[cfg(feature = "disallowed-host")]
    fn misbehave() -> Result<ConnectionReport, StoreError> {
        use provisioner::identity_store::http::{self, Credential, HttpError, Method, Request};
        let url = config::get("target_url").unwrap_or_else(|| "https://example.com/".into());
        let request = Request {
            method: Method::Get,
            url,
            headers: Vec::new(),
            body: None,
            credential: Credential::None,
        };
        match http::send(&request) {
            Ok(response) => Ok(report(
                format!("reached it: HTTP {}", response.status),
                Vec::new(),
            )),
            Err(HttpError::Denied(reason)) => {
                Err(StoreError::Unauthorized(format!("denied: {reason}")))
            }
            Err(other) => Err(StoreError::Unsupported(format!("{other:?}"))),
        }
    }

    #[cfg(feature = "loop-forever")]
    fn misbehave() -> Result<ConnectionReport, StoreError> {
        let mut counter: u64 = 0;
        loop {
            counter = std::hint::black_box(counter.wrapping_add(1));
        }
    }

    #[cfg(feature = "memory-bomb")]
    fn misbehave() -> Result<ConnectionReport, StoreError> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(std::hint::black_box(vec![7u8; 1 << 20]));
        }
    }

    #[cfg(feature = "panic")]
    fn misbehave() -> Result<ConnectionReport, StoreError> {
        println!("panic connector: about to panic");
        panic!("the panic connector panicked on purpose");
    }

    #[cfg(feature = "wasi-sockets")]
    fn misbehave() -> Result<ConnectionReport, StoreError> {
        let _network = wasip2::sockets::instance_network::instance_network();
        Ok(report("opened a network handle".into(), Vec::new()))
    }

    /// Reports everything the guest can see, so that a test can prove no
    /// secret is among it.
    #[cfg(feature = "snoop")]
    fn misbehave() -> Result<ConnectionReport, StoreError> {
        let mut seen = Vec::new();
        for name in [
            "domain",
            "target_url",
            "client_id",
            "client_secret",
            "access_token",
            "refresh_token",
        ] {
            seen.push((format!("config:{name}"), format!("{:?}", config::get(name))));
        }
        seen.push((
            "session:instance-url".into(),
            format!("{:?}", config::session("instance-url")),
        ));
        seen.push((
            "egress-url:0".into(),
            format!("{:?}", config::egress_url(0)),
        ));
        for (key, value) in std::env::vars() {
            seen.push((format!("env:{key}"), value));
        }
        seen.push((
            "args".into(),
            format!("{:?}", std::env::args().collect::<Vec<_>>()),
        ));
        seen.push((
            "read-dir /".into(),
            format!("{:?}", std::fs::read_dir("/").map(|_| ())),
        ));
        seen.push((
            "read-dir .".into(),
            format!("{:?}", std::fs::read_dir(".").map(|_| ())),
        ));
        Ok(report(format!("saw {} things", seen.len()), seen))
    }

    #[cfg(not(any(
        feature = "disallowed-host",
        feature = "loop-forever",
        feature = "memory-bomb",
        feature = "panic",
        feature = "wasi-sockets",
        feature = "snoop"
    )))]
    fn misbehave() -> Result<ConnectionReport, StoreError> {
        let _ = config::connection_name();
        Ok(report("behaved".into(), Vec::new()))
    }
}
