//! QMP's JSON as QEMU reads and writes it: RFC 8259 plus single-quoted strings on input
//! (QEMU's `qobject/json-lexer.c`, `json-streamer.c` and `json-parser.c` behaviour, written
//! anew), and QEMU's output style (`{"a": 1, "b": [1, 2]}`, ASCII only, `\u` escapes with four hex digits).
//!
//! Input is a byte stream: [`JsonStreamer::feed`] turns bytes into complete top-level values
//! or errors. After an error the stream resynchronizes the way QEMU's does (the lexer skips to
//! the next structural or control character; a message that broke a size or nesting limit is
//! discarded up to its end), so one bad message never poisons the session.
// Reads guest, file, socket or plugin input: no panicking shortcuts (SECURITY.md, issue 9).
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use serde_json::{Map, Number, Value};

/// Largest message accepted, in bytes of tokens (QEMU allows 64 MiB; a QMP command is tiny).
pub const MAX_MESSAGE_SIZE: usize = 1 << 20;
/// Deepest nesting of objects and arrays accepted.
pub const MAX_NESTING: i64 = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    LCurly,
    RCurly,
    LSquare,
    RSquare,
    Colon,
    Comma,
    Integer,
    Float,
    Str,
    Keyword,
}

#[derive(Debug)]
struct Token {
    kind: Kind,
    text: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Esc {
    None,
    Backslash,
    /// Hex digits of a `\u` escape read so far.
    Hex(u8),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Num {
    Minus,
    Zero,
    Int,
    Dot,
    Frac,
    Exp,
    ExpSign,
    ExpDigits,
}

impl Num {
    fn next(self, b: u8) -> Option<Num> {
        let digit = b.is_ascii_digit();
        match (self, b) {
            (Num::Minus, b'0') => Some(Num::Zero),
            (Num::Minus, _) if digit => Some(Num::Int),
            (Num::Int, _) if digit => Some(Num::Int),
            (Num::Zero | Num::Int, b'.') => Some(Num::Dot),
            (Num::Zero | Num::Int | Num::Frac, b'e' | b'E') => Some(Num::Exp),
            (Num::Dot | Num::Frac, _) if digit => Some(Num::Frac),
            (Num::Exp, b'+' | b'-') => Some(Num::ExpSign),
            (Num::Exp | Num::ExpSign | Num::ExpDigits, _) if digit => Some(Num::ExpDigits),
            _ => None,
        }
    }

    /// The token kind if the number may end here.
    fn terminal(self) -> Option<Kind> {
        match self {
            Num::Zero | Num::Int => Some(Kind::Integer),
            Num::Frac | Num::ExpDigits => Some(Kind::Float),
            Num::Minus | Num::Dot | Num::Exp | Num::ExpSign => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lex {
    Start,
    /// After an error: skip to a structural or control character.
    Recovery,
    Str {
        quote: u8,
        esc: Esc,
    },
    Num(Num),
    Keyword,
}

/// Turns a byte stream into top-level JSON values, QEMU's way.
#[derive(Debug)]
pub struct JsonStreamer {
    state: Lex,
    token: Vec<u8>,
    tokens: Vec<Token>,
    braces: i64,
    brackets: i64,
    size: usize,
    /// A message broke a limit: swallow its tokens until its nesting closes.
    discarding: bool,
}

impl Default for JsonStreamer {
    fn default() -> Self {
        JsonStreamer::new()
    }
}

fn structural(b: u8) -> bool {
    matches!(b, b'[' | b']' | b'{' | b'}' | b':' | b',')
}

/// One result of the stream: a value, or the error QEMU would report for it.
pub type Message = Result<Value, String>;

impl JsonStreamer {
    /// A streamer at the start of a stream.
    pub fn new() -> JsonStreamer {
        JsonStreamer {
            state: Lex::Start,
            token: Vec::new(),
            tokens: Vec::new(),
            braces: 0,
            brackets: 0,
            size: 0,
            discarding: false,
        }
    }

    /// Feeds bytes; every complete top-level value (or error) is appended to `out`.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<Message>) {
        for &b in bytes {
            self.byte(b, out);
        }
    }

    fn byte(&mut self, b: u8, out: &mut Vec<Message>) {
        // A byte is looked at again after a token it ended (QEMU's LOOKAHEAD).
        loop {
            match self.state {
                Lex::Start => {
                    let single = match b {
                        b' ' | b'\t' | b'\r' | b'\n' => return,
                        b'{' => Some(Kind::LCurly),
                        b'}' => Some(Kind::RCurly),
                        b'[' => Some(Kind::LSquare),
                        b']' => Some(Kind::RSquare),
                        b':' => Some(Kind::Colon),
                        b',' => Some(Kind::Comma),
                        _ => None,
                    };
                    if let Some(kind) = single {
                        self.token.push(b);
                        self.emit(kind, out);
                        return;
                    }
                    self.token.push(b);
                    self.state = match b {
                        b'"' | b'\'' => Lex::Str {
                            quote: b,
                            esc: Esc::None,
                        },
                        b'-' => Lex::Num(Num::Minus),
                        b'0' => Lex::Num(Num::Zero),
                        b'1'..=b'9' => Lex::Num(Num::Int),
                        b'a'..=b'z' => Lex::Keyword,
                        _ => return self.lex_error(out),
                    };
                    return;
                }
                Lex::Recovery => {
                    if (b < 0x20 && b != b'\t') || b >= 0xfe || structural(b) {
                        self.state = Lex::Start;
                        continue;
                    }
                    return;
                }
                Lex::Str { quote, esc } => {
                    self.token.push(b);
                    if self.token.len() > MAX_MESSAGE_SIZE {
                        self.token.clear();
                        self.state = Lex::Recovery;
                        return self.limit_error("JSON token size limit exceeded", out);
                    }
                    let esc = match esc {
                        Esc::None if b == quote => {
                            return self.emit(Kind::Str, out);
                        }
                        Esc::None if b == b'\\' => Esc::Backslash,
                        Esc::None if !(0x20..0xfe).contains(&b) => return self.lex_error(out),
                        Esc::None => Esc::None,
                        Esc::Backslash => match b {
                            b'"' | b'\'' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {
                                Esc::None
                            }
                            b'u' => Esc::Hex(0),
                            _ => return self.lex_error(out),
                        },
                        Esc::Hex(n) if b.is_ascii_hexdigit() => {
                            if n >= 3 {
                                Esc::None
                            } else {
                                Esc::Hex(n + 1)
                            }
                        }
                        Esc::Hex(_) => return self.lex_error(out),
                    };
                    self.state = Lex::Str { quote, esc };
                    return;
                }
                Lex::Num(n) => match n.next(b) {
                    Some(next) => {
                        self.token.push(b);
                        self.state = Lex::Num(next);
                        return;
                    }
                    None => match n.terminal() {
                        Some(kind) => {
                            self.emit(kind, out);
                            continue;
                        }
                        None => {
                            self.token.push(b);
                            return self.lex_error(out);
                        }
                    },
                },
                Lex::Keyword => {
                    if b.is_ascii_lowercase() && self.token.len() < 64 {
                        self.token.push(b);
                        return;
                    }
                    self.emit(Kind::Keyword, out);
                    continue;
                }
            }
        }
    }

    /// The lexer met something no token can contain: QEMU's "stray" error.
    fn lex_error(&mut self, out: &mut Vec<Message>) {
        let text = String::from_utf8_lossy(&self.token).into_owned();
        self.token.clear();
        self.state = Lex::Recovery;
        self.reset();
        if std::mem::take(&mut self.discarding) {
            return;
        }
        out.push(Err(format!("JSON parse error, stray '{text}'")));
    }

    fn limit_error(&mut self, msg: &str, out: &mut Vec<Message>) {
        let open = self.braces > 0 || self.brackets > 0;
        let was_discarding = self.discarding;
        let (braces, brackets) = (self.braces, self.brackets);
        self.reset();
        if open {
            // Swallow the rest of this message: one error, then a clean stream.
            self.discarding = true;
            self.braces = braces;
            self.brackets = brackets;
        }
        if !was_discarding {
            out.push(Err(msg.to_string()));
        }
    }

    fn reset(&mut self) {
        self.tokens.clear();
        self.braces = 0;
        self.brackets = 0;
        self.size = 0;
    }

    fn emit(&mut self, kind: Kind, out: &mut Vec<Message>) {
        let text = std::mem::take(&mut self.token);
        self.state = Lex::Start;
        match kind {
            Kind::LCurly => self.braces += 1,
            Kind::RCurly => self.braces -= 1,
            Kind::LSquare => self.brackets += 1,
            Kind::RSquare => self.brackets -= 1,
            _ => {}
        }
        if self.discarding {
            if self.braces <= 0 && self.brackets <= 0 {
                self.discarding = false;
                self.reset();
            }
            return;
        }
        if self.size.saturating_add(text.len()).saturating_add(1) > MAX_MESSAGE_SIZE {
            return self.limit_error("JSON token size limit exceeded", out);
        }
        if self.braces.saturating_add(self.brackets) > MAX_NESTING {
            return self.limit_error("JSON nesting depth limit exceeded", out);
        }
        self.size += text.len();
        self.tokens.push(Token { kind, text });
        if (self.braces > 0 || self.brackets > 0) && self.braces >= 0 && self.brackets >= 0 {
            return;
        }
        let tokens = std::mem::take(&mut self.tokens);
        self.reset();
        let mut p = Parser {
            tokens: &tokens,
            pos: 0,
            err: None,
        };
        let v = p.value();
        out.push(match (v, p.err) {
            (_, Some(e)) => Err(format!("JSON parse error, {e}")),
            (Some(v), None) => Ok(v),
            (None, None) => Err("JSON parse error, expecting value".to_string()),
        });
    }
}

/// Recursive descent over one message's tokens, with QEMU's messages (first error wins).
struct Parser<'a> {
    tokens: &'a [Token],
    pos: usize,
    err: Option<String>,
}

impl Parser<'_> {
    fn error(&mut self, msg: &str) {
        if self.err.is_none() {
            self.err = Some(msg.to_string());
        }
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn pop(&mut self) -> Option<Kind> {
        let t = self.tokens.get(self.pos)?;
        self.pos += 1;
        Some(t.kind)
    }

    fn value(&mut self) -> Option<Value> {
        let Some(t) = self.peek() else {
            self.error("premature EOI");
            return None;
        };
        match t.kind {
            Kind::LCurly => self.object(),
            Kind::LSquare => self.array(),
            Kind::Integer | Kind::Float | Kind::Str => self.literal(),
            Kind::Keyword => {
                let word = String::from_utf8_lossy(&t.text).into_owned();
                self.pos += 1;
                match word.as_str() {
                    "true" => Some(Value::Bool(true)),
                    "false" => Some(Value::Bool(false)),
                    "null" => Some(Value::Null),
                    _ => {
                        self.error(&format!("invalid keyword '{word}'"));
                        None
                    }
                }
            }
            _ => {
                self.error("expecting value");
                None
            }
        }
    }

    fn literal(&mut self) -> Option<Value> {
        let t = self.tokens.get(self.pos)?;
        self.pos += 1;
        match t.kind {
            Kind::Str => match decode_string(&t.text) {
                Ok(s) => Some(Value::String(s)),
                Err(e) => {
                    self.error(e);
                    None
                }
            },
            Kind::Integer => {
                let s = std::str::from_utf8(&t.text).unwrap_or("");
                if let Ok(i) = s.parse::<i64>() {
                    return Some(Value::Number(i.into()));
                }
                if let Ok(u) = s.parse::<u64>() {
                    return Some(Value::Number(u.into()));
                }
                self.float(s)
            }
            _ => {
                let s = std::str::from_utf8(&t.text).unwrap_or("");
                self.float(s)
            }
        }
    }

    fn float(&mut self, s: &str) -> Option<Value> {
        match s.parse::<f64>().ok().and_then(Number::from_f64) {
            Some(n) => Some(Value::Number(n)),
            None => {
                self.error("number out of range");
                None
            }
        }
    }

    fn object(&mut self) -> Option<Value> {
        self.pos += 1; // '{'
        let mut map = Map::new();
        match self.peek().map(|t| t.kind) {
            None => {
                self.error("premature EOI");
                return None;
            }
            Some(Kind::RCurly) => {
                self.pos += 1;
                return Some(Value::Object(map));
            }
            Some(_) => {}
        }
        loop {
            self.pair(&mut map)?;
            match self.pop() {
                None => {
                    self.error("premature EOI");
                    return None;
                }
                Some(Kind::RCurly) => return Some(Value::Object(map)),
                Some(Kind::Comma) => {}
                Some(_) => {
                    self.error("expected separator in dict");
                    return None;
                }
            }
        }
    }

    fn pair(&mut self, map: &mut Map<String, Value>) -> Option<()> {
        if self.peek().is_none() {
            self.error("premature EOI");
            return None;
        }
        let key = match self.value() {
            Some(Value::String(s)) => s,
            _ => {
                self.error("key is not a string in object");
                return None;
            }
        };
        match self.pop() {
            None => {
                self.error("premature EOI");
                return None;
            }
            Some(Kind::Colon) => {}
            Some(_) => {
                self.error("missing : in object pair");
                return None;
            }
        }
        let Some(value) = self.value() else {
            self.error("Missing value in dict");
            return None;
        };
        if map.contains_key(&key) {
            self.error("duplicate key");
            return None;
        }
        map.insert(key, value);
        Some(())
    }

    fn array(&mut self) -> Option<Value> {
        self.pos += 1; // '['
        let mut list = Vec::new();
        match self.peek().map(|t| t.kind) {
            None => {
                self.error("premature EOI");
                return None;
            }
            Some(Kind::RSquare) => {
                self.pos += 1;
                return Some(Value::Array(list));
            }
            Some(_) => {}
        }
        loop {
            let Some(v) = self.value() else {
                self.error("expecting value");
                return None;
            };
            list.push(v);
            match self.pop() {
                None => {
                    self.error("premature EOI");
                    return None;
                }
                Some(Kind::RSquare) => return Some(Value::Array(list)),
                Some(Kind::Comma) => {}
                Some(_) => {
                    self.error("expected separator in list");
                    return None;
                }
            }
        }
    }
}

/// Decodes a string token (quotes included): escapes, and UTF-8 checked.
fn decode_string(text: &[u8]) -> Result<String, &'static str> {
    let inner = text
        .get(1..text.len().saturating_sub(1))
        .ok_or("invalid string")?;
    let mut bytes = Vec::with_capacity(inner.len());
    let mut i = 0;
    let hex4 = |at: usize| -> Option<u32> {
        let h = inner.get(at..at + 4)?;
        u32::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()
    };
    while let Some(&b) = inner.get(i) {
        if b != b'\\' {
            bytes.push(b);
            i += 1;
            continue;
        }
        let e = inner
            .get(i + 1)
            .copied()
            .ok_or("invalid escape sequence in string")?;
        i += 2;
        let c = match e {
            b'"' => '"',
            b'\'' => '\'',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let hi = hex4(i).ok_or("invalid hex escape sequence in string")?;
                i += 4;
                let cp = if (0xd800..0xdc00).contains(&hi) {
                    let lo = (inner.get(i..i + 2) == Some(b"\\u"))
                        .then(|| hex4(i + 2))
                        .flatten()
                        .filter(|lo| (0xdc00..0xe000).contains(lo))
                        .ok_or("invalid \\u escape sequence in string")?;
                    i += 6;
                    0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00)
                } else {
                    hi
                };
                if cp == 0 {
                    return Err("\\u0000 is not supported");
                }
                char::from_u32(cp).ok_or("invalid \\u escape sequence in string")?
            }
            _ => return Err("invalid escape sequence in string"),
        };
        let mut buf = [0u8; 4];
        bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    }
    String::from_utf8(bytes).map_err(|_| "invalid UTF-8 sequence in string")
}

