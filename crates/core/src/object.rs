//! The object tree with QEMU's paths: `/machine`, `/machine/peripheral/<id>`,
//! `/machine/peripheral-anon/device[N]`, `/machine/unattached/device[N]`, harts at
//! `/machine/cpu[N]`. Paths that don't start with `/` are partial paths, resolved as QOM does:
//! they must match the end of exactly one object's path.

use std::collections::BTreeMap;

use thiserror::Error;

use crate::device::DeviceId;

/// What sits at a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectKind {
    /// A container (`/machine/peripheral`).
    Container,
    /// The machine object itself.
    Machine,
    /// A device.
    Device(DeviceId),
    /// A hart.
    Cpu(u32),
}

/// Errors resolving paths.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ObjectError {
    /// No such object (QEMU's `DeviceNotFound` wording).
    #[error("Device '{0}' not found")]
    NotFound(String),
    /// A partial path that matches several objects.
    #[error("Path '{0}' does not uniquely identify an object")]
    Ambiguous(String),
    /// An id already used.
    #[error("Duplicate device ID '{0}'")]
    DuplicateId(String),
    /// An id QEMU would not accept.
    #[error("Invalid device ID '{0}': use letters, digits, '-', '.', '_', starting with a letter")]
    BadId(String),
}

/// The tree. Containers are created implicitly for every parent path.
#[derive(Clone, Debug)]
pub struct ObjectTree {
    nodes: BTreeMap<String, ObjectKind>,
    unattached: u32,
    anon: u32,
}

impl Default for ObjectTree {
    fn default() -> Self {
        let mut nodes = BTreeMap::new();
        nodes.insert("/machine".to_string(), ObjectKind::Machine);
        for c in ["peripheral", "peripheral-anon", "unattached"] {
            nodes.insert(format!("/machine/{c}"), ObjectKind::Container);
        }
        ObjectTree {
            nodes,
            unattached: 0,
            anon: 0,
        }
    }
}

/// Checks an id with QEMU's rule (letter first, then letters, digits, `-`, `.`, `_`).
pub fn valid_id(id: &str) -> bool {
    let mut c = id.chars();
    c.next().is_some_and(|f| f.is_ascii_alphabetic())
        && c.all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '.' | '_'))
}

impl ObjectTree {
    /// A tree with `/machine` and its standard containers.
    pub fn new() -> ObjectTree {
        ObjectTree::default()
    }

    /// Adds a user device: `/machine/peripheral/<id>` or `/machine/peripheral-anon/device[N]`.
    pub fn add_peripheral(
        &mut self,
        id: Option<&str>,
        dev: DeviceId,
    ) -> Result<String, ObjectError> {
        let path = match id {
            Some(id) => {
                if !valid_id(id) {
                    return Err(ObjectError::BadId(id.to_string()));
                }
                format!("/machine/peripheral/{id}")
            }
            None => {
                let p = format!("/machine/peripheral-anon/device[{}]", self.anon);
                self.anon += 1;
                p
            }
        };
        self.insert(path, ObjectKind::Device(dev), id)
    }

    /// Adds a board device: `/machine/<name>` if named, else `/machine/unattached/device[N]`.
    pub fn add_board_device(
        &mut self,
        name: Option<&str>,
        dev: DeviceId,
    ) -> Result<String, ObjectError> {
        let path = match name {
            Some(n) => {
                if !valid_id(n) {
                    return Err(ObjectError::BadId(n.to_string()));
                }
                format!("/machine/{n}")
            }
            None => {
                let p = format!("/machine/unattached/device[{}]", self.unattached);
                self.unattached += 1;
                p
            }
        };
        self.insert(path, ObjectKind::Device(dev), name)
    }

    /// Adds hart `n` at `/machine/cpu[n]`.
    pub fn add_cpu(&mut self, n: u32) -> String {
        let p = format!("/machine/cpu[{n}]");
        self.nodes.insert(p.clone(), ObjectKind::Cpu(n));
        p
    }

