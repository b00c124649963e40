//! Lines in the host's log, tagged with the connector and connection.
//! Never log personal data you do not need to.

pub use crate::host::Level;

fn at(level: Level, message: &str) {
    crate::host::with(|host| host.log(level, message))
}

/// Logs `message` at debug level.
pub fn debug(message: &str) {
    at(Level::Debug, message)
}

/// Logs `message` at info level.
pub fn info(message: &str) {
    at(Level::Info, message)
}

/// Logs `message` at warn level.
pub fn warn(message: &str) {
    at(Level::Warn, message)
}

/// Logs `message` at error level.
pub fn error(message: &str) {
    at(Level::Error, message)
}
