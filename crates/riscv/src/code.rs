//! Decode cache: pre-decoded instructions per 4 KiB physical code page, and the machine-wide
//! record of code pages (`CodePages`) through which stores from other harts and DMA invalidate it.
//!
//! A decoded page holds one `Insn` per 2-byte slot, decoded lazily the first time the slot is
//! executed. Slots are `Cell`s so a store through the hart's slow store path can invalidate the
//! slots it overwrote while the interpreter still holds a shared reference to the page.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use crate::insn::Packed;

/// Guest page size.
pub const PAGE_SIZE: u64 = 4096;
/// Page offset mask.
pub const PAGE_MASK: u64 = PAGE_SIZE - 1;
/// Instruction slots per page (one per 2 bytes).
pub const SLOTS: usize = (PAGE_SIZE / 2) as usize;
/// Decoded pages a hart keeps before it drops them all (24 KiB each).
const MAX_PAGES: usize = 4096;
/// Pending events per hart before they collapse into "flush everything".
const MAX_EVENTS: usize = 1024;

/// What another hart or a device did to code pages since this hart last looked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CodeEvent {
    /// Bytes `[paddr, paddr + len)` were written.
    Written { paddr: u64, len: u64 },
    /// Page `ppn` became a code page of some hart: stores to it must take the slow path.
    Added { ppn: u64 },
    /// Too many events: drop all decoded code and store TLB entries.
    Overflow,
}

#[derive(Debug, Default)]
struct CodePagesInner {
    /// Physical page number -> bitmask of registered harts (bit `slot % 64`) that decoded it.
    pages: HashMap<u64, u64>,
    /// Per registered hart: events it has not seen yet.
    queues: Vec<Vec<CodeEvent>>,
}

/// Shared (`Rc`) record of which physical pages hold pre-decoded code, so writes from other harts
/// and DMA invalidate the decode caches. One per machine; every hart of the machine shares it.
#[derive(Debug, Default)]
pub struct CodePages {
    inner: RefCell<CodePagesInner>,
}

impl CodePages {
    /// A new, empty record.
    pub fn new() -> Rc<CodePages> {
        Rc::new(CodePages::default())
    }

    /// Whether any hart has decoded code from the page holding `paddr`.
    pub fn is_code(&self, paddr: u64) -> bool {
        self.inner.borrow().pages.contains_key(&(paddr >> 12))
    }

    /// Note that `[paddr, paddr + len)` was written by a device (DMA) or by the platform. Harts
    /// that decoded code from those pages drop it before they next run.
    pub fn note_write(&self, paddr: u64, len: u64) {
        self.note_write_from(usize::MAX, paddr, len);
    }

    /// Number of pages some hart holds decoded code for.
    pub fn len(&self) -> usize {
        self.inner.borrow().pages.len()
    }

    /// Whether no hart holds decoded code.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn register(&self) -> usize {
        let mut inner = self.inner.borrow_mut();
        inner.queues.push(Vec::new());
        inner.queues.len() - 1
    }

    /// A write by hart `from` (or `usize::MAX` for devices): queue it for every other hart that
    /// decoded one of the written pages.
    pub(crate) fn note_write_from(&self, from: usize, paddr: u64, len: u64) {
        if len == 0 {
            return;
        }
        let mut inner = self.inner.borrow_mut();
        if inner.pages.is_empty() {
            return;
        }
        let first = paddr >> 12;
        let last = paddr.saturating_add(len - 1) >> 12;
        let mut mask = 0u64;
        // Bound the walk: a huge DMA range is checked against the set instead.
        if last - first < 64 {
            for ppn in first..=last {
                mask |= inner.pages.get(&ppn).copied().unwrap_or(0);
            }
        } else {
            for (ppn, m) in &inner.pages {
                if (first..=last).contains(ppn) {
                    mask |= *m;
                }
            }
        }
        if mask == 0 {
            return;
        }
        let own = if from == usize::MAX {
            0
        } else {
            1u64 << (from % 64)
        };
        for (slot, q) in inner.queues.iter_mut().enumerate() {
            let bit = 1u64 << (slot % 64);
            if mask & bit != 0 && (slot != from || own == 0) {
                push_event(q, CodeEvent::Written { paddr, len });
            }
        }
    }

    pub(crate) fn add_page(&self, from: usize, ppn: u64) {
        let mut inner = self.inner.borrow_mut();
        let bit = 1u64 << (from % 64);
        let entry = inner.pages.entry(ppn).or_insert(0);
        let was_code = *entry != 0;
        *entry |= bit;
        if !was_code {
            for (slot, q) in inner.queues.iter_mut().enumerate() {
                if slot != from {
                    push_event(q, CodeEvent::Added { ppn });
                }
            }
        }
    }

    pub(crate) fn remove_hart_pages(&self, from: usize) {
        let mut inner = self.inner.borrow_mut();
        let bit = 1u64 << (from % 64);
        inner.pages.retain(|_, m| {
            *m &= !bit;
            *m != 0
        });
    }

    pub(crate) fn has_events(&self, slot: usize) -> bool {
        self.inner
            .borrow()
            .queues
            .get(slot)
            .is_some_and(|q| !q.is_empty())
    }

    pub(crate) fn take_events(&self, slot: usize) -> Vec<CodeEvent> {
        let mut inner = self.inner.borrow_mut();
        inner
            .queues
            .get_mut(slot)
            .map(std::mem::take)
            .unwrap_or_default()
    }
}

fn push_event(q: &mut Vec<CodeEvent>, e: CodeEvent) {
    if q.len() >= MAX_EVENTS {
        q.clear();
        q.push(CodeEvent::Overflow);
    } else if q.last() != Some(&CodeEvent::Overflow) {
        q.push(e);
    }
}

