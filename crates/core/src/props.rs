//! Typed device properties: one schema feeds `-device`, machine descriptions, `device_add` and
//! `device-list-properties`, so every front end reports the same error for the same mistake.
//!
//! Parsing follows QEMU's conventions: integers in decimal or `0x` hex, sizes with binary
//! suffixes (`64K`, `16M`), booleans as `on/off/true/false/yes/no`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use thiserror::Error;

/// The type of a property value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PropKind {
    /// An unsigned integer (`uint64` in QEMU's `device-list-properties`).
    Int,
    /// A size in bytes; accepts `K`, `M`, `G`, `T` suffixes (`size`).
    Size,
    /// A boolean (`bool`).
    Bool,
    /// Free text (`str`).
    Str,
    /// A QOM path of another object (`link<…>`).
    Link,
    /// The id of a character device given with `-chardev`/`-serial` (`chr`).
    Chardev,
    /// The id of a block backend given with `-drive` (`drive`).
    Drive,
}

impl PropKind {
    /// The type name QEMU shows in `device-list-properties` and `qom-list`.
    pub fn qemu_name(self) -> &'static str {
        match self {
            PropKind::Int => "uint64",
            PropKind::Size => "size",
            PropKind::Bool => "bool",
            PropKind::Str => "str",
            PropKind::Link => "link",
            PropKind::Chardev => "chr",
            PropKind::Drive => "drive",
        }
    }

    fn expects(self) -> &'static str {
        match self {
            PropKind::Int => "an integer",
            PropKind::Size => "a size value",
            PropKind::Bool => "'on' or 'off'",
            PropKind::Str | PropKind::Link | PropKind::Chardev | PropKind::Drive => "a string",
        }
    }
}

/// A validated property value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PropValue {
    /// `Int` and `Size` properties.
    U64(u64),
    /// `Bool` properties.
    Bool(bool),
    /// `Str`, `Link`, `Chardev` and `Drive` properties.
    Str(String),
}

impl fmt::Display for PropValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PropValue::U64(v) => write!(f, "{v}"),
            PropValue::Bool(b) => f.write_str(if *b { "true" } else { "false" }),
            PropValue::Str(s) => f.write_str(s),
        }
    }
}

/// A value as it arrives from a front end, before it is checked against the schema.
#[derive(Clone, Copy, Debug)]
pub enum RawValue<'a> {
    /// Text from the command line, a qmp-shell script or a TOML string.
    Str(&'a str),
    /// A JSON or TOML number.
    Int(i128),
    /// A JSON or TOML boolean.
    Bool(bool),
}

impl fmt::Display for RawValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RawValue::Str(s) => f.write_str(s),
            RawValue::Int(i) => write!(f, "{i}"),
            RawValue::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// One declared property of a device type.
#[derive(Clone, Debug)]
pub struct PropSpec {
    /// Property name, e.g. `size`.
    pub name: Cow<'static, str>,
    /// Its type.
    pub kind: PropKind,
    /// Default as text (parsed with the same parser as user input), or `None` if required.
    pub default: Option<Cow<'static, str>>,
    /// One-line documentation, shown by `-device TYPE,help`.
    pub doc: Cow<'static, str>,
    /// Inclusive upper bound for integers; `None` means `u64::MAX`.
    pub max: Option<u64>,
}

impl PropSpec {
    /// An optional property with a default value.
    pub const fn new(
        name: &'static str,
        kind: PropKind,
        default: &'static str,
        doc: &'static str,
    ) -> PropSpec {
        PropSpec {
            name: Cow::Borrowed(name),
            kind,
            default: Some(Cow::Borrowed(default)),
            doc: Cow::Borrowed(doc),
            max: None,
        }
    }

    /// A property without a default; leaving it out is an error.
    pub const fn required(name: &'static str, kind: PropKind, doc: &'static str) -> PropSpec {
        PropSpec {
            name: Cow::Borrowed(name),
            kind,
            default: None,
            doc: Cow::Borrowed(doc),
            max: None,
        }
    }

    /// An optional property that is simply absent unless given (e.g. an optional chardev).
    pub const fn optional(name: &'static str, kind: PropKind, doc: &'static str) -> PropSpec {
        PropSpec {
            name: Cow::Borrowed(name),
            kind,
            default: Some(Cow::Borrowed("")),
            doc: Cow::Borrowed(doc),
            max: None,
        }
    }

    /// Limits an integer property to `max` (inclusive).
    pub const fn with_max(mut self, max: u64) -> PropSpec {
        self.max = Some(max);
        self
    }

