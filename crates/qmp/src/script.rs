//! qmp-shell scripts run in-process (`-qmp-script FILE`): one command per line in qmp-shell's
//! syntax, `command key=value …`, so the same file can be piped into QEMU's `qmp-shell`.
//!
//! Values are read as qmp-shell reads them: an integer (Python `int()` syntax: sign, digits,
//! `_` separators), `true`/`false` (any case), a JSON object or array if the value starts with
//! `{` or `[` and parses, else the text as a string (quotes included, as qmp-shell keeps
//! them). `a.b=1` builds nested objects. Blank lines and lines starting with `#` are skipped.
//!
//! The whole file is parsed before anything runs, so a syntax error changes nothing; then the
//! commands run in order and the first failure stops the script with `FILE:LINE`.
// Reads guest, file, socket or plugin input: no panicking shortcuts (SECURITY.md, issue 9).
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::Path;

use breadboard_platform::machine::Machine;
use serde_json::{Map, Value};
use thiserror::Error;

use crate::commands::{QmpContext, execute};
use crate::error::QmpError;
use crate::json::JsonStreamer;

/// A script failure, naming the file and line.
#[derive(Debug, Error)]
pub enum ScriptError {
    /// The file could not be read.
    #[error("could not read QMP script '{file}'")]
    Read {
        /// Path.
        file: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A line is not qmp-shell syntax.
    #[error("{file}:{line}: {msg}")]
    Syntax {
        /// Path.
        file: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        msg: String,
    },
    /// A command failed.
    #[error("{file}:{line}: {command}: {}", .error.desc)]
    Command {
        /// Path.
        file: String,
        /// 1-based line number.
        line: usize,
        /// Command name.
        command: String,
        /// QMP's error.
        error: QmpError,
    },
}

/// One parsed script line.
#[derive(Clone, Debug, PartialEq)]
pub struct ScriptCommand {
    /// 1-based line number.
    pub line: usize,
    /// Command name.
    pub command: String,
    /// Arguments.
    pub arguments: Map<String, Value>,
}

/// Splits a line into qmp-shell's tokens: runs of non-space characters, where a quoted part
/// (`"…"` or `'…'`, backslash escapes) may hold spaces. Quotes stay in the token.
fn tokens(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c.is_whitespace() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        cur.push(c);
        if c == '"' || c == '\'' {
            let mut closed = false;
            while let Some(q) = chars.next() {
                cur.push(q);
                if q == '\\' {
                    if let Some(e) = chars.next() {
                        cur.push(e);
                    }
                } else if q == c {
                    closed = true;
                    break;
                }
            }
            if !closed {
                return Err(format!("Unterminated quote in '{cur}'"));
            }
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    Ok(out)
}

/// Python's `int()` on a token: optional sign, digits, single `_` between digits.
fn python_int(s: &str) -> Option<Value> {
    let (neg, digits) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
        || !digits.chars().all(|c| c.is_ascii_digit() || c == '_')
    {
        return None;
    }
    let clean: String = digits.chars().filter(|&c| c != '_').collect();
    if neg {
        let v = format!("-{clean}").parse::<i64>().ok()?;
        Some(Value::from(v))
    } else {
        let v = clean.parse::<u64>().ok()?;
        Some(Value::from(v))
    }
}

/// qmp-shell's value rules (see the module doc).
pub fn parse_value(s: &str) -> Value {
    if let Some(v) = python_int(s) {
        return v;
    }
    if s.eq_ignore_ascii_case("true") {
        return Value::Bool(true);
    }
    if s.eq_ignore_ascii_case("false") {
        return Value::Bool(false);
    }
    if s.starts_with('{') || s.starts_with('[') {
        let mut p = JsonStreamer::new();
        let mut out = Vec::new();
        p.feed(s.as_bytes(), &mut out);
        if let [Ok(v)] = out.as_slice() {
            return v.clone();
        }
    }
    Value::String(s.to_string())
}

/// A command name and its arguments.
pub type Line = (String, Map<String, Value>);

/// Parses one line; `None` for blank lines and comments.
pub fn parse_line(text: &str) -> Result<Option<Line>, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return Ok(None);
    }
    let toks = tokens(trimmed)?;
    let Some((cmd, rest)) = toks.split_first() else {
        return Ok(None);
    };
    let mut args = Map::new();
    for t in rest {
        let Some((key, val)) = t.split_once('=') else {
            return Err(format!("Expected a key=value pair, got '{t}'"));
        };
        let value = parse_value(val);
        let path: Vec<&str> = key.split('.').collect();
        let (leaf, parents) = path
            .split_last()
            .ok_or_else(|| format!("Empty key in '{t}'"))?;
        let mut obj = &mut args;
        let mut walked: Vec<&str> = Vec::new();
        for p in parents {
            walked.push(p);
            let entry = obj
                .entry(p.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            obj = entry.as_object_mut().ok_or_else(|| {
                format!(
                    "Cannot use \"{}\" as both leaf and non-leaf key",
                    walked.join(".")
                )
            })?;
        }
        match obj.get(*leaf) {
            Some(Value::Object(_)) => {
                return Err(format!(
                    "Cannot use \"{}\" as both leaf and non-leaf key",
                    walked.join(".")
                ));
            }
            Some(_) => return Err(format!("Cannot set \"{key}\" multiple times")),
            None => {
                obj.insert(leaf.to_string(), value);
            }
        }
    }
    Ok(Some((cmd.clone(), args)))
}

/// Parses a whole script; the first bad line is an error naming `file` and the line.
pub fn parse_script(file: &str, text: &str) -> Result<Vec<ScriptCommand>, ScriptError> {
    let mut out = Vec::new();
    for (i, l) in text.lines().enumerate() {
        match parse_line(l) {
            Ok(Some((command, arguments))) => out.push(ScriptCommand {
                line: i + 1,
                command,
                arguments,
            }),
            Ok(None) => {}
            Err(msg) => {
                return Err(ScriptError::Syntax {
                    file: file.to_string(),
                    line: i + 1,
                    msg,
                });
            }
        }
    }
    Ok(out)
}

/// Runs the script at `path` against the machine; returns how many commands ran. Stops at
/// the first failing command. Events the commands raise go to `ctx`'s clients.
pub fn run_script(
    path: &Path,
    machine: &mut Machine,
    ctx: &mut QmpContext,
) -> Result<usize, ScriptError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ScriptError::Read {
        file: file.clone(),
        source,
    })?;
    run_commands(&file, &parse_script(&file, &text)?, machine, ctx)
}

