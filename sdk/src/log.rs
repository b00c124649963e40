//! Lines in the host's log, tagged with the connector and connection.
//! Never log personal data you do not need to.

pub use crate::host::Level;

fn at(level: Level, message: &str) {
    crate::host::with(|host| host.log(level, message))
}

pub fn debug(message: &str) {
    at(Level::Debug, message)
}

pub fn info(message: &str) {
    at(Level::Info, message)
}

pub fn warn(message: &str) {
    at(Level::Warn, message)
}

pub fn error(message: &str) {
    at(Level::Error, message)
}