    /// Parses and checks `raw` for this property of device type `ty`.
    pub fn parse(&self, ty: &str, raw: RawValue<'_>) -> Result<PropValue, PropError> {
        let bad = || PropError::BadValue {
            ty: ty.to_string(),
            prop: self.name.to_string(),
            value: raw.to_string(),
            expected: self.kind.expects(),
        };
        let value = match (self.kind, raw) {
            (PropKind::Int, RawValue::Str(s)) => PropValue::U64(parse_int(s).ok_or_else(bad)?),
            (PropKind::Size, RawValue::Str(s)) => PropValue::U64(parse_size(s).ok_or_else(bad)?),
            (PropKind::Int | PropKind::Size, RawValue::Int(i)) => {
                PropValue::U64(u64::try_from(i).map_err(|_| bad())?)
            }
            (PropKind::Bool, RawValue::Str(s)) => PropValue::Bool(parse_bool(s).ok_or_else(bad)?),
            (PropKind::Bool, RawValue::Bool(b)) => PropValue::Bool(b),
            (
                PropKind::Str | PropKind::Link | PropKind::Chardev | PropKind::Drive,
                RawValue::Str(s),
            ) => PropValue::Str(s.to_string()),
            _ => return Err(bad()),
        };
        if let (PropValue::U64(v), Some(max)) = (&value, self.max)
            && *v > max
        {
            return Err(PropError::OutOfRange {
                ty: ty.to_string(),
                prop: self.name.to_string(),
                value: *v,
                max,
            });
        }
        Ok(value)
    }
}

/// A property error. Messages follow QEMU's wording where QEMU has one.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum PropError {
    /// The device type has no such property.
    #[error("Property '{ty}.{prop}' not found")]
    Unknown {
        /// Device type.
        ty: String,
        /// Property given.
        prop: String,
    },
    /// The value does not parse as the property's type.
    #[error("Property '{ty}.{prop}' expects {expected}, not '{value}'")]
    BadValue {
        /// Device type.
        ty: String,
        /// Property.
        prop: String,
        /// Value given.
        value: String,
        /// What was expected.
        expected: &'static str,
    },
    /// An integer above the property's limit.
    #[error("Property '{ty}.{prop}' value {value:#x} is larger than the maximum {max:#x}")]
    OutOfRange {
        /// Device type.
        ty: String,
        /// Property.
        prop: String,
        /// Value given.
        value: u64,
        /// Largest value allowed.
        max: u64,
    },
    /// A required property was not given.
    #[error("Property '{ty}.{prop}' is required")]
    Missing {
        /// Device type.
        ty: String,
        /// Property.
        prop: String,
    },
    /// The same property twice in one definition.
    #[error("Property '{ty}.{prop}' given twice")]
    Duplicate {
        /// Device type.
        ty: String,
        /// Property.
        prop: String,
    },
}

/// A complete, validated set of property values for one device instance.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Props {
    values: BTreeMap<String, PropValue>,
}

impl Props {
    /// Validates `given` against `schema` for device type `ty`, filling in defaults.
    pub fn build<'a>(
        ty: &str,
        schema: &[PropSpec],
        given: impl IntoIterator<Item = (&'a str, RawValue<'a>)>,
    ) -> Result<Props, PropError> {
        let mut values = BTreeMap::new();
        for (name, raw) in given {
            let spec =
                schema
                    .iter()
                    .find(|s| s.name == name)
                    .ok_or_else(|| PropError::Unknown {
                        ty: ty.to_string(),
                        prop: name.to_string(),
                    })?;
            let value = spec.parse(ty, raw)?;
            if values.insert(name.to_string(), value).is_some() {
                return Err(PropError::Duplicate {
                    ty: ty.to_string(),
                    prop: name.to_string(),
                });
            }
        }
        for spec in schema {
            if values.contains_key(spec.name.as_ref()) {
                continue;
            }
            match &spec.default {
                Some(d) if d.is_empty() && spec.kind != PropKind::Str => {}
                Some(d) => {
                    let v = spec.parse(ty, RawValue::Str(d))?;
                    values.insert(spec.name.to_string(), v);
                }
                None => {
                    return Err(PropError::Missing {
                        ty: ty.to_string(),
                        prop: spec.name.to_string(),
                    });
                }
            }
        }
        Ok(Props { values })
    }

    /// The value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<&PropValue> {
        self.values.get(name)
    }

    /// All values, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &PropValue)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Sets an already validated value.
    pub fn set(&mut self, name: &str, value: PropValue) {
        self.values.insert(name.to_string(), value);
    }

    /// An integer or size property (0 if absent: schemas give defaults).
    pub fn u64(&self, name: &str) -> u64 {
        match self.values.get(name) {
            Some(PropValue::U64(v)) => *v,
            _ => 0,
        }
    }

    /// A boolean property (false if absent).
    pub fn bool(&self, name: &str) -> bool {
        matches!(self.values.get(name), Some(PropValue::Bool(true)))
    }

    /// A string-like property, `None` if absent or empty.
    pub fn str(&self, name: &str) -> Option<&str> {
        match self.values.get(name) {
            Some(PropValue::Str(s)) if !s.is_empty() => Some(s),
            _ => None,
        }
    }
}