    fn insert(
        &mut self,
        path: String,
        kind: ObjectKind,
        id: Option<&str>,
    ) -> Result<String, ObjectError> {
        if self.nodes.contains_key(&path) {
            return Err(ObjectError::DuplicateId(
                id.map_or_else(|| path.clone(), str::to_string),
            ));
        }
        self.nodes.insert(path.clone(), kind);
        Ok(path)
    }

    /// Removes an object.
    pub fn remove(&mut self, path: &str) {
        self.nodes.remove(path);
    }

    /// Resolves an absolute or partial path.
    pub fn resolve(&self, path: &str) -> Result<(String, ObjectKind), ObjectError> {
        let trimmed = path.trim_end_matches('/');
        if trimmed.starts_with('/') || trimmed.is_empty() {
            let p = if trimmed.is_empty() { "/" } else { trimmed };
            if p == "/" {
                return Ok(("/".to_string(), ObjectKind::Container));
            }
            return self
                .nodes
                .get(p)
                .map(|k| (p.to_string(), *k))
                .ok_or_else(|| ObjectError::NotFound(path.to_string()));
        }
        let suffix = format!("/{trimmed}");
        let mut hits = self.nodes.iter().filter(|(p, _)| p.ends_with(&suffix));
        match (hits.next(), hits.next()) {
            (Some((p, k)), None) => Ok((p.clone(), *k)),
            (Some(_), Some(_)) => Err(ObjectError::Ambiguous(path.to_string())),
            _ => Err(ObjectError::NotFound(path.to_string())),
        }
    }

    /// Direct children of `path` as (name, kind).
    pub fn children(&self, path: &str) -> Vec<(String, ObjectKind)> {
        let prefix = if path == "/" {
            "/".to_string()
        } else {
            format!("{}/", path.trim_end_matches('/'))
        };
        self.nodes
            .iter()
            .filter_map(|(p, k)| {
                let rest = p.strip_prefix(&prefix)?;
                (!rest.is_empty() && !rest.contains('/')).then(|| (rest.to_string(), *k))
            })
            .collect()
    }

    /// The path of device `dev`.
    pub fn path_of(&self, dev: DeviceId) -> Option<&str> {
        self.nodes
            .iter()
            .find(|(_, k)| **k == ObjectKind::Device(dev))
            .map(|(p, _)| p.as_str())
    }

    /// Every object, sorted by path.
    pub fn iter(&self) -> impl Iterator<Item = (&str, ObjectKind)> {
        self.nodes.iter().map(|(p, k)| (p.as_str(), *k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_paths_follow_qemu_layout() {
        let mut t = ObjectTree::new();
        assert_eq!(
            t.add_peripheral(Some("uart"), 0),
            Ok("/machine/peripheral/uart".into())
        );
        assert_eq!(
            t.add_peripheral(None, 1),
            Ok("/machine/peripheral-anon/device[0]".into())
        );
        assert_eq!(
            t.add_board_device(None, 2),
            Ok("/machine/unattached/device[0]".into())
        );
        assert_eq!(t.add_cpu(0), "/machine/cpu[0]");
        assert_eq!(
            t.add_peripheral(Some("uart"), 3),
            Err(ObjectError::DuplicateId("uart".into()))
        );
        assert_eq!(
            t.add_peripheral(Some("9x"), 3),
            Err(ObjectError::BadId("9x".into()))
        );
    }

    #[test]
    fn test_partial_paths_resolve_uniquely() {
        let mut t = ObjectTree::new();
        t.add_peripheral(Some("plic"), 0).expect("add");
        t.add_peripheral(Some("uart"), 1).expect("add");
        assert_eq!(
            t.resolve("plic"),
            Ok(("/machine/peripheral/plic".into(), ObjectKind::Device(0)))
        );
        assert_eq!(
            t.resolve("/machine/nothere"),
            Err(ObjectError::NotFound("/machine/nothere".into()))
        );
        t.add_board_device(Some("plic"), 2).expect("add");
        assert_eq!(
            t.resolve("plic"),
            Err(ObjectError::Ambiguous("plic".into()))
        );
        let names: Vec<String> = t
            .children("/machine/peripheral")
            .into_iter()
            .map(|c| c.0)
            .collect();
        assert_eq!(names, vec!["plic", "uart"]);
    }
}
