//! The virtual clock and the timer queue of the main loop.
//!
//! Virtual time is nanoseconds since machine start. It follows host time (minus time spent
//! stopped) or, with `-icount shift=N`, is derived from retired instructions: each instruction
//! is 2^N ns, which makes runs repeat exactly. Devices schedule timers by (owner, token); the
//! main loop runs harts until the next deadline and then fires what expired.

use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::device::DeviceId;

/// Nanoseconds of virtual time.
pub type Nanos = u64;

/// How virtual time advances.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClockMode {
    /// Follows the host's monotonic clock while running.
    Host,
    /// Advances 2^shift ns per retired instruction, and jumps to the next deadline when all
    /// harts wait for interrupts.
    Icount {
        /// QEMU's `-icount shift=N`.
        shift: u32,
    },
}

/// The machine's virtual clock. Shared (`Rc`) by the main loop, devices and harts.
#[derive(Debug)]
pub struct Clock {
    mode: ClockMode,
    origin: Instant,
    /// Host mode: ns to subtract from host elapsed (time spent stopped).
    paused_total: Cell<Nanos>,
    stopped_at: Cell<Option<Nanos>>,
    /// Icount mode: virtual ns accumulated.
    icount_ns: Cell<Nanos>,
    /// Host mode: ns added to host elapsed (a snapshot restored a later time).
    base: Cell<Nanos>,
    /// Host mode: how fast the harts have been retiring instructions (host ps per
    /// instruction, a running average), to end slices near timer deadlines.
    ps_per_insn: Cell<u64>,
}

/// The pace assumed before any slice was measured: 400 MIPS.
const INITIAL_PS_PER_INSN: u64 = 2_500;

impl Clock {
    /// A clock starting at 0 now.
    pub fn new(mode: ClockMode) -> Rc<Clock> {
        Rc::new(Clock {
            mode,
            origin: Instant::now(),
            paused_total: Cell::new(0),
            stopped_at: Cell::new(None),
            icount_ns: Cell::new(0),
            base: Cell::new(0),
            ps_per_insn: Cell::new(INITIAL_PS_PER_INSN),
        })
    }

    /// The clock's mode.
    pub fn mode(&self) -> ClockMode {
        self.mode
    }

