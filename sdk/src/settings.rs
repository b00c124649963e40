//! The connection's non-secret settings, typed.
//!
//! The host has already checked each value against the kind the
//! descriptor declared, and filled in defaults; secret settings always
//! read as unset, since the host keeps them.

use std::str::FromStr;

use crate::StoreError;

/// The setting's text, or `None` when an optional setting is unset.
pub fn text(name: &str) -> Option<String> {
    crate::host::with(|host| host.setting(name))
}

/// The setting as `T` (`u32`, `bool`, ...), or the reason it is not one;
/// `None` when unset.
///
/// ```no_run
/// let page_size: u32 = provisioner_connector::settings::get("page_size")?.unwrap_or(100);
/// # Ok::<(), provisioner_connector::StoreError>(())
/// ```
pub fn get<T: FromStr>(name: &str) -> Result<Option<T>, StoreError> {
    match text(name) {
        None => Ok(None),
        Some(value) => value.trim().parse::<T>().map(Some).map_err(|_| {
            StoreError::rejected(
                "INVALID_SETTING",
                format!(
                    "setting {name} is {value:?}, which is not a {}",
                    std::any::type_name::<T>()
                ),
            )
        }),
    }
}

/// The setting, which the descriptor declares required (or gives a
/// default), so that only a host bug leaves it unset.
pub fn required<T: FromStr>(name: &str) -> Result<T, StoreError> {
    get(name)?.ok_or_else(|| {
        StoreError::rejected(
            "MISSING_SETTING",
            format!("setting {name} is not configured"),
        )
    })
}

/// A fact the host learned for this connection, such as `instance-url`.
pub fn session(name: &str) -> Option<String> {
    crate::host::with(|host| host.session(name))
}

/// The operator's name for the connection, for messages.
pub fn connection_name() -> String {
    crate::host::with(|host| host.connection_name())
}