/// Writes `v` as QEMU does: `": "` and `", "` separators, ASCII only.
pub fn to_json(v: &Value) -> String {
    let mut s = String::new();
    write_value(v, &mut s);
    s
}

fn write_value(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_string(k, out);
                out.push_str(": ");
                write_value(item, out);
            }
            out.push('}');
        }
    }
}

fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || (c as u32) >= 0x7f => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{u:04X}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
// Tests: a failing unwrap, index or panic is a failed test (as clippy.toml allows).
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse_all(input: &str) -> Vec<Message> {
        let mut s = JsonStreamer::new();
        let mut out = Vec::new();
        s.feed(input.as_bytes(), &mut out);
        out
    }

    #[test]
    fn test_objects_arrays_and_single_quotes_parse() {
        let out = parse_all(
            "{'execute': \"query-status\", 'arguments': {'a': [1, -2, 3.5, true, null]}}",
        );
        assert_eq!(
            out,
            vec![Ok(
                json!({"execute": "query-status", "arguments": {"a": [1, -2, 3.5, true, null]}})
            )]
        );
    }

    #[test]
    fn test_values_split_across_feeds_and_several_per_feed() {
        let mut s = JsonStreamer::new();
        let mut out = Vec::new();
        s.feed(b"{\"a\": ", &mut out);
        assert!(out.is_empty());
        s.feed(b"1}{\"b\"", &mut out);
        s.feed(b":2}\r\n", &mut out);
        assert_eq!(out, vec![Ok(json!({"a": 1})), Ok(json!({"b": 2}))]);
    }

    #[test]
    fn test_not_json_gives_two_keyword_errors_like_qemu() {
        assert_eq!(
            parse_all("not json\n"),
            vec![
                Err("JSON parse error, invalid keyword 'not'".to_string()),
                Err("JSON parse error, invalid keyword 'json'".to_string())
            ]
        );
    }

    #[test]
    fn test_stray_characters_and_recovery() {
        let out = parse_all("{\"a\": %} {\"b\": 1}\n");
        assert_eq!(out[0], Err("JSON parse error, stray '%'".to_string()));
        assert_eq!(out[1], Err("JSON parse error, expecting value".to_string()));
        assert_eq!(out[2], Ok(json!({"b": 1})));
        assert_eq!(out.len(), 3);
    }

    #[test]
    fn test_parser_errors_use_qemu_wording() {
        let first = |s: &str| parse_all(s).into_iter().next().unwrap().unwrap_err();
        assert_eq!(
            first("{1: 2}"),
            "JSON parse error, key is not a string in object"
        );
        assert_eq!(
            first("{\"a\" 2}"),
            "JSON parse error, missing : in object pair"
        );
        assert_eq!(
            first("{\"a\": 1 \"b\": 2}"),
            "JSON parse error, expected separator in dict"
        );
        assert_eq!(
            first("[1 2]"),
            "JSON parse error, expected separator in list"
        );
        assert_eq!(
            first("{\"a\": 1, \"a\": 2}"),
            "JSON parse error, duplicate key"
        );
        assert_eq!(first("{\"a\": ]"), "JSON parse error, expecting value");
        assert_eq!(
            first("\"\\u0000\""),
            "JSON parse error, \\u0000 is not supported"
        );
    }

    #[test]
    fn test_nesting_limit_gives_one_error_then_resynchronizes() {
        let deep = format!("{}{}\n{{\"x\": 1}}", "[".repeat(100), "]".repeat(100));
        let out = parse_all(&deep);
        assert_eq!(
            out,
            vec![
                Err("JSON nesting depth limit exceeded".to_string()),
                Ok(json!({"x": 1}))
            ]
        );
        let ok = format!("{}{}", "[".repeat(64), "]".repeat(64));
        assert!(parse_all(&ok)[0].is_ok());
    }

    #[test]
    fn test_size_limit_gives_one_error_then_resynchronizes() {
        let big = format!(
            "{{\"a\": \"{}\"}}\n{{\"x\": 1}}",
            "y".repeat(MAX_MESSAGE_SIZE + 10)
        );
        let out = parse_all(&big);
        assert_eq!(out[0], Err("JSON token size limit exceeded".to_string()));
        assert_eq!(out.last(), Some(&Ok(json!({"x": 1}))));
    }

    #[test]
    fn test_escapes_and_unicode_round_trip_as_ascii() {
        let out = parse_all(r#"["\u00e9\ud83d\ude00\n\"\/\t", 'it\'s']"#);
        let v = out[0].clone().unwrap();
        assert_eq!(v, json!(["é😀\n\"/\t", "it's"]));
        assert_eq!(to_json(&v), r#"["\u00E9\uD83D\uDE00\n\"/\t", "it's"]"#);
        assert_eq!(
            to_json(&json!({"a": {}, "b": [], "c": "\u{7f}\u{1}"})),
            r#"{"a": {}, "b": [], "c": "\u007F\u0001"}"#
        );
    }

    #[test]
    fn test_control_characters_in_strings_are_errors() {
        let out = parse_all("\"a\u{1}b\" {\"ok\": true}");
        assert!(
            out[0]
                .as_ref()
                .unwrap_err()
                .starts_with("JSON parse error, stray")
        );
        assert_eq!(out.last(), Some(&Ok(json!({"ok": true}))));
    }

    #[test]
    fn test_numbers_keep_integer_width() {
        let out = parse_all("[18446744073709551615, -9223372036854775808, 1e3, 0]");
        assert_eq!(
            to_json(out[0].as_ref().unwrap()),
            "[18446744073709551615, -9223372036854775808, 1000.0, 0]"
        );
    }

    #[test]
    fn test_invalid_utf8_in_string_is_an_error() {
        let mut s = JsonStreamer::new();
        let mut out = Vec::new();
        s.feed(b"\"\xc3\x28\"", &mut out);
        assert_eq!(
            out,
            vec![Err(
                "JSON parse error, invalid UTF-8 sequence in string".to_string()
            )]
        );
    }
}
