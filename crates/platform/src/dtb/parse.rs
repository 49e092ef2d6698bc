//! The DTB reader for untrusted files (Devicetree Specification v0.4, §5.2 header, §5.3 memory
//! reservation block, §5.4 structure block, §5.5 strings block).
//!
//! Every read is bounds-checked and every size comes from the blob itself, so a malformed file
//! gives a [`DtbError`] with the byte offset of the defect, never a panic. Allocation is bounded
//! by the blob: each node or property takes at least 12 bytes of the structure block, values
//! are copies of bytes that are there, names are at most [`MAX_NAME_LEN`] bytes (so a tiny
//! property cannot make a long name be copied many times), and the walk is a loop with an
//! explicit stack capped at [`MAX_DEPTH`] (vm-fdt's own limit, so every tree read can be written).
// Reads guest, file, socket or plugin input: no panicking shortcuts (SECURITY.md, issue 9).
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::HashSet;
use std::fmt;

use thiserror::Error;

use super::{Dtb, Node};

/// `0xd00dfeed`.
pub const FDT_MAGIC: u32 = 0xd00d_feed;
/// Oldest version read: 16 is the first whose node names are not full paths.
pub const MIN_VERSION: u32 = 16;
/// Newest format this reader understands (`last_comp_version` must not be above it).
pub const MAX_COMP_VERSION: u32 = 17;
/// Deepest nesting accepted, the root being level 1.
pub const MAX_DEPTH: usize = 64;
/// Longest node or property name accepted.
pub const MAX_NAME_LEN: usize = 255;
/// Largest blob accepted.
pub const MAX_BLOB_SIZE: usize = 64 << 20;

const HEADER_V16: usize = 36;
const HEADER_V17: usize = 40;

const FDT_BEGIN_NODE: u32 = 1;
const FDT_END_NODE: u32 = 2;
const FDT_PROP: u32 = 3;
const FDT_NOP: u32 = 4;
const FDT_END: u32 = 9;

/// The blocks of a blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Block {
    /// The header.
    Header,
    /// The memory reservation block.
    MemoryReservations,
    /// The structure block.
    Structure,
    /// The strings block.
    Strings,
}

impl fmt::Display for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Block::Header => "header",
            Block::MemoryReservations => "memory reservation block",
            Block::Structure => "structure block",
            Block::Strings => "strings block",
        })
    }
}

/// A defect in a blob and where it is.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("malformed device tree blob at byte {offset:#x}: {kind}")]
pub struct DtbError {
    /// Byte offset in the blob.
    pub offset: usize,
    /// What is wrong.
    pub kind: DtbErrorKind,
}