    fn host_elapsed(&self) -> Nanos {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Current virtual time.
    pub fn now(&self) -> Nanos {
        match self.mode {
            ClockMode::Host => {
                let host = self.stopped_at.get().unwrap_or_else(|| self.host_elapsed());
                host.saturating_add(self.base.get())
                    .saturating_sub(self.paused_total.get())
            }
            ClockMode::Icount { .. } => self.icount_ns.get(),
        }
    }

    /// Current time in ticks of a `freq_hz` timebase (e.g. 10 MHz for mtime).
    pub fn ticks(&self, freq_hz: u64) -> u64 {
        ns_to_ticks(self.now(), freq_hz)
    }

    /// Accounts `n` retired instructions (icount mode only).
    pub fn retire(&self, n: u64) {
        if let ClockMode::Icount { shift } = self.mode {
            let add = n.checked_shl(shift).unwrap_or(u64::MAX);
            self.icount_ns.set(self.icount_ns.get().saturating_add(add));
        }
    }

    /// Sets icount time to `t` (never backwards). The main loop calls it with
    /// slice start + instructions retired so far, so an MMIO access mid-slice sees exact time.
    pub fn set_icount_time(&self, t: Nanos) {
        if matches!(self.mode, ClockMode::Icount { .. }) && t > self.icount_ns.get() {
            self.icount_ns.set(t);
        }
    }

    /// Virtual ns that `n` instructions take (icount), or `None` in host mode.
    pub fn insns_to_ns(&self, n: u64) -> Option<Nanos> {
        match self.mode {
            ClockMode::Icount { shift } => Some(n.checked_shl(shift).unwrap_or(u64::MAX)),
            ClockMode::Host => None,
        }
    }

    /// Instructions until `deadline` in icount mode (at least 1), or `None` in host mode.
    pub fn insns_until(&self, deadline: Nanos) -> Option<u64> {
        match self.mode {
            ClockMode::Icount { shift } => {
                let left = deadline.saturating_sub(self.now());
                Some((left >> shift).max(1))
            }
            ClockMode::Host => None,
        }
    }

    /// Instructions a hart can run before `deadline` (at least 1): exact under icount, in host
    /// mode estimated from the pace of recent runs ([`Clock::note_run`]).
    pub fn estimate_insns_until(&self, deadline: Nanos) -> u64 {
        if let Some(n) = self.insns_until(deadline) {
            return n;
        }
        let left = u128::from(deadline.saturating_sub(self.now()));
        let n = left * 1000 / u128::from(self.ps_per_insn.get().max(1));
        u64::try_from(n).unwrap_or(u64::MAX).max(1)
    }

    /// The virtual ns `n` instructions take: exact under icount, estimated in host mode.
    pub fn estimate_insns_to_ns(&self, n: u64) -> Nanos {
        if let Some(ns) = self.insns_to_ns(n) {
            return ns;
        }
        let ns = u128::from(n) * u128::from(self.ps_per_insn.get()) / 1000;
        u64::try_from(ns).unwrap_or(u64::MAX)
    }

    /// Host mode: a hart retired `insns` instructions in `ns` of host time; updates the pace
    /// estimate (runs too short to say much are ignored).
    pub fn note_run(&self, insns: u64, ns: Nanos) {
        if self.mode != ClockMode::Host || insns < 1_000 || ns == 0 {
            return;
        }
        let ps = u64::try_from(u128::from(ns) * 1000 / u128::from(insns)).unwrap_or(u64::MAX);
        let old = self.ps_per_insn.get();
        // A running average over about four runs; bounded so one odd run (the host
        // descheduled us) cannot make the estimate absurd.
        let avg = (old.saturating_mul(3).saturating_add(ps.min(1_000_000))) / 4;
        self.ps_per_insn.set(avg.max(1));
    }

    /// Moves icount time forward to `t` when all harts are idle (QEMU's icount warp).
    pub fn warp_to(&self, t: Nanos) {
        if matches!(self.mode, ClockMode::Icount { .. }) && t > self.icount_ns.get() {
            self.icount_ns.set(t);
        }
    }

    /// Sets virtual time to `t` (snapshot restore), forwards or backwards, in either mode.
    pub fn restore_time(&self, t: Nanos) {
        match self.mode {
            ClockMode::Icount { .. } => self.icount_ns.set(t),
            ClockMode::Host => {
                let now = self.now();
                if t <= now {
                    self.paused_total
                        .set(self.paused_total.get().saturating_add(now - t));
                } else {
                    self.base.set(self.base.get().saturating_add(t - now));
                }
            }
        }
    }

    /// Stops virtual time (QMP `stop`); harmless if already stopped.
    pub fn pause(&self) {
        if self.stopped_at.get().is_none() {
            self.stopped_at.set(Some(self.host_elapsed()));
        }
    }

    /// Resumes virtual time (QMP `cont`).
    pub fn resume(&self) {
        if let Some(at) = self.stopped_at.take() {
            let gap = self.host_elapsed().saturating_sub(at);
            self.paused_total
                .set(self.paused_total.get().saturating_add(gap));
        }
    }
}

/// Converts ns to ticks of `freq_hz` without overflow for any realistic run length.
pub fn ns_to_ticks(ns: Nanos, freq_hz: u64) -> u64 {
    let t = u128::from(ns) * u128::from(freq_hz) / 1_000_000_000;
    u64::try_from(t).unwrap_or(u64::MAX)
}

/// Converts ticks of `freq_hz` to ns, rounding up so a deadline is never early.
pub fn ticks_to_ns(ticks: u64, freq_hz: u64) -> Nanos {
    if freq_hz == 0 {
        return u64::MAX;
    }
    let ns = (u128::from(ticks) * 1_000_000_000).div_ceil(u128::from(freq_hz));
    u64::try_from(ns).unwrap_or(u64::MAX)
}

/// Who a timer belongs to and which of its timers it is.
pub type TimerKey = (DeviceId, u64);

/// All pending timers of a machine. Rescheduling a key replaces its earlier deadline.
#[derive(Debug, Default)]
pub struct TimerQueue {
    heap: RefCell<BinaryHeap<Reverse<(Nanos, u64, TimerKey)>>>,
    /// Live generation of each key; heap entries with an older generation are stale.
    live: RefCell<HashMap<TimerKey, u64>>,
    seq: Cell<u64>,
    /// Notifications posted by I/O threads, delivered on the main loop.
    inbox: Arc<Inbox>,
    /// While a hart runs a slice: when it ends in virtual time (exact under `-icount`).
    /// A timer armed for earlier (a guest writing mtimecmp) kicks the hart so the slice is cut
    /// at the deadline instead of firing the timer late. 0 when no such slice runs.
    slice_end: Cell<Nanos>,
    /// The kick was raised for a timer (not for a notification).
    timer_kick: Cell<bool>,
}

/// Wakes the main loop when an I/O thread posts a notification while it sleeps.
pub type Waker = Box<dyn Fn() + Send + Sync>;

/// Notifications from I/O threads (a vfio eventfd fired, a server replied) waiting for the main
/// loop. Lock-free to test when empty, which is the hot path: the loop looks every slice.
#[derive(Default)]
struct Inbox {
    /// Some device holds a notifier (so the main loop needs a waker).
    used: AtomicBool,
    /// Something is queued, or a timer is due inside the running slice; shared with the harts
    /// so they stop early (`Hart::set_kick`).
    any: Arc<AtomicBool>,
    items: Mutex<Vec<TimerKey>>,
    waker: Mutex<Option<Waker>>,
}

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox")
            .field("any", &self.any.load(Ordering::Relaxed))
            .finish()
    }
}

