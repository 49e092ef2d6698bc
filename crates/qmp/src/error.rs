//! QMP errors: QEMU's error classes and messages (`{"class": ..., "desc": ...}`).
// Reads guest, file, socket or plugin input: no panicking shortcuts (SECURITY.md, issue 9).
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use serde_json::{Value, json};
use thiserror::Error;

/// QEMU's `QapiErrorClass` values breadboard uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// Everything without a more specific class.
    GenericError,
    /// Unknown command, or a command refused before capabilities negotiation.
    CommandNotFound,
    /// A path or id that names nothing.
    DeviceNotFound,
}

impl ErrorClass {
    /// The class as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::GenericError => "GenericError",
            ErrorClass::CommandNotFound => "CommandNotFound",
            ErrorClass::DeviceNotFound => "DeviceNotFound",
        }
    }
}

/// A QMP error reply.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("{desc}")]
pub struct QmpError {
    /// Error class.
    pub class: ErrorClass,
    /// Human-readable description (QEMU's wording where QEMU has one).
    pub desc: String,
}

impl QmpError {
    /// A `GenericError`.
    pub fn generic(desc: impl Into<String>) -> QmpError {
        QmpError {
            class: ErrorClass::GenericError,
            desc: desc.into(),
        }
    }

    /// A `CommandNotFound`.
    pub fn command_not_found(desc: impl Into<String>) -> QmpError {
        QmpError {
            class: ErrorClass::CommandNotFound,
            desc: desc.into(),
        }
    }

    /// `DeviceNotFound` for a path or id: "Device 'X' not found".
    pub fn device_not_found(what: &str) -> QmpError {
        QmpError {
            class: ErrorClass::DeviceNotFound,
            desc: format!("Device '{what}' not found"),
        }
    }

    /// The `error` member of a reply.
    pub fn to_value(&self) -> Value {
        json!({"class": self.class.as_str(), "desc": self.desc})
    }
}

/// Errors starting a server.
#[derive(Debug, Error)]
pub enum ServerError {
    /// A `-qmp` value breadboard can't serve.
    #[error("-qmp {spec}: {reason}")]
    Spec {
        /// The value given.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Binding or listening failed.
    #[error("-qmp {spec}: could not listen")]
    Listen {
        /// The value given.
        spec: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A thread could not be started.
    #[error("could not start the QMP thread")]
    Thread(#[source] std::io::Error),
}