/// Runs already parsed commands (see [`run_script`]).
pub fn run_commands(
    file: &str,
    cmds: &[ScriptCommand],
    machine: &mut Machine,
    ctx: &mut QmpContext,
) -> Result<usize, ScriptError> {
    for c in cmds {
        let r = execute(machine, ctx, &c.command, &c.arguments);
        ctx.flush_deferred();
        if let Err(error) = r {
            return Err(ScriptError::Command {
                file: file.to_string(),
                line: c.line,
                command: c.command.clone(),
                error,
            });
        }
        tracing::debug!("{file}:{}: {} done", c.line, c.command);
    }
    Ok(cmds.len())
}

#[cfg(test)]
// Tests: a failing unwrap, index or panic is a failed test (as clippy.toml allows).
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(line: &str) -> Value {
        Value::Object(parse_line(line).unwrap().unwrap().1)
    }

    #[test]
    fn test_values_follow_qmp_shell_rules() {
        assert_eq!(
            args("device_add driver=sysbus-memory id=rom size=0x4000 readonly=true"),
            json!({"driver": "sysbus-memory", "id": "rom", "size": "0x4000", "readonly": true})
        );
        assert_eq!(
            args("x addr=32768 n=-5 u=1_000 f=FALSE"),
            json!({"addr": 32768, "n": -5, "u": 1000, "f": false})
        );
        assert_eq!(
            args("qom-set path=uart property=sysbus-irq[1] value=plic/unnamed-gpio-in[2]"),
            json!({"path": "uart", "property": "sysbus-irq[1]", "value": "plic/unnamed-gpio-in[2]"})
        );
        assert_eq!(
            args("x l=[1,2] o={\"a\":1} bad=[x"),
            json!({"l": [1, 2], "o": {"a": 1}, "bad": "[x"})
        );
        assert_eq!(
            args("x s=\"a b\""),
            json!({"s": "\"a b\""}),
            "qmp-shell keeps the quotes"
        );
        assert_eq!(args("x a.b=1 a.c=2"), json!({"a": {"b": 1, "c": 2}}));
    }

    #[test]
    fn test_comments_blank_lines_and_errors() {
        assert_eq!(parse_line("   # comment").unwrap(), None);
        assert_eq!(parse_line("").unwrap(), None);
        assert_eq!(
            parse_line("x-machine-init").unwrap(),
            Some(("x-machine-init".into(), Map::new()))
        );
        assert_eq!(
            parse_line("x foo").unwrap_err(),
            "Expected a key=value pair, got 'foo'"
        );
        assert_eq!(
            parse_line("x a=1 a=2").unwrap_err(),
            "Cannot set \"a\" multiple times"
        );
        assert!(parse_line("x a=1 a.b=2").is_err());
        assert!(parse_line("x s=\"open").is_err());
        let e = parse_script("f.qmp", "a\n\n b c\n")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "f.qmp:3: Expected a key=value pair, got 'c'");
    }
}