impl Inbox {
    fn post(&self, key: TimerKey) {
        match self.items.lock() {
            Ok(mut v) => v.push(key),
            Err(p) => p.into_inner().push(key),
        }
        // Wake the loop only on the empty -> non-empty edge: one wake-up per batch.
        if !self.any.swap(true, Ordering::AcqRel) {
            let waker = match self.waker.lock() {
                Ok(w) => w,
                Err(p) => p.into_inner(),
            };
            if let Some(w) = waker.as_ref() {
                w();
            }
        }
    }

    fn take(&self) -> Vec<TimerKey> {
        if !self.any.load(Ordering::Acquire) {
            return Vec::new();
        }
        self.any.store(false, Ordering::Release);
        match self.items.lock() {
            Ok(mut v) => std::mem::take(&mut *v),
            Err(p) => std::mem::take(&mut *p.into_inner()),
        }
    }
}

/// Lets an I/O thread make the main loop call a device's `notify(token)`. `Send + Sync`, cheap
/// to clone; notifications posted for a removed device are dropped.
#[derive(Clone, Debug)]
pub struct Notifier {
    inbox: Arc<Inbox>,
    owner: DeviceId,
}

impl Notifier {
    /// Asks the main loop to call the device's `notify(token)` soon.
    pub fn notify(&self, token: u64) {
        self.inbox.post((self.owner, token));
    }
}

impl TimerQueue {
    /// An empty queue.
    pub fn new() -> Rc<TimerQueue> {
        Rc::new(TimerQueue::default())
    }

    /// Arms `key` to fire at `deadline`, replacing an earlier deadline.
    pub fn schedule(&self, key: TimerKey, deadline: Nanos) {
        if deadline < self.slice_end.get() {
            // Due inside the running slice: end it early (see `begin_slice`).
            self.timer_kick.set(true);
            self.inbox.any.store(true, Ordering::Release);
        }
        let seq = self.seq.get().wrapping_add(1);
        self.seq.set(seq);
        self.live.borrow_mut().insert(key, seq);
        let mut heap = self.heap.borrow_mut();
        heap.push(Reverse((deadline, seq, key)));
        // Rescheduling leaves the old entry behind until it reaches the top. A guest that
        // reprograms a far deadline in a loop (mtimecmp) would grow the heap without bound:
        // drop the stale entries once they outnumber the live ones (amortised O(1)).
        let live = self.live.borrow();
        if heap.len() > 2 * live.len() + 64 {
            heap.retain(|Reverse((_, seq, key))| live.get(key) == Some(seq));
        }
    }

    /// Entries in the heap, live or stale (tests and diagnostics: it stays within a constant
    /// factor of the live timers).
    pub fn heap_len(&self) -> usize {
        self.heap.borrow().len()
    }

