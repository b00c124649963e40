//! Short constructors for the contract's error classes and reports, so
//! that a connector says `rejected("DUPLICATE", "…")` rather than
//! spelling out the records.

use crate::{ConnectionReport, Rejection, StoreError, TransientError};

impl StoreError {
    /// A failure that will repeat until the data changes.
    pub fn rejected(code: impl Into<String>, message: impl Into<String>) -> StoreError {
        StoreError::Rejected(Rejection {
            code: code.into(),
            message: message.into(),
            fields: Vec::new(),
        })
    }

    /// A failure worth trying again later, after `retry_after_ms` if the
    /// store said so.
    pub fn transient(message: impl Into<String>, retry_after_ms: Option<u64>) -> StoreError {
        StoreError::Transient(TransientError {
            message: message.into(),
            retry_after_ms,
        })
    }

    /// The store answered something the connector cannot read: worth
    /// trying again, since a proxy or a deployment in progress is the
    /// usual cause.
    pub fn protocol(message: impl Into<String>) -> StoreError {
        let message = message.into();
        crate::log::warn(&message);
        StoreError::transient(message, None)
    }
}

pub(crate) fn unsupported(what: &str) -> StoreError {
    StoreError::Unsupported(format!("this connector does not implement {what}"))
}

impl ConnectionReport {
    /// A report that says `summary`; add facts with [`detail`](Self::detail).
    pub fn new(summary: impl Into<String>) -> ConnectionReport {
        ConnectionReport {
            summary: summary.into(),
            details: Vec::new(),
        }
    }

    /// A fact for the operator's table, e.g. `("api-version", "62.0")`.
    pub fn detail(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.details.push((name.into(), value.into()));
        self
    }
}