/// What is wrong with a blob.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum DtbErrorKind {
    /// Fewer bytes than a header.
    #[error("the file is {len} bytes, too short for a header")]
    TruncatedHeader {
        /// File length.
        len: usize,
    },
    /// Not a DTB.
    #[error("bad magic {found:#010x} (a DTB starts with 0xd00dfeed)")]
    BadMagic {
        /// The first word.
        found: u32,
    },
    /// `totalsize` past the end of the file.
    #[error("totalsize {totalsize} is larger than the file ({len} bytes)")]
    TotalSizePastEnd {
        /// Header value.
        totalsize: u32,
        /// File length.
        len: usize,
    },
    /// `totalsize` smaller than the header itself.
    #[error("totalsize {0} is smaller than the header")]
    TotalSizeTooSmall(u32),
    /// Above [`MAX_BLOB_SIZE`].
    #[error("totalsize {0} is larger than the {MAX_BLOB_SIZE}-byte limit")]
    TooLarge(u32),
    /// `version` below 16.
    #[error("version {0} is too old (16 or later is needed)")]
    OldVersion(u32),
    /// `last_comp_version` above 17.
    #[error("the blob needs a version {0} reader (this one reads up to 17)")]
    IncompatibleVersion(u32),
    /// A block's offset is not aligned.
    #[error("{block} offset is not {align}-byte aligned")]
    Misaligned {
        /// Block.
        block: Block,
        /// Required alignment.
        align: usize,
    },
    /// A block extends past `totalsize`.
    #[error("{block} ({start:#x}..{end:#x}) extends past totalsize {totalsize:#x}")]
    BlockOutOfRange {
        /// Block.
        block: Block,
        /// First byte.
        start: u64,
        /// One past the last byte.
        end: u64,
        /// Header `totalsize`.
        totalsize: u32,
    },
    /// Two blocks share bytes.
    #[error("{a} overlaps {b}")]
    BlocksOverlap {
        /// One block.
        a: Block,
        /// The other.
        b: Block,
    },
    /// The reservation list has no (0, 0) entry before the end of the blob.
    #[error("memory reservation block has no terminating entry")]
    UnterminatedReservations,
    /// A token that is none of BEGIN_NODE, END_NODE, PROP, NOP, END.
    #[error("unknown token {0:#x}")]
    BadToken(u32),
    /// The structure block ends inside a token or a property header.
    #[error("structure block ends inside a token")]
    TruncatedToken,
    /// No NUL before the end of the structure block.
    #[error("node name is not NUL-terminated")]
    UnterminatedNodeName,
    /// Longer than [`MAX_NAME_LEN`].
    #[error("name is longer than {MAX_NAME_LEN} bytes")]
    NameTooLong,
    /// Not UTF-8.
    #[error("name is not valid UTF-8")]
    NameNotUtf8,
    /// A child with an empty name.
    #[error("node under '{0}' has an empty name")]
    EmptyNodeName(String),
    /// A node name with `/` in it.
    #[error("node name '{0}' contains '/'")]
    SlashInNodeName(String),
    /// The root node has a name.
    #[error("root node is named '{0}' (it must have an empty name)")]
    NamedRoot(String),
    /// Two siblings with one name.
    #[error("node '{0}' appears twice")]
    DuplicateNode(String),
    /// `nameoff` outside the strings block.
    #[error("property name offset {nameoff:#x} is outside the strings block ({size} bytes)")]
    NameOffsetOutOfRange {
        /// Header value.
        nameoff: u32,
        /// Strings block size.
        size: u32,
    },
    /// No NUL after a property name in the strings block.
    #[error("property name at strings offset {0:#x} is not NUL-terminated")]
    UnterminatedPropertyName(u32),
    /// An empty property name.
    #[error("property in node '{0}' has an empty name")]
    EmptyPropertyName(String),
    /// A property value running past the structure block.
    #[error("property '{name}' is {len} bytes long, past the end of the structure block")]
    PropertyPastEnd {
        /// Property.
        name: String,
        /// Its length field.
        len: u32,
    },
    /// A property outside any node.
    #[error("property outside any node")]
    PropertyOutsideNode,
    /// One property twice in a node.
    #[error("property '{name}' appears twice in node '{path}'")]
    DuplicateProperty {
        /// Node path.
        path: String,
        /// Property.
        name: String,
    },
    /// Deeper than [`MAX_DEPTH`].
    #[error("nodes nest deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// END_NODE with no node open.
    #[error("end of node without a node to end")]
    UnbalancedEndNode,
    /// A node still open where the structure block (or END) ends.
    #[error("node '{0}' is not closed")]
    UnclosedNode(String),
    /// A second node at the top level.
    #[error("a second root node")]
    SecondRoot,
    /// END before any node.
    #[error("the structure block has no root node")]
    NoRoot,
    /// The root was closed but no END token follows.
    #[error("the structure block has no END token")]
    MissingEnd,
}

fn be32(blob: &[u8], off: usize) -> Option<u32> {
    let b: [u8; 4] = blob.get(off..off.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_be_bytes(b))
}

fn be64(blob: &[u8], off: usize) -> Option<u64> {
    let b: [u8; 8] = blob.get(off..off.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_be_bytes(b))
}

fn align4(v: usize) -> Option<usize> {
    v.checked_next_multiple_of(4)
}

fn fail<T>(offset: usize, kind: DtbErrorKind) -> Result<T, DtbError> {
    Err(DtbError { offset, kind })
}

/// A name: at most [`MAX_NAME_LEN`] bytes before a NUL, UTF-8.
fn name_at(bytes: &[u8], base: usize, unterminated: DtbErrorKind) -> Result<&str, DtbError> {
    let window = bytes
        .get(..bytes.len().min(MAX_NAME_LEN + 1))
        .unwrap_or_default();
    let Some(nul) = window.iter().position(|&b| b == 0) else {
        let kind = if bytes.len() > MAX_NAME_LEN {
            DtbErrorKind::NameTooLong
        } else {
            unterminated
        };
        return fail(base, kind);
    };
    std::str::from_utf8(window.get(..nul).unwrap_or_default())
        .or_else(|_| fail(base, DtbErrorKind::NameNotUtf8))
}

struct Open {
    node: Node,
    path: String,
    props: HashSet<String>,
    children: HashSet<String>,
}

impl Open {
    fn new(name: &str, path: String) -> Open {
        Open {
            node: Node::new(name),
            path,
            props: HashSet::new(),
            children: HashSet::new(),
        }
    }
}