/// Parses an unsigned integer: decimal, `0x` hex, `0o` octal or `0b` binary, `_` separators allowed.
pub fn parse_int(s: &str) -> Option<u64> {
    let s = s.trim();
    let clean: String = s.chars().filter(|&c| c != '_').collect();
    let (digits, radix) = if let Some(h) = clean.strip_prefix("0x").or(clean.strip_prefix("0X")) {
        (h, 16)
    } else if let Some(b) = clean.strip_prefix("0b") {
        (b, 2)
    } else if let Some(o) = clean.strip_prefix("0o") {
        (o, 8)
    } else {
        (clean.as_str(), 10)
    };
    if digits.is_empty() || digits.starts_with('+') {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

/// Parses a size: an integer optionally followed by `B`, `K`, `M`, `G`, `T`, `P` or `E`
/// (powers of 1024, case-insensitive, as QEMU's `qemu_strtosz`).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let last = s.chars().last()?;
    let shift = match last.to_ascii_uppercase() {
        'B' => 0,
        'K' => 10,
        'M' => 20,
        'G' => 30,
        'T' => 40,
        'P' => 50,
        'E' => 60,
        _ => return parse_int(s),
    };
    let num = parse_int(s.get(..s.len() - 1)?)?;
    num.checked_mul(1u64 << shift)
}

/// Parses a boolean as QEMU does: `on/off`, `true/false`, `yes/no`.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "on" | "true" | "yes" => Some(true),
        "off" | "false" | "no" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Vec<PropSpec> {
        vec![
            PropSpec::required("size", PropKind::Size, "bytes"),
            PropSpec::new("readonly", PropKind::Bool, "off", "read only"),
            PropSpec::new("irqs", PropKind::Int, "4", "lines").with_max(32),
            PropSpec::optional("chardev", PropKind::Chardev, "backend"),
        ]
    }

    #[test]
    fn test_sizes_and_ints_parse_like_qemu() {
        assert_eq!(parse_size("0x4000"), Some(0x4000));
        assert_eq!(parse_size("64K"), Some(65536));
        assert_eq!(parse_size("16m"), Some(16 << 20));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("32768"), Some(32768));
        assert_eq!(parse_size("K"), None);
        assert_eq!(parse_size("20E"), None, "overflow must be rejected");
        assert_eq!(parse_int("0b101"), Some(5));
        assert_eq!(parse_int("1_000"), Some(1000));
        assert_eq!(parse_int("-1"), None);
        assert_eq!(parse_int("0x"), None);
    }

    #[test]
    fn test_build_fills_defaults_and_checks_types() {
        let p =
            Props::build("mem", &schema(), [("size", RawValue::Str("64K"))]).expect("valid props");
        assert_eq!(p.u64("size"), 65536);
        assert!(!p.bool("readonly"));
        assert_eq!(p.u64("irqs"), 4);
        assert_eq!(p.str("chardev"), None);
    }

    #[test]
    fn test_build_errors_name_type_and_property() {
        let e = Props::build("mem", &schema(), [("sise", RawValue::Str("1"))]).unwrap_err();
        assert_eq!(e.to_string(), "Property 'mem.sise' not found");
        let e = Props::build(
            "mem",
            &schema(),
            [
                ("size", RawValue::Str("1")),
                ("readonly", RawValue::Str("maybe")),
            ],
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "Property 'mem.readonly' expects 'on' or 'off', not 'maybe'"
        );
        let e = Props::build("mem", &schema(), []).unwrap_err();
        assert_eq!(e.to_string(), "Property 'mem.size' is required");
        let e = Props::build(
            "mem",
            &schema(),
            [("size", RawValue::Int(1)), ("irqs", RawValue::Int(33))],
        )
        .unwrap_err();
        assert!(matches!(e, PropError::OutOfRange { .. }));
        let e = Props::build("mem", &schema(), [("size", RawValue::Int(-5))]).unwrap_err();
        assert!(matches!(e, PropError::BadValue { .. }));
    }
}
