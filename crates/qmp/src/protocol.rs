//! The QMP session as QEMU's docs/interop/qmp-spec describes it, independent of the
//! transport: the greeting, capabilities negotiation, the checks of an input object (QEMU's
//! messages), and reply and event formatting (QEMU's member order, ASCII, CRLF).
// Reads guest, file, socket or plugin input: no panicking shortcuts (SECURITY.md, issue 9).
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use serde_json::{Map, Value, json};

use crate::commands::version_info;
use crate::error::QmpError;
use crate::json::{JsonStreamer, to_json};

/// The greeting a client gets on connect.
pub fn greeting() -> String {
    line(&json!({"QMP": {"version": version_info(), "capabilities": []}}))
}

/// One output line: JSON, then CRLF (QEMU's monitor writes `\r\n`).
pub fn line(v: &Value) -> String {
    let mut s = to_json(v);
    s.push_str("\r\n");
    s
}

/// A reply line: `{"return": …}` or `{"error": …}`, then `"id"` if the request had one.
pub fn reply(result: &Result<Value, QmpError>, id: Option<&Value>) -> String {
    let mut o = Map::new();
    match result {
        Ok(v) => o.insert("return".into(), v.clone()),
        Err(e) => o.insert("error".into(), e.to_value()),
    };
    if let Some(id) = id {
        o.insert("id".into(), id.clone());
    }
    line(&Value::Object(o))
}

/// An event line, as QEMU writes it: timestamp, event, then data.
pub fn event(name: &str, data: Option<&Value>) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let mut o = Map::new();
    o.insert(
        "timestamp".into(),
        json!({"seconds": now.as_secs(), "microseconds": now.subsec_micros()}),
    );
    o.insert("event".into(), json!(name));
    if let Some(d) = data {
        o.insert("data".into(), d.clone());
    }
    line(&Value::Object(o))
}

/// A command to run, from a checked input object.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    /// Command name.
    pub command: String,
    /// Its arguments (empty if none were given).
    pub arguments: Map<String, Value>,
    /// The request's `id`, echoed in the reply.
    pub id: Option<Value>,
}

/// What to do with one input message.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Answer with this line (an error, or the negotiation reply) and change nothing else.
    Reply(String),
    /// Run this command on the machine.
    Execute(Request),
}

/// One client's protocol state: capabilities negotiation and the input stream.
#[derive(Debug, Default)]
pub struct Session {
    negotiated: bool,
    input: JsonStreamer,
}

impl Session {
    /// A session that has sent the greeting and waits for `qmp_capabilities`.
    pub fn new() -> Session {
        Session::default()
    }

    /// Whether `qmp_capabilities` succeeded (events are sent only then).
    pub fn negotiated(&self) -> bool {
        self.negotiated
    }

    /// Feeds received bytes; returns what to do for each complete message, in order.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Action> {
        let mut msgs = Vec::new();
        self.input.feed(bytes, &mut msgs);
        msgs.into_iter().map(|m| self.action(m)).collect()
    }

    fn action(&mut self, msg: Result<Value, String>) -> Action {
        let err = |desc: String, id: Option<&Value>| {
            Action::Reply(reply(&Err(QmpError::generic(desc)), id))
        };
        let obj = match msg {
            Err(e) => return err(e, None),
            Ok(Value::Object(o)) => o,
            Ok(_) => return err("QMP input must be a JSON object".into(), None),
        };
        let id = obj.get("id");
        let mut command = None;
        for (k, v) in &obj {
            match k.as_str() {
                "execute" => match v {
                    Value::String(s) => command = Some(s.clone()),
                    _ => return err(format!("QMP input member '{k}' must be a string"), id),
                },
                "arguments" => {
                    if !v.is_object() {
                        return err("QMP input member 'arguments' must be an object".into(), id);
                    }
                }
                "id" => {}
                _ => return err(format!("QMP input member '{k}' is unexpected"), id),
            }
        }
        let Some(command) = command else {
            return err("QMP input lacks member 'execute'".into(), id);
        };
        let arguments = match obj.get("arguments") {
            Some(Value::Object(a)) => a.clone(),
            _ => Map::new(),
        };
        if !self.negotiated {
            if command != "qmp_capabilities" {
                return Action::Reply(reply(
                    &Err(QmpError::command_not_found(
                        "Expecting capabilities negotiation with 'qmp_capabilities'",
                    )),
                    id,
                ));
            }
            let r = negotiate(&arguments);
            if r.is_ok() {
                self.negotiated = true;
            }
            return Action::Reply(reply(&r, id));
        }
        Action::Execute(Request {
            command,
            arguments,
            id: id.cloned(),
        })
    }
}