/// Where a block is.
#[derive(Clone, Copy)]
struct Span {
    block: Block,
    start: u64,
    end: u64,
}

/// Parses a DTB from an untrusted source.
pub fn parse(blob: &[u8]) -> Result<Dtb, DtbError> {
    use DtbErrorKind as K;
    let len = blob.len();
    let Some(magic) = be32(blob, 0) else {
        return fail(0, K::TruncatedHeader { len });
    };
    if magic != FDT_MAGIC {
        return fail(0, K::BadMagic { found: magic });
    }
    if len < HEADER_V17 {
        return fail(len, K::TruncatedHeader { len });
    }
    let field = |i: usize| be32(blob, i * 4).unwrap_or(0);
    let totalsize = field(1);
    let (off_struct, off_strings, off_rsv) = (field(2), field(3), field(4));
    let (version, last_comp) = (field(5), field(6));
    let boot_cpuid_phys = field(7);
    let size_strings = field(8);
    if version < MIN_VERSION {
        return fail(20, K::OldVersion(version));
    }
    if last_comp > MAX_COMP_VERSION {
        return fail(24, K::IncompatibleVersion(last_comp));
    }
    let header_len = if version >= 17 {
        HEADER_V17
    } else {
        HEADER_V16
    };
    let total = totalsize as usize;
    if total > MAX_BLOB_SIZE {
        return fail(4, K::TooLarge(totalsize));
    }
    if total > len {
        return fail(4, K::TotalSizePastEnd { totalsize, len });
    }
    if total < header_len {
        return fail(4, K::TotalSizeTooSmall(totalsize));
    }
    let blob = blob.get(..total).unwrap_or_default();
    if !off_rsv.is_multiple_of(8) {
        return fail(
            16,
            K::Misaligned {
                block: Block::MemoryReservations,
                align: 8,
            },
        );
    }
    if !off_struct.is_multiple_of(4) {
        return fail(
            8,
            K::Misaligned {
                block: Block::Structure,
                align: 4,
            },
        );
    }
    let in_range =
        |field_off: usize, block: Block, start: u32, size: u64| -> Result<Span, DtbError> {
            let start = u64::from(start);
            let end = start.saturating_add(size);
            if end > u64::from(totalsize) {
                return fail(
                    field_off,
                    K::BlockOutOfRange {
                        block,
                        start,
                        end,
                        totalsize,
                    },
                );
            }
            Ok(Span { block, start, end })
        };

    // Version 16 has no size_dt_struct: the block runs to the next block or the end.
    let size_struct = if version >= 17 {
        u64::from(field(9))
    } else {
        let next = [off_rsv, off_strings, totalsize]
            .into_iter()
            .filter(|&o| o > off_struct)
            .min()
            .unwrap_or(totalsize);
        u64::from(next.saturating_sub(off_struct))
    };
    let strings = in_range(12, Block::Strings, off_strings, u64::from(size_strings))?;
    let structure = in_range(8, Block::Structure, off_struct, size_struct)?;

    // The reservation list ends with a (0, 0) entry; it is as long as that says.
    let mut reserved = Vec::new();
    let mut at = off_rsv as usize;
    loop {
        let (Some(addr), Some(size)) = (
            be64(blob, at),
            at.checked_add(8).and_then(|o| be64(blob, o)),
        ) else {
            return fail(at, K::UnterminatedReservations);
        };
        at = at.saturating_add(16);
        if addr == 0 && size == 0 {
            break;
        }
        reserved.push((addr, size));
    }
    let rsv = Span {
        block: Block::MemoryReservations,
        start: u64::from(off_rsv),
        end: at as u64,
    };
    let header = Span {
        block: Block::Header,
        start: 0,
        end: header_len as u64,
    };
    let spans = [header, rsv, structure, strings];
    for (i, a) in spans.iter().enumerate() {
        for b in spans.iter().skip(i + 1) {
            let empty = a.start == a.end || b.start == b.end;
            if !empty && a.start < b.end && b.start < a.end {
                return fail(
                    a.start.max(b.start) as usize,
                    K::BlocksOverlap {
                        a: a.block,
                        b: b.block,
                    },
                );
            }
        }
    }

    let strings_block = blob
        .get(strings.start as usize..strings.end as usize)
        .unwrap_or_default();
    let root = walk(
        blob,
        structure.start as usize,
        structure.end as usize,
        strings_block,
        strings.start as usize,
    )?;
    Ok(Dtb {
        root,
        reserved,
        boot_cpuid_phys,
    })
}