    /// Disarms `key`.
    pub fn cancel(&self, key: TimerKey) {
        self.live.borrow_mut().remove(&key);
    }

    /// Disarms every timer of `owner` (device removal).
    pub fn cancel_owner(&self, owner: DeviceId) {
        self.live.borrow_mut().retain(|k, _| k.0 != owner);
    }

    /// Whether `key` is armed.
    pub fn is_armed(&self, key: TimerKey) -> bool {
        self.live.borrow().contains_key(&key)
    }

    /// The earliest live deadline.
    pub fn next_deadline(&self) -> Option<Nanos> {
        let mut heap = self.heap.borrow_mut();
        let live = self.live.borrow();
        while let Some(Reverse((deadline, seq, key))) = heap.peek().copied() {
            if live.get(&key) == Some(&seq) {
                return Some(deadline);
            }
            heap.pop();
        }
        None
    }

    /// Every armed timer as (deadline, key), in the order they were armed (snapshots).
    pub fn entries(&self) -> Vec<(Nanos, TimerKey)> {
        let live = self.live.borrow();
        let mut v: Vec<(u64, Nanos, TimerKey)> = self
            .heap
            .borrow()
            .iter()
            .filter(|Reverse((_, seq, key))| live.get(key) == Some(seq))
            .map(|Reverse((d, seq, key))| (*seq, *d, *key))
            .collect();
        v.sort_unstable();
        v.into_iter().map(|(_, d, k)| (d, k)).collect()
    }

    /// Replaces every timer with `entries` (as [`TimerQueue::entries`] returned them).
    pub fn restore(&self, entries: &[(Nanos, TimerKey)]) {
        self.heap.borrow_mut().clear();
        self.live.borrow_mut().clear();
        for (d, k) in entries {
            self.schedule(*k, *d);
        }
    }

    /// Installs what wakes the main loop when a notification arrives while it sleeps (it sends
    /// the loop an event). Without one, notifications wait for the next loop iteration.
    pub fn set_waker(&self, waker: Waker) {
        match self.inbox.waker.lock() {
            Ok(mut w) => *w = Some(waker),
            Err(p) => *p.into_inner() = Some(waker),
        }
    }

    /// The flag that is set while notifications wait: harts given it (`Hart::set_kick`)
    /// return early so the main loop delivers them without waiting for the slice to end.
    pub fn pending_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.inbox.any)
    }

    /// A hart is about to run a slice that ends at virtual time `end` (exact under `-icount`,
    /// estimated from the harts' pace in host mode): until [`TimerQueue::end_slice`], arming a timer due before `end` raises
    /// the harts' kick flag ([`TimerQueue::pending_flag`]), so the hart leaves at its next
    /// block boundary and the main loop can cut the next slice at the deadline, as QEMU's
    /// icount does. A kick left over from a timer is cleared here (the caller computes the
    /// new slice from the timers); one for a waiting notification stays.
    pub fn begin_slice(&self, end: Nanos) {
        self.slice_end.set(end);
        if self.timer_kick.replace(false) {
            self.inbox.any.store(false, Ordering::Release);
            // A notification posted meanwhile still needs its kick (post pushes, then sets).
            let waiting = match self.inbox.items.lock() {
                Ok(v) => !v.is_empty(),
                Err(p) => !p.into_inner().is_empty(),
            };
            if waiting {
                self.inbox.any.store(true, Ordering::Release);
            }
        }
    }

    /// The slice [`TimerQueue::begin_slice`] announced is over.
    pub fn end_slice(&self) {
        self.slice_end.set(0);
    }

    /// Whether any device asked for a notifier: only then does the main loop need a waker.
    pub fn has_notifiers(&self) -> bool {
        self.inbox.used.load(Ordering::Relaxed)
    }

    /// Takes every notification posted since the last call, oldest first.
    pub fn take_notifications(&self) -> Vec<TimerKey> {
        self.inbox.take()
    }

    /// Removes and returns one timer that expired at or before `now`, earliest first.
    pub fn pop_expired(&self, now: Nanos) -> Option<TimerKey> {
        // next_deadline() drops stale entries, so the top of the heap is the live one.
        let deadline = self.next_deadline()?;
        if deadline > now {
            return None;
        }
        let Reverse((_, _, key)) = self.heap.borrow_mut().pop()?;
        self.live.borrow_mut().remove(&key);
        Some(key)
    }
}