/// The decoded instructions of one physical page.
pub(crate) struct DecodedPage {
    /// One slot per 2-byte offset.
    pub slots: Box<[Cell<Packed>; SLOTS]>,
    /// Host address of the page's bytes (valid for the life of the machine, per `Bus`).
    pub host: *const u8,
}

impl DecodedPage {
    fn new(host: *const u8) -> DecodedPage {
        let v: Vec<Cell<Packed>> = (0..SLOTS).map(|_| Cell::new(Packed::UNDECODED)).collect();
        let slots: Box<[Cell<Packed>; SLOTS]> = match v.into_boxed_slice().try_into() {
            Ok(b) => b,
            // The vector has exactly SLOTS elements.
            Err(_) => unreachable!(),
        };
        DecodedPage { slots, host }
    }

    /// Forget every decoded slot.
    pub fn clear(&self) {
        for s in self.slots.iter() {
            s.set(Packed::UNDECODED);
        }
    }

    /// Forget the slots whose instruction may overlap bytes `[off, off + len)` of the page.
    #[inline]
    pub fn invalidate(&self, off: u64, len: u64) {
        // A 4-byte instruction starting 2 bytes before `off` overlaps it too.
        let first = off.saturating_sub(2) >> 1;
        let last = (off + len.max(1) - 1).min(PAGE_MASK) >> 1;
        for i in first..=last {
            if let Some(s) = self.slots.get(i as usize) {
                s.set(Packed::UNDECODED);
            }
        }
    }
}

/// A hart's decoded pages, addressed by a small index that the fetch TLB caches.
#[derive(Default)]
pub(crate) struct CodeCache {
    pub pages: Vec<DecodedPage>,
    pub index: HashMap<u64, u32>,
}

impl CodeCache {
    #[inline(always)]
    pub fn page(&self, idx: u32) -> Option<&DecodedPage> {
        self.pages.get(idx as usize)
    }

    pub fn lookup(&self, ppn: u64) -> Option<u32> {
        self.index.get(&ppn).copied()
    }

    /// Whether the cache is full (the caller flushes it, and its TLB references, first).
    pub fn is_full(&self) -> bool {
        self.pages.len() >= MAX_PAGES
    }

    pub fn insert(&mut self, ppn: u64, host: *const u8) -> u32 {
        let idx = self.pages.len() as u32;
        self.pages.push(DecodedPage::new(host));
        self.index.insert(ppn, idx);
        idx
    }

    pub fn clear(&mut self) {
        self.pages.clear();
        self.index.clear();
    }

    /// Invalidate decoded slots overlapping `[paddr, paddr + len)`.
    pub fn invalidate_range(&self, paddr: u64, len: u64) {
        let end = paddr.saturating_add(len.max(1));
        if (end - paddr) / PAGE_SIZE > self.pages.len() as u64 {
            // A range larger than the cache: check each cached page instead of each page.
            for (&ppn, &idx) in &self.index {
                let base = ppn << 12;
                if base < end
                    && base.saturating_add(PAGE_SIZE) > paddr
                    && let Some(p) = self.page(idx)
                {
                    let lo = paddr.max(base);
                    let hi = end.min(base + PAGE_SIZE);
                    p.invalidate(lo - base, hi - lo);
                }
            }
            return;
        }
        let mut a = paddr;
        while a < end {
            let page_end = (a | PAGE_MASK).saturating_add(1).min(end);
            if let Some(p) = self.lookup(a >> 12).and_then(|i| self.page(i)) {
                p.invalidate(a & PAGE_MASK, page_end - a);
            }
            if page_end == a {
                break;
            }
            a = page_end;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::insn::{Insn, Op};

    #[test]
    fn test_code_pages_queue_write_for_other_harts_only() {
        let cp = CodePages::new();
        let a = cp.register();
        let b = cp.register();
        cp.add_page(a, 0x80000);
        assert!(cp.is_code(0x8000_0123));
        assert_eq!(cp.take_events(b), vec![CodeEvent::Added { ppn: 0x80000 }]);
        cp.note_write_from(a, 0x8000_0010, 4);
        assert!(!cp.has_events(a));
        assert!(!cp.has_events(b), "b holds no code from that page");
        cp.note_write(0x8000_0010, 4);
        assert_eq!(
            cp.take_events(a),
            vec![CodeEvent::Written {
                paddr: 0x8000_0010,
                len: 4
            }]
        );
    }

    #[test]
    fn test_invalidate_huge_range_is_bounded() {
        let mut c = CodeCache::default();
        let idx = c.insert(0x80000, core::ptr::null());
        if let Some(p) = c.page(idx) {
            for s in p.slots.iter() {
                s.set(Packed::pack(&Insn::new(Op::Addi, 0, 0, 0, 0, 4)));
            }
        }
        c.invalidate_range(0, u64::MAX);
        let op = c
            .page(idx)
            .and_then(|p| p.slots.first())
            .map(|s| s.get().op());
        assert_eq!(op, Some(Op::Undecoded));
    }

    #[test]
    fn test_decoded_page_invalidate_covers_preceding_slot() {
        let p = DecodedPage::new(core::ptr::null());
        for s in p.slots.iter() {
            s.set(Packed::pack(&Insn::new(Op::Addi, 0, 0, 0, 0, 4)));
        }
        p.invalidate(8, 1);
        let op = |i: usize| p.slots.get(i).map(|s| s.get().op());
        assert_eq!(op(3), Some(Op::Undecoded));
        assert_eq!(op(4), Some(Op::Undecoded));
        assert_eq!(op(5), Some(Op::Addi));
        assert_eq!(op(2), Some(Op::Addi));
    }
}