/// Walks the structure block `[start, end)` and builds the tree.
fn walk(
    blob: &[u8],
    start: usize,
    end: usize,
    strings: &[u8],
    strings_off: usize,
) -> Result<Node, DtbError> {
    use DtbErrorKind as K;
    let block = blob.get(..end).unwrap_or_default();
    let mut stack: Vec<Open> = Vec::new();
    let mut root: Option<Node> = None;
    let mut pos = start;
    loop {
        let Some(token) = be32(block, pos) else {
            let kind = if pos < end {
                K::TruncatedToken
            } else if let Some(open) = stack.last() {
                K::UnclosedNode(open.path.clone())
            } else if root.is_some() {
                K::MissingEnd
            } else {
                K::NoRoot
            };
            return fail(pos.min(end), kind);
        };
        let token_at = pos;
        pos = pos.saturating_add(4);
        match token {
            FDT_NOP => {}
            FDT_BEGIN_NODE => {
                let rest = block.get(pos..).unwrap_or_default();
                let name = name_at(rest, pos, K::UnterminatedNodeName)?;
                let next = align4(pos.saturating_add(name.len()).saturating_add(1));
                if root.is_some() {
                    return fail(token_at, K::SecondRoot);
                }
                let depth = stack.len();
                match stack.last_mut() {
                    None => {
                        if !name.is_empty() {
                            return fail(pos, K::NamedRoot(name.to_string()));
                        }
                        stack.push(Open::new("", "/".to_string()));
                    }
                    Some(parent) => {
                        if depth >= MAX_DEPTH {
                            return fail(token_at, K::TooDeep);
                        }
                        if name.is_empty() {
                            return fail(pos, K::EmptyNodeName(parent.path.clone()));
                        }
                        if name.contains('/') {
                            return fail(pos, K::SlashInNodeName(name.to_string()));
                        }
                        let path = super::join_path(&parent.path, name);
                        if !parent.children.insert(name.to_string()) {
                            return fail(pos, K::DuplicateNode(path));
                        }
                        stack.push(Open::new(name, path));
                    }
                }
                pos = next.unwrap_or(usize::MAX);
            }
            FDT_END_NODE => {
                let Some(done) = stack.pop() else {
                    return fail(token_at, K::UnbalancedEndNode);
                };
                match stack.last_mut() {
                    Some(parent) => parent.node.children.push(done.node),
                    None => root = Some(done.node),
                }
            }
            FDT_PROP => {
                let (Some(plen), Some(nameoff)) =
                    (be32(block, pos), be32(block, pos.saturating_add(4)))
                else {
                    return fail(token_at, K::TruncatedToken);
                };
                let Some(open) = stack.last_mut() else {
                    return fail(token_at, K::PropertyOutsideNode);
                };
                let Some(name_bytes) = strings
                    .get(nameoff as usize..)
                    .filter(|_| (nameoff as usize) < strings.len())
                else {
                    return fail(
                        pos.saturating_add(4),
                        K::NameOffsetOutOfRange {
                            nameoff,
                            size: strings.len() as u32,
                        },
                    );
                };
                let name_pos = strings_off.saturating_add(nameoff as usize);
                let name = name_at(name_bytes, name_pos, K::UnterminatedPropertyName(nameoff))?;
                if name.is_empty() {
                    return fail(name_pos, K::EmptyPropertyName(open.path.clone()));
                }
                let value_at = pos.saturating_add(8);
                let value = value_at
                    .checked_add(plen as usize)
                    .and_then(|e| block.get(value_at..e))
                    .filter(|_| value_at <= end);
                let Some(value) = value else {
                    return fail(
                        pos,
                        K::PropertyPastEnd {
                            name: name.to_string(),
                            len: plen,
                        },
                    );
                };
                if !open.props.insert(name.to_string()) {
                    return fail(
                        token_at,
                        K::DuplicateProperty {
                            path: open.path.clone(),
                            name: name.to_string(),
                        },
                    );
                }
                open.node.props.push((name.to_string(), value.to_vec()));
                pos = align4(value_at.saturating_add(value.len())).unwrap_or(usize::MAX);
            }
            FDT_END => {
                if let Some(open) = stack.last() {
                    return fail(token_at, K::UnclosedNode(open.path.clone()));
                }
                // Bytes after END inside the block are ignored, as libfdt does.
                return match root {
                    Some(r) => Ok(r),
                    None => fail(token_at, K::NoRoot),
                };
            }
            other => return fail(token_at, K::BadToken(other)),
        }
    }
}