/// `qmp_capabilities` before negotiation: breadboard offers no optional capability.
fn negotiate(args: &Map<String, Value>) -> Result<Value, QmpError> {
    if let Some(k) = args.keys().find(|k| k.as_str() != "enable") {
        return Err(QmpError::generic(format!("Parameter '{k}' is unexpected")));
    }
    match args.get("enable") {
        None => {}
        // No capability is offered, so the first one asked for is refused.
        Some(Value::Array(list)) => match list.first().map(Value::as_str) {
            None => {}
            Some(Some("oob")) => return Err(QmpError::generic("Capability 'oob' not available")),
            Some(Some(other)) => {
                return Err(QmpError::generic(format!(
                    "Parameter 'enable[0]' does not accept value '{other}'"
                )));
            }
            Some(None) => {
                return Err(QmpError::generic(
                    "Invalid parameter type for 'enable[0]', expected: string",
                ));
            }
        },
        Some(_) => {
            return Err(QmpError::generic(
                "Invalid parameter type for 'enable', expected: array",
            ));
        }
    }
    Ok(json!({}))
}

#[cfg(test)]
// Tests: a failing unwrap, index or panic is a failed test (as clippy.toml allows).
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn replies(s: &mut Session, input: &str) -> Vec<Action> {
        s.feed(input.as_bytes())
    }

    #[test]
    fn test_greeting_is_qemu_shaped_ascii_crlf() {
        let g = greeting();
        assert!(g.starts_with("{\"QMP\": {\"version\": {\"qemu\": {\"micro\": "));
        assert!(g.ends_with("\"capabilities\": []}}\r\n"));
        assert!(g.is_ascii());
    }

    #[test]
    fn test_commands_refused_before_negotiation() {
        let mut s = Session::new();
        let a = replies(&mut s, "{\"execute\": \"query-status\", \"id\": 1}");
        assert_eq!(
            a,
            vec![Action::Reply(
                "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"Expecting capabilities negotiation with 'qmp_capabilities'\"}, \"id\": 1}\r\n".into()
            )]
        );
        let a = replies(&mut s, "{'execute': 'qmp_capabilities'}");
        assert_eq!(a, vec![Action::Reply("{\"return\": {}}\r\n".into())]);
        assert!(s.negotiated());
        let a = replies(
            &mut s,
            "{\"execute\": \"query-status\", \"id\": [\"x\", {}]}",
        );
        assert_eq!(
            a,
            vec![Action::Execute(Request {
                command: "query-status".into(),
                arguments: Map::new(),
                id: Some(json!(["x", {}]))
            })]
        );
    }

    #[test]
    fn test_input_object_checks_use_qemu_messages() {
        let mut s = Session::new();
        let one = |s: &mut Session, i: &str| match s.feed(i.as_bytes()).remove(0) {
            Action::Reply(r) => r,
            Action::Execute(_) => panic!("executed"),
        };
        assert_eq!(
            one(&mut s, "{\"id\":7}"),
            "{\"error\": {\"class\": \"GenericError\", \"desc\": \"QMP input lacks member 'execute'\"}, \"id\": 7}\r\n"
        );
        assert_eq!(
            one(&mut s, "[1,2]"),
            "{\"error\": {\"class\": \"GenericError\", \"desc\": \"QMP input must be a JSON object\"}}\r\n"
        );
        assert!(
            one(&mut s, "{\"execute\": 1}").contains("QMP input member 'execute' must be a string")
        );
        assert!(
            one(&mut s, "{\"execute\": \"x\", \"arguments\": []}")
                .contains("QMP input member 'arguments' must be an object")
        );
        assert!(
            one(&mut s, "{\"execute\": \"x\", \"foo\": 1}")
                .contains("QMP input member 'foo' is unexpected")
        );
        assert!(
            one(
                &mut s,
                "{\"execute\": \"qmp_capabilities\", \"arguments\": {\"enable\": [\"oob\"]}}"
            )
            .contains("Capability 'oob' not available")
        );
        assert!(!s.negotiated());
    }

    #[test]
    fn test_event_line_format() {
        let e = event(
            "SHUTDOWN",
            Some(&json!({"guest": false, "reason": "host-qmp-quit"})),
        );
        assert!(e.starts_with("{\"timestamp\": {\"seconds\": "));
        assert!(e.ends_with(", \"event\": \"SHUTDOWN\", \"data\": {\"guest\": false, \"reason\": \"host-qmp-quit\"}}\r\n"));
    }
}