/// A device's handle on the timer queue: it can only touch its own timers.
#[derive(Clone, Debug)]
pub struct TimerHandle {
    queue: Rc<TimerQueue>,
    clock: Rc<Clock>,
    owner: DeviceId,
}

impl TimerHandle {
    /// A handle for `owner`.
    pub fn new(queue: Rc<TimerQueue>, clock: Rc<Clock>, owner: DeviceId) -> TimerHandle {
        TimerHandle {
            queue,
            clock,
            owner,
        }
    }

    /// Arms timer `token` at absolute virtual time `deadline`; the device's `timer(token)` runs
    /// then.
    pub fn schedule_at(&self, token: u64, deadline: Nanos) {
        self.queue.schedule((self.owner, token), deadline);
    }

    /// Arms timer `token` `delay` ns from now.
    pub fn schedule_in(&self, token: u64, delay: Nanos) {
        self.schedule_at(token, self.clock.now().saturating_add(delay));
    }

    /// Disarms timer `token`.
    pub fn cancel(&self, token: u64) {
        self.queue.cancel((self.owner, token));
    }

    /// Whether timer `token` is armed.
    pub fn is_armed(&self, token: u64) -> bool {
        self.queue.is_armed((self.owner, token))
    }

    /// The clock, for reading virtual time.
    pub fn clock(&self) -> &Rc<Clock> {
        &self.clock
    }

    /// A handle an I/O thread can use to make the main loop call the device's `notify`.
    pub fn notifier(&self) -> Notifier {
        self.queue.inbox.used.store(true, Ordering::Relaxed);
        Notifier {
            inbox: Arc::clone(&self.queue.inbox),
            owner: self.owner,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_rescheduling_in_a_loop_keeps_the_heap_bounded() {
        let q = TimerQueue::new();
        q.schedule((9, 9), 5);
        for i in 0..100_000u64 {
            q.schedule((1, 0), (1 << 50) + i);
        }
        assert!(q.heap_len() <= 2 * 2 + 64 + 1, "heap {}", q.heap_len());
        assert_eq!(q.next_deadline(), Some(5));
        assert_eq!(q.pop_expired(5), Some((9, 9)));
        assert_eq!(q.next_deadline(), Some((1 << 50) + 99_999));
    }

    #[test]
    fn test_notifications_from_threads_arrive_in_order_and_wake_once_per_batch() {
        let q = TimerQueue::new();
        let wakes = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let w = Arc::clone(&wakes);
        q.set_waker(Box::new(move || {
            w.fetch_add(1, Ordering::SeqCst);
        }));
        let h = TimerHandle::new(Rc::clone(&q), Clock::new(ClockMode::Host), 7);
        assert!(!q.has_notifiers());
        let n = h.notifier();
        assert!(q.has_notifiers());
        assert!(q.take_notifications().is_empty());
        std::thread::spawn(move || {
            n.notify(1);
            n.notify(2);
        })
        .join()
        .expect("thread");
        assert_eq!(wakes.load(Ordering::SeqCst), 1);
        assert_eq!(q.take_notifications(), vec![(7, 1), (7, 2)]);
        assert!(q.take_notifications().is_empty());
        h.notifier().notify(3);
        assert_eq!(wakes.load(Ordering::SeqCst), 2);
        assert_eq!(q.take_notifications(), vec![(7, 3)]);
    }

    #[test]
    fn test_timer_queue_reschedule_replaces_deadline() {
        let q = TimerQueue::new();
        q.schedule((1, 0), 100);
        q.schedule((2, 0), 50);
        q.schedule((1, 0), 10);
        assert_eq!(q.next_deadline(), Some(10));
        assert_eq!(q.pop_expired(60), Some((1, 0)));
        assert_eq!(q.pop_expired(60), Some((2, 0)));
        assert_eq!(q.pop_expired(1000), None, "the 100 ns entry was replaced");
    }

    #[test]
    fn test_timer_armed_inside_the_running_slice_kicks_the_hart() {
        let q = TimerQueue::new();
        let kick = q.pending_flag();
        q.schedule((1, 0), 500);
        assert!(!kick.load(Ordering::SeqCst), "no slice runs: no kick");
        q.begin_slice(1000);
        q.schedule((1, 1), 2000);
        assert!(!kick.load(Ordering::SeqCst), "due after the slice: no kick");
        q.schedule((1, 2), 999);
        assert!(kick.load(Ordering::SeqCst), "due inside the slice: kick");
        q.end_slice();
        // The next slice is sized from the timers: the timer's kick is cleared...
        q.begin_slice(1500);
        assert!(!kick.load(Ordering::SeqCst));
        q.end_slice();
        // ...but a kick for a waiting notification is not.
        let h = TimerHandle::new(Rc::clone(&q), Clock::new(ClockMode::Icount { shift: 0 }), 7);
        q.begin_slice(1000);
        q.schedule((1, 3), 10);
        h.notifier().notify(1);
        q.end_slice();
        q.begin_slice(2000);
        assert!(kick.load(Ordering::SeqCst), "the notification still waits");
        assert_eq!(q.take_notifications(), vec![(7, 1)]);
        assert!(!kick.load(Ordering::SeqCst));
    }

    #[test]
    fn test_host_pace_estimate_follows_measured_runs() {
        let c = Clock::new(ClockMode::Host);
        // Before any run: 400 MIPS.
        assert_eq!(c.estimate_insns_to_ns(4_000), 10_000);
        // Runs at 100 MIPS (10 ns each) pull the estimate there.
        for _ in 0..40 {
            c.note_run(100_000, 1_000_000);
        }
        let ns = c.estimate_insns_to_ns(1_000);
        assert!((9_900..=10_000).contains(&ns), "{ns}");
        let far = c.now() + 1_000_000;
        let n = c.estimate_insns_until(far);
        assert!((99_000..=100_500).contains(&n), "{n}");
        // Too short to count, or absurd: ignored or bounded.
        c.note_run(10, 1_000_000_000);
        assert_eq!(c.estimate_insns_to_ns(1_000), ns);
        c.note_run(1_000, u64::MAX);
        assert!(c.estimate_insns_to_ns(1) <= 1_000_000);
        // A deadline in the past still allows one instruction.
        assert_eq!(c.estimate_insns_until(0), 1);
        // Icount: exact, and runs do not change it.
        let i = Clock::new(ClockMode::Icount { shift: 2 });
        i.note_run(1_000, 1);
        assert_eq!(i.estimate_insns_to_ns(10), 40);
        assert_eq!(i.estimate_insns_until(400), 100);
    }

    #[test]
    fn test_timer_queue_cancel_and_owner_cancel() {
        let q = TimerQueue::new();
        q.schedule((1, 0), 5);
        q.schedule((1, 1), 6);
        q.schedule((2, 0), 7);
        q.cancel((1, 0));
        assert_eq!(q.next_deadline(), Some(6));
        q.cancel_owner(1);
        assert_eq!(q.pop_expired(100), Some((2, 0)));
        assert_eq!(q.next_deadline(), None);
    }

    #[test]
    fn test_icount_clock_is_instruction_driven() {
        let c = Clock::new(ClockMode::Icount { shift: 2 });
        c.retire(10);
        assert_eq!(c.now(), 40);
        assert_eq!(c.insns_until(100), Some(15));
        c.warp_to(1000);
        assert_eq!(c.now(), 1000);
        c.warp_to(10);
        assert_eq!(c.now(), 1000, "warp never goes backwards");
    }

    #[test]
    fn test_tick_conversions_round_deadlines_up() {
        assert_eq!(ns_to_ticks(1_000, 10_000_000), 10);
        assert_eq!(ticks_to_ns(10, 10_000_000), 1_000);
        assert_eq!(ticks_to_ns(1, 3), 333_333_334);
        assert_eq!(ticks_to_ns(u64::MAX, 1), u64::MAX);
    }

    #[test]
    fn test_host_clock_stops_while_paused() {
        let c = Clock::new(ClockMode::Host);
        c.pause();
        let a = c.now();
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert_eq!(c.now(), a);
        c.resume();
        assert!(c.now() >= a);
    }
}
