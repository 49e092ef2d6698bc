//! RISC-V F and D arithmetic on raw bit patterns (`u32` = binary32, `u64` = binary64).
//!
//! # What it follows
//!
//! * RISC-V Unprivileged ISA 20191213, chapter 11 "F" (v2.2) and chapter 12 "D" (v2.2):
//!   - 11.2 `fcsr`: rounding modes ([`Rm`], `rm` 5 and 6 reserved, 7 = DYN is resolved by the
//!     caller from `frm`) and the accrued flags ([`NX`], [`UF`], [`OF`], [`DZ`], [`NV`], laid
//!     out as in `fflags`).
//!   - 11.3 NaN generation and propagation: every NaN result is the canonical NaN
//!     ([`F32_NAN`], [`F64_NAN`]); payloads are never propagated.
//!   - 11.4 subnormal arithmetic: tininess is detected *after* rounding, and underflow is
//!     signalled only when the result is tiny *and* inexact.
//!   - 11.6 arithmetic (add, sub, mul, div, sqrt, min/max with the 2.2 semantics: one NaN
//!     operand yields the other operand, two NaNs the canonical NaN, -0.0 < +0.0, and a
//!     signalling NaN raises NV even when the result is not NaN); fused multiply-add with a
//!     single rounding, `fnmadd`/`fnmsub` negating the product and the addend (so an exact zero
//!     result follows the usual sum-of-zeros sign rule), and NV for `inf * 0 + qNaN`.
//!   - 11.7 conversions: float-to-integer results clipped per table 11.4 (NaN and positive
//!     overflow give the largest value, negative overflow the smallest; NV and no NX when
//!     clipped), integer-to-float and binary32/binary64 conversions with rounding.
//!   - 11.8 comparisons: `feq` is quiet (NV only for signalling NaNs), `flt`/`fle` signal (NV
//!     for any NaN). 11.9 `fclass` (10-bit mask).
//! * IEEE 754-2008 clauses 4 (rounding-direction attributes incl. roundTiesToAway), 5.4, 5.8,
//!   6.3 (sign of exact zero sums: +0 except -0 in roundTowardNegative) and 7 (exceptions).
//!
//! Sign injection and NaN-boxing are bit operations the executor does itself (helpers for the
//! former are here too); `fcvt.w[u].*` results are sign-extended to XLEN by the caller.
//!
//! # How it works
//!
//! The *soft path* is an exact integer implementation, generic over the format (`Fmt`):
//! operands are unpacked to `m * 2^e` with an integer significand, the operation is done
//! exactly or with a sticky ("jam") bit far below the rounding position (u128 intermediates:
//! 106-bit products, 64-bit-plus quotients and square roots), and one routine
//! (`round_pack`) rounds in any of the five modes, with tininess after rounding and the
//! overflow result chosen by mode. Host floating point is used there only for a square-root
//! starting estimate that integer arithmetic then corrects exactly.
//!
//! The *fast path* (round-to-nearest-even only) uses the host's IEEE operations, which are
//! correctly rounded to nearest-even: Rust's `+ - * /`, `sqrt` and `mul_add` (a fused
//! multiply-add, single rounding), and Rust does not contract or reassociate them. Only flags
//! have to be derived, and they are, exactly:
//!
//! * add/sub: TwoSum (Knuth/Møller, 6 operations) gives the exact error `a + b - s`; `NX` iff
//!   it is nonzero. A sum that lands in the subnormal range is always exact, so add never
//!   underflows; an infinite sum of finite operands goes to the soft path.
//! * mul (binary64): `fma(a, b, -p)` is the exact error of `p = a*b` provided that error is
//!   representable, which holds when `|p| >= 2^-967`; below that the soft path decides
//!   (tininess). A zero product of a zero operand is exact.
//! * div (binary64): the remainder `a - q*b` is representable and `fma(q, b, -a)` computes it
//!   exactly when `|a| >= 2^-960` and `q` is normal; `NX` iff it is nonzero.
//! * sqrt (binary64): `fma(r, r, -a)` is exact for `a >= 2^-900`; `NX` iff nonzero.
//! * fma (binary64): the Boldo–Muller error-free transformation of an FMA (TwoProduct of `a*b`,
//!   two TwoSums, and `gamma = (beta1 - r) + beta2`) gives `a*b + c = r + gamma + z` exactly
//!   when nothing underflows; `NX` iff `gamma + z != 0`. Used when `|r| >= 2^-1021` and
//!   `|RN(a*b)| >= 2^-900`; a zero product is exact.
//! * binary32 mul/div/sqrt/fma: the exact product of two binary32 values fits in a binary64,
//!   so exactness is checked in binary64 (`r*b == a`, `r*r == a`; for fma, TwoSum of the exact
//!   product and the addend, then a Sterbenz-exact difference with the rounded result).
//! * Any non-finite operand or result, any result below twice the smallest normal (where
//!   tininess after rounding needs care), or any check that itself overflowed goes to the
//!   soft path, which is the specification; the unit tests check both paths bit-for-bit
//!   (result and flags) on a million random, special-biased operands, and check the soft path
//!   against an independent big-integer reference in all five rounding modes.
//!
//! Everything is `#[inline]`-friendly, allocation-free and panic-free (no indexing, no
//! unchecked shifts or overflowing arithmetic, divisions only by nonzero values).

/// A static rounding mode (`rm` field / `frm`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rm {
    /// Round to nearest, ties to even (000).
    Rne = 0,
    /// Round towards zero (001).
    Rtz = 1,
    /// Round down, towards -inf (010).
    Rdn = 2,
    /// Round up, towards +inf (011).
    Rup = 3,
    /// Round to nearest, ties to max magnitude (100).
    Rmm = 4,
}

impl Rm {
    /// Decodes a 3-bit rounding mode. 5 and 6 are reserved and 7 (DYN) must be resolved by the
    /// caller from `frm` before calling this: all three give `None`.
    #[inline]
    pub fn from_bits(rm: u32) -> Option<Rm> {
        match rm {
            0 => Some(Rm::Rne),
            1 => Some(Rm::Rtz),
            2 => Some(Rm::Rdn),
            3 => Some(Rm::Rup),
            4 => Some(Rm::Rmm),
            _ => None,
        }
    }

    /// The 3-bit encoding of the mode.
    #[inline]
    pub fn bits(self) -> u32 {
        self as u32
    }
}

/// Inexact (`fflags` bit 0).
pub const NX: u8 = 1;
/// Underflow (`fflags` bit 1).
pub const UF: u8 = 2;
/// Overflow (`fflags` bit 2).
pub const OF: u8 = 4;
/// Divide by zero (`fflags` bit 3).
pub const DZ: u8 = 8;
/// Invalid operation (`fflags` bit 4).
pub const NV: u8 = 16;

/// The canonical binary32 NaN.
pub const F32_NAN: u32 = 0x7fc0_0000;
/// The canonical binary64 NaN.
pub const F64_NAN: u64 = 0x7ff8_0000_0000_0000;

const S32: u32 = 0x8000_0000;
const S64: u64 = 0x8000_0000_0000_0000;

// ---------------------------------------------------------------------------------------------
// Soft path: format description and unpacking
// ---------------------------------------------------------------------------------------------

/// An IEEE binary interchange format, bits held in the low end of a `u64`.
trait Fmt {
    /// Fraction (trailing significand) bits.
    const MAN: u32;
    /// Exponent bits.
    const EXP: u32;
    const BIAS: i32 = (1 << (Self::EXP - 1)) - 1;
    /// The all-ones biased exponent (inf/NaN).
    const EMAX: i32 = (1 << Self::EXP) - 1;
    const SIGN: u64 = 1 << (Self::MAN + Self::EXP);
    const FRAC: u64 = (1 << Self::MAN) - 1;
    const INF: u64 = ((1 << Self::EXP) - 1) << Self::MAN;
    const QUIET: u64 = 1 << (Self::MAN - 1);
    const NAN: u64 = Self::INF | Self::QUIET;
    /// Largest finite magnitude.
    const MAXF: u64 = Self::INF - 1;
    /// Bits below the significand when it is left-aligned in a u64 (top bit at 63).
    const SH: u32 = 63 - Self::MAN;
    /// Left shift putting a significand's leading bit (bit MAN) at bit 125 of a u128.
    const FRAME: u32 = 125 - Self::MAN;
}

/// binary32.
struct S;
/// binary64.
struct D;
impl Fmt for S {
    const MAN: u32 = 23;
    const EXP: u32 = 8;
}
impl Fmt for D {
    const MAN: u32 = 52;
    const EXP: u32 = 11;
}

/// An unpacked operand (the sign is kept apart).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Val {
    Zero,
    /// `m * 2^e`, `m` normalised to have its leading one at bit `MAN` (subnormals included).
    Fin(i32, u64),
    Inf,
    QNan,
    SNan,
}

#[inline]
fn unpack<F: Fmt>(x: u64) -> (bool, Val) {
    let sign = x & F::SIGN != 0;
    let be = ((x >> F::MAN) & ((1 << F::EXP) - 1)) as i32;
    let frac = x & F::FRAC;
    let v = if be == F::EMAX {
        if frac == 0 {
            Val::Inf
        } else if frac & F::QUIET != 0 {
            Val::QNan
        } else {
            Val::SNan
        }
    } else if be == 0 {
        if frac == 0 {
            Val::Zero
        } else {
            // frac < 2^MAN, so leading_zeros >= 64 - MAN and sh >= 1.
            let sh = frac.leading_zeros() - (63 - F::MAN);
            Val::Fin(1 - F::BIAS - F::MAN as i32 - sh as i32, frac << sh)
        }
    } else {
        Val::Fin(be - F::BIAS - F::MAN as i32, frac | (1 << F::MAN))
    };
    (sign, v)
}

#[inline]
fn sgn<F: Fmt>(s: bool) -> u64 {
    if s { F::SIGN } else { 0 }
}

#[inline]
fn is_nan(v: Val) -> bool {
    matches!(v, Val::QNan | Val::SNan)
}

/// Sign of an exact zero sum of operands with signs `s1`, `s2` (IEEE 754 6.3).
#[inline]
fn zero_sum<F: Fmt>(s1: bool, s2: bool, rm: Rm) -> u64 {
    if s1 == s2 {
        sgn::<F>(s1)
    } else {
        sgn::<F>(rm == Rm::Rdn)
    }
}

// ---------------------------------------------------------------------------------------------
// Soft path: rounding
// ---------------------------------------------------------------------------------------------

/// Whether to add one unit in the last place, given the kept LSB, the first discarded bit and
/// whether any later discarded bit is set.
#[inline]
fn round_inc(rm: Rm, sign: bool, lsb: bool, half: bool, sticky: bool) -> bool {
    match rm {
        Rm::Rne => half && (sticky || lsb),
        Rm::Rtz => false,
        Rm::Rdn => sign && (half || sticky),
        Rm::Rup => !sign && (half || sticky),
        Rm::Rmm => half,
    }
}

/// The overflow result: infinity or the largest finite value, by mode and sign.
#[inline]
fn overflow<F: Fmt>(sign: bool, rm: Rm) -> (u64, u8) {
    let to_inf = match rm {
        Rm::Rne | Rm::Rmm => true,
        Rm::Rtz => false,
        Rm::Rdn => sign,
        Rm::Rup => !sign,
    };
    (
        sgn::<F>(sign) | if to_inf { F::INF } else { F::MAXF },
        OF | NX,
    )
}

/// Rounds `(-1)^sign * sig * 2^e` (with `sig >= 2^63`; any sticky information already ORed
/// into its low bits, well below bit `SH - 1`) to format `F`.
#[inline]
fn round_pack<F: Fmt>(sign: bool, e: i32, sig: u64, rm: Rm) -> (u64, u8) {
    let sb = sgn::<F>(sign);
    // Biased exponent of the leading bit, if it were normal.
    let be = e.saturating_add(63 + F::BIAS);
    let mant = sig >> F::SH;
    let half = (sig >> (F::SH - 1)) & 1 != 0;
    let sticky = sig & ((1 << (F::SH - 1)) - 1) != 0;
    if be >= 1 {
        let mut mant = mant;
        let mut be = be;
        if round_inc(rm, sign, mant & 1 != 0, half, sticky) {
            mant += 1;
            if mant >> (F::MAN + 1) != 0 {
                mant >>= 1;
                be += 1;
            }
        }
        if be >= F::EMAX {
            return overflow::<F>(sign, rm);
        }
        let flags = if half || sticky { NX } else { 0 };
        (sb | ((be as u64) << F::MAN) | (mant & F::FRAC), flags)
    } else {
        // Tiny after rounding: rounding to the full precision with an unbounded exponent
        // would still give a magnitude below 2^emin. Only a leading bit just below emin that
        // rounds up (all ones + increment) escapes.
        let tiny =
            be < 0 || !(mant == (1 << (F::MAN + 1)) - 1 && round_inc(rm, sign, true, half, sticky));
        // Denormalise: total right shift of sig, >= SH + 1.
        let shift = (F::SH as i64 + 1 - be as i64) as u64;
        let (m, half, sticky) = if shift < 64 {
            (
                sig >> shift,
                (sig >> (shift - 1)) & 1 != 0,
                sig & ((1u64 << (shift - 1)) - 1) != 0,
            )
        } else if shift == 64 {
            (0, sig >> 63 != 0, sig << 1 != 0)
        } else {
            (0, false, true)
        };
        let m = m + round_inc(rm, sign, m & 1 != 0, half, sticky) as u64;
        let flags = if half || sticky {
            NX | if tiny { UF } else { 0 }
        } else {
            0
        };
        // A carry into bit MAN gives the smallest normal, exponent field 1: correct as is.
        (sb | m, flags)
    }
}

/// Rounds `(-1)^sign * x * 2^e` to format `F`; `x` may be any width up to 128 bits.
#[inline]
fn pack128<F: Fmt>(sign: bool, e: i32, x: u128, rm: Rm) -> (u64, u8) {
    if x == 0 {
        return (sgn::<F>(sign), 0);
    }
    let lz = x.leading_zeros();
    let y = x << lz;
    let hi = (y >> 64) as u64 | (y as u64 != 0) as u64;
    round_pack::<F>(sign, e.saturating_add(64 - lz as i32), hi, rm)
}

/// Shift right, ORing every bit shifted out into bit 0.
#[inline]
fn shr_jam128(x: u128, d: u32) -> u128 {
    if d == 0 {
        x
    } else if d < 128 {
        (x >> d) | (x << (128 - d) != 0) as u128
    } else {
        (x != 0) as u128
    }
}

// ---------------------------------------------------------------------------------------------
// Soft path: operations (they are the specification of the fast path)
// ---------------------------------------------------------------------------------------------

/// Adds two nonzero finite values `a * 2^ea`, `b * 2^eb` whose leading ones are both at bit 125
/// (or, for the product of an fma, anywhere at or below 125 with at least 20 zero low bits).
#[inline]
fn add_frames<F: Fmt>(sa: bool, ea: i32, a: u128, sb: bool, eb: i32, b: u128, rm: Rm) -> (u64, u8) {
    let (sa, ea, a, sb, eb, b) = if ea >= eb {
        (sa, ea, a, sb, eb, b)
    } else {
        (sb, eb, b, sa, ea, a)
    };
    // ea - eb < 2^13 for every caller.
    let b = shr_jam128(b, ea.abs_diff(eb));
    if sa == sb {
        pack128::<F>(sa, ea, a + b, rm)
    } else if a > b {
        pack128::<F>(sa, ea, a - b, rm)
    } else if b > a {
        pack128::<F>(sb, ea, b - a, rm)
    } else {
        (sgn::<F>(rm == Rm::Rdn), 0)
    }
}

fn add<F: Fmt>(a: u64, b: u64, rm: Rm) -> (u64, u8) {
    let (sa, va) = unpack::<F>(a);
    let (sb, vb) = unpack::<F>(b);
    match (va, vb) {
        (Val::SNan, _) | (_, Val::SNan) => (F::NAN, NV),
        (Val::QNan, _) | (_, Val::QNan) => (F::NAN, 0),
        (Val::Inf, Val::Inf) if sa != sb => (F::NAN, NV),
        (Val::Inf, _) => (a, 0),
        (_, Val::Inf) => (b, 0),
        (Val::Zero, Val::Zero) => (zero_sum::<F>(sa, sb, rm), 0),
        (Val::Zero, _) => (b, 0),
        (_, Val::Zero) => (a, 0),
        (Val::Fin(ea, ma), Val::Fin(eb, mb)) => add_frames::<F>(
            sa,
            ea - F::FRAME as i32,
            (ma as u128) << F::FRAME,
            sb,
            eb - F::FRAME as i32,
            (mb as u128) << F::FRAME,
            rm,
        ),
    }
}

fn mul<F: Fmt>(a: u64, b: u64, rm: Rm) -> (u64, u8) {
    let (sa, va) = unpack::<F>(a);
    let (sb, vb) = unpack::<F>(b);
    let s = sa != sb;
    match (va, vb) {
        (Val::SNan, _) | (_, Val::SNan) => (F::NAN, NV),
        (Val::QNan, _) | (_, Val::QNan) => (F::NAN, 0),
        (Val::Inf, Val::Zero) | (Val::Zero, Val::Inf) => (F::NAN, NV),
        (Val::Inf, _) | (_, Val::Inf) => (sgn::<F>(s) | F::INF, 0),
        (Val::Zero, _) | (_, Val::Zero) => (sgn::<F>(s), 0),
        (Val::Fin(ea, ma), Val::Fin(eb, mb)) => {
            pack128::<F>(s, ea + eb, ma as u128 * mb as u128, rm)
        }
    }
}

/// `a * b + c`, one rounding. The fused variants negate `a` and/or `c` before calling.
fn fma<F: Fmt>(a: u64, b: u64, c: u64, rm: Rm) -> (u64, u8) {
    let (sa, va) = unpack::<F>(a);
    let (sb, vb) = unpack::<F>(b);
    let (sc, vc) = unpack::<F>(c);
    let sp = sa != sb;
    let inf_zero = matches!((va, vb), (Val::Inf, Val::Zero) | (Val::Zero, Val::Inf));
    if va == Val::SNan || vb == Val::SNan || vc == Val::SNan || inf_zero {
        // RISC-V: inf * 0 + qNaN is invalid too.
        return (F::NAN, NV);
    }
    if is_nan(va) || is_nan(vb) || vc == Val::QNan {
        return (F::NAN, 0);
    }
    if va == Val::Inf || vb == Val::Inf {
        if vc == Val::Inf && sc != sp {
            return (F::NAN, NV);
        }
        return (sgn::<F>(sp) | F::INF, 0);
    }
    if vc == Val::Inf {
        return (c, 0);
    }
    let (Val::Fin(ea, ma), Val::Fin(eb, mb)) = (va, vb) else {
        // A zero product: the sum is exact.
        return match vc {
            Val::Zero => (zero_sum::<F>(sp, sc, rm), 0),
            _ => (c, 0),
        };
    };
    let prod = ma as u128 * mb as u128;
    let ep = ea + eb;
    let Val::Fin(ec, mc) = vc else {
        return pack128::<F>(sp, ep, prod, rm);
    };
    // prod < 2^(2*MAN + 2) <= 2^106, so leading_zeros >= 22: move its leading one to bit 125
    // (keeping >= 20 zero bits below it).
    let sh = prod.leading_zeros() - 2;
    add_frames::<F>(
        sp,
        ep - sh as i32,
        prod << sh,
        sc,
        ec - F::FRAME as i32,
        (mc as u128) << F::FRAME,
        rm,
    )
}

fn div<F: Fmt>(a: u64, b: u64, rm: Rm) -> (u64, u8) {
    let (sa, va) = unpack::<F>(a);
    let (sb, vb) = unpack::<F>(b);
    let s = sa != sb;
    match (va, vb) {
        (Val::SNan, _) | (_, Val::SNan) => (F::NAN, NV),
        (Val::QNan, _) | (_, Val::QNan) => (F::NAN, 0),
        (Val::Inf, Val::Inf) | (Val::Zero, Val::Zero) => (F::NAN, NV),
        (Val::Inf, _) => (sgn::<F>(s) | F::INF, 0),
        (_, Val::Inf) | (Val::Zero, _) => (sgn::<F>(s), 0),
        (_, Val::Zero) => (sgn::<F>(s) | F::INF, DZ),
        (Val::Fin(ea, ma), Val::Fin(eb, mb)) => {
            // Both significands have their leading one at bit MAN, so the quotient of
            // ma * 2^64 by mb lies in (2^63, 2^65): at least 64 good bits, plus a sticky bit.
            let n = (ma as u128) << 64;
            let d = (mb as u128).max(1);
            let q = n / d;
            let r = n % d;
            pack128::<F>(s, ea - eb - 64, q | (r != 0) as u128, rm)
        }
    }
}

/// Integer square root of `n` in `[2^62, 2^126)`: `(floor(sqrt(n)), n - floor(sqrt(n))^2)`.
///
/// A binary64 estimate (within ~2^10 of the root) is refined by one integer Newton step (which
/// lands within one of the root) and then corrected exactly; the result never depends on how
/// good the estimate was, only the amount of work does.
#[inline]
fn isqrt128(n: u128) -> (u128, u128) {
    let mut r = ((n as f64).sqrt() as u128).clamp(1 << 31, (1 << 63) - 1);
    r = (r + n / r) >> 1;
    // r < 2^64 keeps r * r and (r + 1)^2 inside u128.
    r = r.min((1 << 64) - 2);
    while r * r > n {
        r -= 1;
    }
    // Integer Newton never lands below the floor of the root; kept as a safety net.
    while (r + 1) * (r + 1) <= n {
        r += 1;
    }
    (r, n - r * r)
}

fn sqrt<F: Fmt>(a: u64, rm: Rm) -> (u64, u8) {
    let (sa, va) = unpack::<F>(a);
    match va {
        Val::SNan => (F::NAN, NV),
        Val::QNan => (F::NAN, 0),
        Val::Zero => (a, 0),
        _ if sa => (F::NAN, NV),
        Val::Inf => (a, 0),
        Val::Fin(e, m) => {
            let (e, m) = if e & 1 != 0 { (e - 1, m << 1) } else { (e, m) };
            // m < 2^(MAN + 2) <= 2^54, so n < 2^126 and its root has >= 62 bits.
            let n = (m as u128) << 72;
            let (r, rem) = isqrt128(n);
            pack128::<F>(false, (e - 72) / 2, r | (rem != 0) as u128, rm)
        }
    }
}

/// Format conversion (binary32 <-> binary64).
fn convert<FI: Fmt, FO: Fmt>(a: u64, rm: Rm) -> (u64, u8) {
    let (s, v) = unpack::<FI>(a);
    match v {
        Val::SNan => (FO::NAN, NV),
        Val::QNan => (FO::NAN, 0),
        Val::Inf => (sgn::<FO>(s) | FO::INF, 0),
        Val::Zero => (sgn::<FO>(s), 0),
        Val::Fin(e, m) => pack128::<FO>(s, e, m as u128, rm),
    }
}

/// Float to integer in `[min, max]`, clipping per RISC-V (table 11.4).
fn to_int<F: Fmt>(a: u64, rm: Rm, min: i128, max: i128) -> (i128, u8) {
    let (s, v) = unpack::<F>(a);
    let clip = if s { min } else { max };
    match v {
        Val::SNan | Val::QNan => (max, NV),
        Val::Inf => (clip, NV),
        Val::Zero => (0, 0),
        Val::Fin(e, m) => {
            let m = m as u128;
            let (mag, inexact) = if e >= 0 {
                if e > 70 {
                    return (clip, NV);
                }
                (m << e, false)
            } else {
                let k = e.unsigned_abs();
                let (int, half, sticky) = if k < 128 {
                    (
                        m >> k,
                        (m >> (k - 1)) & 1 != 0,
                        m & ((1u128 << (k - 1)) - 1) != 0,
                    )
                } else {
                    (0, false, true)
                };
                let int = int + round_inc(rm, s, int & 1 != 0, half, sticky) as u128;
                (int, half || sticky)
            };
            // mag < 2^124.
            let val = if s { -(mag as i128) } else { mag as i128 };
            if val < min || val > max {
                (clip, NV)
            } else {
                (val, if inexact { NX } else { 0 })
            }
        }
    }
}

/// Integer (sign and magnitude) to float.
#[inline]
fn from_int<F: Fmt>(neg: bool, mag: u64, rm: Rm) -> (u64, u8) {
    pack128::<F>(neg, 0, mag as u128, rm)
}

fn minmax<F: Fmt>(a: u64, b: u64, want_max: bool) -> (u64, u8) {
    let (_, va) = unpack::<F>(a);
    let (_, vb) = unpack::<F>(b);
    let flags = if va == Val::SNan || vb == Val::SNan {
        NV
    } else {
        0
    };
    let r = match (is_nan(va), is_nan(vb)) {
        (true, true) => F::NAN,
        (true, false) => b,
        (false, true) => a,
        (false, false) => {
            if lt_total::<F>(a, b) != want_max {
                a
            } else {
                b
            }
        }
    };
    (r, flags)
}

/// `a < b` for non-NaN operands, with -0 < +0.
#[inline]
fn lt_total<F: Fmt>(a: u64, b: u64) -> bool {
    let (sa, sb) = (a & F::SIGN != 0, b & F::SIGN != 0);
    let (ma, mb) = (a & !F::SIGN, b & !F::SIGN);
    match (sa, sb) {
        (false, false) => ma < mb,
        (true, true) => ma > mb,
        (true, false) => true,
        (false, true) => false,
    }
}

/// `a < b` for non-NaN operands, IEEE (-0 == +0).
#[inline]
fn lt_ieee<F: Fmt>(a: u64, b: u64) -> bool {
    let both_zero = (a | b) & !F::SIGN == 0;
    !both_zero && lt_total::<F>(a, b)
}

#[inline]
fn eq_ieee<F: Fmt>(a: u64, b: u64) -> bool {
    a == b || (a | b) & !F::SIGN == 0
}

#[derive(Clone, Copy)]
enum Cmp {
    Eq,
    Lt,
    Le,
}

fn compare<F: Fmt>(a: u64, b: u64, op: Cmp) -> (bool, u8) {
    let (_, va) = unpack::<F>(a);
    let (_, vb) = unpack::<F>(b);
    if is_nan(va) || is_nan(vb) {
        let signalling = va == Val::SNan || vb == Val::SNan;
        let nv = match op {
            Cmp::Eq => signalling,
            Cmp::Lt | Cmp::Le => true,
        };
        return (false, if nv { NV } else { 0 });
    }
    let r = match op {
        Cmp::Eq => eq_ieee::<F>(a, b),
        Cmp::Lt => lt_ieee::<F>(a, b),
        Cmp::Le => lt_ieee::<F>(a, b) || eq_ieee::<F>(a, b),
    };
    (r, 0)
}

fn class<F: Fmt>(a: u64) -> u32 {
    let neg = a & F::SIGN != 0;
    let be = (a >> F::MAN) & ((1 << F::EXP) - 1);
    let frac = a & F::FRAC;
    let bit = if be == (1 << F::EXP) - 1 {
        if frac == 0 {
            if neg { 0 } else { 7 }
        } else if frac & F::QUIET != 0 {
            9
        } else {
            8
        }
    } else if be == 0 {
        match (frac == 0, neg) {
            (true, true) => 3,
            (true, false) => 4,
            (false, true) => 2,
            (false, false) => 5,
        }
    } else if neg {
        1
    } else {
        6
    };
    1 << bit
}

// ---------------------------------------------------------------------------------------------
// Fast-path helpers
// ---------------------------------------------------------------------------------------------

/// TwoSum: `s = RN(a + b)` and the exact error `a + b - s` (barring overflow, which leaves a
/// non-finite error).
#[inline(always)]
fn two_sum64(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let bb = s - a;
    (s, (a - (s - bb)) + (b - bb))
}

#[inline(always)]
fn two_sum32(a: f32, b: f32) -> (f32, f32) {
    let s = a + b;
    let bb = s - a;
    (s, (a - (s - bb)) + (b - bb))
}

const fn pow2_64(e: i32) -> f64 {
    f64::from_bits(((1023 + e) as u64) << 52)
}
const fn pow2_32(e: i32) -> f32 {
    f32::from_bits(((127 + e) as u32) << 23)
}

const F64_MUL_MIN: f64 = pow2_64(-967);
const F64_DIVIDEND_MIN: f64 = pow2_64(-960);
const F64_SQRT_MIN: f64 = pow2_64(-900);
const F64_FMA_PROD_MIN: f64 = pow2_64(-900);
/// Results at or above twice the smallest normal can't be tiny.
const F64_RES_MIN: f64 = pow2_64(-1021);
const F32_RES_MIN: f32 = pow2_32(-125);

#[inline(always)]
fn nx_if(inexact: bool) -> u8 {
    if inexact { NX } else { 0 }
}

// ---------------------------------------------------------------------------------------------
// Public API: binary64
// ---------------------------------------------------------------------------------------------

/// `fadd.d`.
#[inline]
pub fn f64_add(a: u64, b: u64, rm: Rm) -> (u64, u8) {
    if rm == Rm::Rne {
        let (s, err) = two_sum64(f64::from_bits(a), f64::from_bits(b));
        // A finite sum has finite operands and did not overflow.
        if s.is_finite() {
            if err == 0.0 {
                return (s.to_bits(), 0);
            }
            if err.is_finite() {
                return (s.to_bits(), NX);
            }
        }
    }
    add::<D>(a, b, rm)
}

/// `fsub.d`.
#[inline]
pub fn f64_sub(a: u64, b: u64, rm: Rm) -> (u64, u8) {
    f64_add(a, b ^ S64, rm)
}

/// `fmul.d`.
#[inline]
pub fn f64_mul(a: u64, b: u64, rm: Rm) -> (u64, u8) {
    if rm == Rm::Rne {
        let (x, y) = (f64::from_bits(a), f64::from_bits(b));
        let p = x * y;
        let ap = p.abs();
        if (F64_MUL_MIN..=f64::MAX).contains(&ap) {
            return (p.to_bits(), nx_if(x.mul_add(y, -p) != 0.0));
        }
        if p == 0.0 && (x == 0.0 || y == 0.0) {
            return (p.to_bits(), 0);
        }
    }
    mul::<D>(a, b, rm)
}

/// `fdiv.d`.
#[inline]
pub fn f64_div(a: u64, b: u64, rm: Rm) -> (u64, u8) {
    if rm == Rm::Rne {
        let (x, y) = (f64::from_bits(a), f64::from_bits(b));
        let q = x / y;
        let aq = q.abs();
        if (F64_RES_MIN..=f64::MAX).contains(&aq) && x.abs() >= F64_DIVIDEND_MIN {
            return (q.to_bits(), nx_if(q.mul_add(y, -x) != 0.0));
        }
        if q == 0.0 && x == 0.0 {
            return (q.to_bits(), 0);
        }
    }
    div::<D>(a, b, rm)
}

/// `fsqrt.d`.
#[inline]
pub fn f64_sqrt(a: u64, rm: Rm) -> (u64, u8) {
    if rm == Rm::Rne {
        let x = f64::from_bits(a);
        if (F64_SQRT_MIN..=f64::MAX).contains(&x) {
            let r = x.sqrt();
            return (r.to_bits(), nx_if(r.mul_add(r, -x) != 0.0));
        }
    }
    sqrt::<D>(a, rm)
}

#[inline]
fn fma64(a: u64, b: u64, c: u64, rm: Rm) -> (u64, u8) {
    if rm == Rm::Rne {
        let (x, y, z) = (f64::from_bits(a), f64::from_bits(b), f64::from_bits(c));
        let r = x.mul_add(y, z);
        let ar = r.abs();
        if (F64_RES_MIN..=f64::MAX).contains(&ar) {
            let u1 = x * y;
            let au1 = u1.abs();
            if (F64_FMA_PROD_MIN..=f64::MAX).contains(&au1) {
                // Error-free transformation of the FMA (Boldo & Muller 2011):
                // x*y + z = r + gamma + z1 exactly.
                let u2 = x.mul_add(y, -u1);
                let (alpha1, z1) = two_sum64(z, u2);
                let (beta1, beta2) = two_sum64(u1, alpha1);
                let gamma = (beta1 - r) + beta2;
                let t = gamma + z1;
                if t == 0.0 {
                    return (r.to_bits(), 0);
                }
                if t.is_finite() {
                    return (r.to_bits(), NX);
                }
            } else if u1 == 0.0 && (x == 0.0 || y == 0.0) {
                // Zero product (finite factors): r == z exactly.
                return (r.to_bits(), 0);
            }
        } else if r == 0.0 && z == 0.0 && (x == 0.0 || y == 0.0) {
            return (r.to_bits(), 0);
        }
    }
    fma::<D>(a, b, c, rm)
}

/// `fmadd.d`: `a * b + c`.
#[inline]
pub fn f64_madd(a: u64, b: u64, c: u64, rm: Rm) -> (u64, u8) {
    fma64(a, b, c, rm)
}

/// `fmsub.d`: `a * b - c`.
#[inline]
pub fn f64_msub(a: u64, b: u64, c: u64, rm: Rm) -> (u64, u8) {
    fma64(a, b, c ^ S64, rm)
}

/// `fnmsub.d`: `-(a * b) + c`.
#[inline]
pub fn f64_nmsub(a: u64, b: u64, c: u64, rm: Rm) -> (u64, u8) {
    fma64(a ^ S64, b, c, rm)
}

/// `fnmadd.d`: `-(a * b) - c`.
#[inline]
pub fn f64_nmadd(a: u64, b: u64, c: u64, rm: Rm) -> (u64, u8) {
    fma64(a ^ S64, b, c ^ S64, rm)
}

/// `fmin.d`.
#[inline]
pub fn f64_min(a: u64, b: u64) -> (u64, u8) {
    minmax::<D>(a, b, false)
}

/// `fmax.d`.
#[inline]
pub fn f64_max(a: u64, b: u64) -> (u64, u8) {
    minmax::<D>(a, b, true)
}

/// `feq.d` (quiet).
#[inline]
pub fn f64_eq(a: u64, b: u64) -> (bool, u8) {
    compare::<D>(a, b, Cmp::Eq)
}

/// `flt.d` (signalling).
#[inline]
pub fn f64_lt(a: u64, b: u64) -> (bool, u8) {
    compare::<D>(a, b, Cmp::Lt)
}

/// `fle.d` (signalling).
#[inline]
pub fn f64_le(a: u64, b: u64) -> (bool, u8) {
    compare::<D>(a, b, Cmp::Le)
}

/// `fclass.d`: one of bits 0..=9.
#[inline]
pub fn f64_class(a: u64) -> u32 {
    class::<D>(a)
}

/// `fsgnj.d`.
#[inline]
pub fn f64_sgnj(a: u64, b: u64) -> u64 {
    (a & !S64) | (b & S64)
}

/// `fsgnjn.d`.
#[inline]
pub fn f64_sgnjn(a: u64, b: u64) -> u64 {
    (a & !S64) | (!b & S64)
}

/// `fsgnjx.d`.
#[inline]
pub fn f64_sgnjx(a: u64, b: u64) -> u64 {
    a ^ (b & S64)
}

/// `fcvt.s.d`.
#[inline]
pub fn f64_to_f32(a: u64, rm: Rm) -> (u32, u8) {
    if rm == Rm::Rne {
        let x = f64::from_bits(a);
        let r = x as f32;
        let ar = r.abs();
        if (F32_RES_MIN..=f32::MAX).contains(&ar) {
            return (r.to_bits(), nx_if(r as f64 != x));
        }
        if x == 0.0 {
            return (r.to_bits(), 0);
        }
    }
    let (r, f) = convert::<D, S>(a, rm);
    (r as u32, f)
}

/// `fcvt.d.s` (always exact).
#[inline]
pub fn f32_to_f64(a: u32) -> (u64, u8) {
    let x = f32::from_bits(a);
    if !x.is_nan() {
        return ((x as f64).to_bits(), 0);
    }
    convert::<S, D>(a as u64, Rm::Rne)
}

/// `fcvt.w.d` (the caller sign-extends to XLEN).
#[inline]
pub fn f64_to_i32(a: u64, rm: Rm) -> (i32, u8) {
    let (v, f) = to_int::<D>(a, rm, i32::MIN as i128, i32::MAX as i128);
    (v as i32, f)
}

/// `fcvt.wu.d` (the caller sign-extends bit 31 to XLEN).
#[inline]
pub fn f64_to_u32(a: u64, rm: Rm) -> (u32, u8) {
    let (v, f) = to_int::<D>(a, rm, 0, u32::MAX as i128);
    (v as u32, f)
}

/// `fcvt.l.d`.
#[inline]
pub fn f64_to_i64(a: u64, rm: Rm) -> (i64, u8) {
    let (v, f) = to_int::<D>(a, rm, i64::MIN as i128, i64::MAX as i128);
    (v as i64, f)
}

/// `fcvt.lu.d`.
#[inline]
pub fn f64_to_u64(a: u64, rm: Rm) -> (u64, u8) {
    let (v, f) = to_int::<D>(a, rm, 0, u64::MAX as i128);
    (v as u64, f)
}

/// `fcvt.d.w` (always exact).
#[inline]
pub fn i32_to_f64(x: i32, _rm: Rm) -> (u64, u8) {
    ((x as f64).to_bits(), 0)
}

/// `fcvt.d.wu` (always exact).
#[inline]
pub fn u32_to_f64(x: u32, _rm: Rm) -> (u64, u8) {
    ((x as f64).to_bits(), 0)
}

/// `fcvt.d.l`.
#[inline]
pub fn i64_to_f64(x: i64, rm: Rm) -> (u64, u8) {
    if rm == Rm::Rne {
        let r = x as f64;
        return (r.to_bits(), nx_if(r as i128 != x as i128));
    }
    from_int::<D>(x < 0, x.unsigned_abs(), rm)
}

/// `fcvt.d.lu`.
#[inline]
pub fn u64_to_f64(x: u64, rm: Rm) -> (u64, u8) {
    if rm == Rm::Rne {
        let r = x as f64;
        return (r.to_bits(), nx_if(r as u128 != x as u128));
    }
    from_int::<D>(false, x, rm)
}

// ---------------------------------------------------------------------------------------------
// Public API: binary32
// ---------------------------------------------------------------------------------------------

#[inline]
fn soft32(r: (u64, u8)) -> (u32, u8) {
    (r.0 as u32, r.1)
}

/// `fadd.s`.
#[inline]
pub fn f32_add(a: u32, b: u32, rm: Rm) -> (u32, u8) {
    if rm == Rm::Rne {
        let (s, err) = two_sum32(f32::from_bits(a), f32::from_bits(b));
        if s.is_finite() {
            if err == 0.0 {
                return (s.to_bits(), 0);
            }
            if err.is_finite() {
                return (s.to_bits(), NX);
            }
        }
    }
    soft32(add::<S>(a as u64, b as u64, rm))
}

/// `fsub.s`.
#[inline]
pub fn f32_sub(a: u32, b: u32, rm: Rm) -> (u32, u8) {
    f32_add(a, b ^ S32, rm)
}

/// `fmul.s`.
#[inline]
pub fn f32_mul(a: u32, b: u32, rm: Rm) -> (u32, u8) {
    if rm == Rm::Rne {
        let (x, y) = (f32::from_bits(a), f32::from_bits(b));
        // Exact: 24 x 24 bits, and binary64's range covers it.
        let p = x as f64 * y as f64;
        let r = p as f32;
        let ar = r.abs();
        if (F32_RES_MIN..=f32::MAX).contains(&ar) {
            return (r.to_bits(), nx_if(r as f64 != p));
        }
        if p == 0.0 {
            return (r.to_bits(), 0);
        }
    }
    soft32(mul::<S>(a as u64, b as u64, rm))
}

/// `fdiv.s`.
#[inline]
pub fn f32_div(a: u32, b: u32, rm: Rm) -> (u32, u8) {
    if rm == Rm::Rne {
        let (x, y) = (f32::from_bits(a), f32::from_bits(b));
        let q = x / y;
        let aq = q.abs();
        if (F32_RES_MIN..=f32::MAX).contains(&aq) {
            return (q.to_bits(), nx_if(q as f64 * y as f64 != x as f64));
        }
        if q == 0.0 && x == 0.0 {
            return (q.to_bits(), 0);
        }
    }
    soft32(div::<S>(a as u64, b as u64, rm))
}

/// `fsqrt.s`.
#[inline]
pub fn f32_sqrt(a: u32, rm: Rm) -> (u32, u8) {
    if rm == Rm::Rne {
        let x = f32::from_bits(a);
        if x > 0.0 && x <= f32::MAX {
            let r = x.sqrt();
            let r64 = r as f64;
            return (r.to_bits(), nx_if(r64 * r64 != x as f64));
        }
    }
    soft32(sqrt::<S>(a as u64, rm))
}

#[inline]
fn fma32(a: u32, b: u32, c: u32, rm: Rm) -> (u32, u8) {
    if rm == Rm::Rne {
        let (x, y, z) = (f32::from_bits(a), f32::from_bits(b), f32::from_bits(c));
        let r = x.mul_add(y, z);
        let ar = r.abs();
        if (F32_RES_MIN..=f32::MAX).contains(&ar) {
            // Finite r: finite operands. x*y is exact in binary64, TwoSum makes the sum exact
            // (p + z = s + t), and s - r is exact (Sterbenz: both are within 2^-24 of the sum).
            let p = x as f64 * y as f64;
            let (s, t) = two_sum64(p, z as f64);
            let d = s - r as f64;
            return (r.to_bits(), nx_if(d + t != 0.0));
        }
        if r == 0.0 && z == 0.0 && (x == 0.0 || y == 0.0) {
            return (r.to_bits(), 0);
        }
    }
    soft32(fma::<S>(a as u64, b as u64, c as u64, rm))
}

/// `fmadd.s`: `a * b + c`.
#[inline]
pub fn f32_madd(a: u32, b: u32, c: u32, rm: Rm) -> (u32, u8) {
    fma32(a, b, c, rm)
}

/// `fmsub.s`: `a * b - c`.
#[inline]
pub fn f32_msub(a: u32, b: u32, c: u32, rm: Rm) -> (u32, u8) {
    fma32(a, b, c ^ S32, rm)
}

/// `fnmsub.s`: `-(a * b) + c`.
#[inline]
pub fn f32_nmsub(a: u32, b: u32, c: u32, rm: Rm) -> (u32, u8) {
    fma32(a ^ S32, b, c, rm)
}

/// `fnmadd.s`: `-(a * b) - c`.
#[inline]
pub fn f32_nmadd(a: u32, b: u32, c: u32, rm: Rm) -> (u32, u8) {
    fma32(a ^ S32, b, c ^ S32, rm)
}

/// `fmin.s`.
#[inline]
pub fn f32_min(a: u32, b: u32) -> (u32, u8) {
    soft32(minmax::<S>(a as u64, b as u64, false))
}

/// `fmax.s`.
#[inline]
pub fn f32_max(a: u32, b: u32) -> (u32, u8) {
    soft32(minmax::<S>(a as u64, b as u64, true))
}

/// `feq.s` (quiet).
#[inline]
pub fn f32_eq(a: u32, b: u32) -> (bool, u8) {
    compare::<S>(a as u64, b as u64, Cmp::Eq)
}

/// `flt.s` (signalling).
#[inline]
pub fn f32_lt(a: u32, b: u32) -> (bool, u8) {
    compare::<S>(a as u64, b as u64, Cmp::Lt)
}

/// `fle.s` (signalling).
#[inline]
pub fn f32_le(a: u32, b: u32) -> (bool, u8) {
    compare::<S>(a as u64, b as u64, Cmp::Le)
}

/// `fclass.s`: one of bits 0..=9.
#[inline]
pub fn f32_class(a: u32) -> u32 {
    class::<S>(a as u64)
}

/// `fsgnj.s`.
#[inline]
pub fn f32_sgnj(a: u32, b: u32) -> u32 {
    (a & !S32) | (b & S32)
}

/// `fsgnjn.s`.
#[inline]
pub fn f32_sgnjn(a: u32, b: u32) -> u32 {
    (a & !S32) | (!b & S32)
}

/// `fsgnjx.s`.
#[inline]
pub fn f32_sgnjx(a: u32, b: u32) -> u32 {
    a ^ (b & S32)
}

/// `fcvt.w.s` (the caller sign-extends to XLEN).
#[inline]
pub fn f32_to_i32(a: u32, rm: Rm) -> (i32, u8) {
    let (v, f) = to_int::<S>(a as u64, rm, i32::MIN as i128, i32::MAX as i128);
    (v as i32, f)
}

/// `fcvt.wu.s` (the caller sign-extends bit 31 to XLEN).
#[inline]
pub fn f32_to_u32(a: u32, rm: Rm) -> (u32, u8) {
    let (v, f) = to_int::<S>(a as u64, rm, 0, u32::MAX as i128);
    (v as u32, f)
}

/// `fcvt.l.s`.
#[inline]
pub fn f32_to_i64(a: u32, rm: Rm) -> (i64, u8) {
    let (v, f) = to_int::<S>(a as u64, rm, i64::MIN as i128, i64::MAX as i128);
    (v as i64, f)
}

/// `fcvt.lu.s`.
#[inline]
pub fn f32_to_u64(a: u32, rm: Rm) -> (u64, u8) {
    let (v, f) = to_int::<S>(a as u64, rm, 0, u64::MAX as i128);
    (v as u64, f)
}

/// `fcvt.s.w`.
#[inline]
pub fn i32_to_f32(x: i32, rm: Rm) -> (u32, u8) {
    if rm == Rm::Rne {
        let r = x as f32;
        return (r.to_bits(), nx_if(r as i64 != x as i64));
    }
    soft32(from_int::<S>(x < 0, x.unsigned_abs() as u64, rm))
}

/// `fcvt.s.wu`.
#[inline]
pub fn u32_to_f32(x: u32, rm: Rm) -> (u32, u8) {
    if rm == Rm::Rne {
        let r = x as f32;
        return (r.to_bits(), nx_if(r as u64 != x as u64));
    }
    soft32(from_int::<S>(false, x as u64, rm))
}

/// `fcvt.s.l`.
#[inline]
pub fn i64_to_f32(x: i64, rm: Rm) -> (u32, u8) {
    if rm == Rm::Rne {
        let r = x as f32;
        return (r.to_bits(), nx_if(r as i128 != x as i128));
    }
    soft32(from_int::<S>(x < 0, x.unsigned_abs(), rm))
}

/// `fcvt.s.lu`.
#[inline]
pub fn u64_to_f32(x: u64, rm: Rm) -> (u32, u8) {
    if rm == Rm::Rne {
        let r = x as f32;
        return (r.to_bits(), nx_if(r as u128 != x as u128));
    }
    soft32(from_int::<S>(false, x, rm))
}

#[cfg(test)]
#[allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::panic,
    clippy::float_cmp
)]
mod tests {
    use super::*;
    use std::cmp::Ordering;

    const ALL: [Rm; 5] = [Rm::Rne, Rm::Rtz, Rm::Rdn, Rm::Rup, Rm::Rmm];
    use Rm::{Rdn, Rmm, Rne, Rtz, Rup};

    // binary64 patterns
    const ONE: u64 = 0x3ff0_0000_0000_0000;
    const TWO: u64 = 0x4000_0000_0000_0000;
    const HALF: u64 = 0x3fe0_0000_0000_0000;
    const MAXD: u64 = 0x7fef_ffff_ffff_ffff;
    const MIND: u64 = 0x0010_0000_0000_0000; // smallest normal
    const LSUBD: u64 = 0x000f_ffff_ffff_ffff; // largest subnormal
    const INFD: u64 = 0x7ff0_0000_0000_0000;
    const QND: u64 = 0x7ff8_0000_0000_1234;
    const SND: u64 = 0x7ff0_0000_0000_0001;
    const NSND: u64 = 0xfff4_0000_0000_0000;
    const P2M53: u64 = 0x3ca0_0000_0000_0000; // 2^-53
    // binary32 patterns
    const ONES: u32 = 0x3f80_0000;
    const TWOS: u32 = 0x4000_0000;
    const MAXS: u32 = 0x7f7f_ffff;
    const MINS: u32 = 0x0080_0000;
    const INFS: u32 = 0x7f80_0000;
    const QNS: u32 = 0x7fc0_1234;
    const SNS: u32 = 0x7f80_0001;
    const P2M24: u32 = 0x3380_0000; // 2^-24

    fn d(x: f64) -> u64 {
        x.to_bits()
    }
    fn s(x: f32) -> u32 {
        x.to_bits()
    }

    // ---------------------------------------------------------------- hand-picked cases

    #[test]
    fn rounding_mode_decoding() {
        for (i, rm) in ALL.iter().enumerate() {
            assert_eq!(Rm::from_bits(i as u32), Some(*rm));
            assert_eq!(rm.bits(), i as u32);
        }
        for bad in [5, 6, 7, 8, u32::MAX] {
            assert_eq!(Rm::from_bits(bad), None);
        }
    }

    #[test]
    fn add_sub_f64() {
        assert_eq!(f64_add(ONE, ONE, Rne), (TWO, 0));
        // Signed zeros.
        for rm in ALL {
            let z = if rm == Rdn { S64 } else { 0 };
            assert_eq!(f64_add(0, S64, rm), (z, 0), "{rm:?}");
            assert_eq!(f64_add(S64, 0, rm), (z, 0), "{rm:?}");
            assert_eq!(f64_add(S64, S64, rm), (S64, 0), "{rm:?}");
            assert_eq!(f64_add(0, 0, rm), (0, 0), "{rm:?}");
            assert_eq!(f64_sub(ONE, ONE, rm), (z, 0), "{rm:?}");
            assert_eq!(f64_sub(0, 0, rm), (z, 0), "{rm:?}");
            assert_eq!(f64_add(ONE | S64, ONE, rm), (z, 0), "{rm:?}");
            assert_eq!(f64_add(0, LSUBD, rm), (LSUBD, 0), "{rm:?}");
        }
        // Infinities and NaNs.
        assert_eq!(f64_add(INFD, INFD | S64, Rne), (F64_NAN, NV));
        assert_eq!(f64_sub(INFD, INFD, Rne), (F64_NAN, NV));
        assert_eq!(f64_add(INFD, INFD, Rne), (INFD, 0));
        assert_eq!(f64_add(INFD, MAXD | S64, Rne), (INFD, 0));
        assert_eq!(f64_sub(ONE, INFD, Rtz), (INFD | S64, 0));
        assert_eq!(f64_add(QND, ONE, Rne), (F64_NAN, 0));
        assert_eq!(f64_add(ONE, QND | S64, Rne), (F64_NAN, 0));
        assert_eq!(f64_add(SND, ONE, Rne), (F64_NAN, NV));
        assert_eq!(f64_add(INFD, NSND, Rne), (F64_NAN, NV));
        assert_eq!(f64_add(QND, SND, Rup), (F64_NAN, NV));
        // Halfway cases: 1 + 2^-53 is a tie.
        let up = ONE + 1;
        for (rm, r) in [(Rne, ONE), (Rtz, ONE), (Rdn, ONE), (Rup, up), (Rmm, up)] {
            assert_eq!(f64_add(ONE, P2M53, rm), (r, NX), "{rm:?}");
            assert_eq!(
                f64_add(ONE | S64, P2M53 | S64, rm).0 ^ S64,
                match rm {
                    Rdn => up,
                    Rup => ONE,
                    _ => r,
                }
            );
        }
        assert_eq!(f64_add(ONE + 1, P2M53, Rne), (ONE + 2, NX)); // tie to even, upwards
        assert_eq!(f64_add(ONE + 1, P2M53, Rtz), (ONE + 1, NX));
        assert_eq!(f64_add(ONE, 1, Rne), (ONE, NX));
        assert_eq!(f64_add(ONE, 1, Rup), (ONE + 1, NX));
        assert_eq!(f64_sub(ONE, 1, Rdn), (ONE - 1, NX));
        assert_eq!(f64_sub(ONE, 1, Rne), (ONE, NX));
        // Subnormal sums are exact.
        assert_eq!(f64_add(1, 1, Rne), (2, 0));
        assert_eq!(f64_add(LSUBD, 1, Rne), (MIND, 0));
        assert_eq!(f64_sub(MIND, 1, Rdn), (LSUBD, 0));
        // Overflow.
        for (rm, r) in [
            (Rne, INFD),
            (Rtz, MAXD),
            (Rdn, MAXD),
            (Rup, INFD),
            (Rmm, INFD),
        ] {
            assert_eq!(f64_add(MAXD, MAXD, rm), (r, OF | NX), "{rm:?}");
        }
        for (rm, r) in [
            (Rne, INFD),
            (Rtz, MAXD),
            (Rdn, INFD),
            (Rup, MAXD),
            (Rmm, INFD),
        ] {
            assert_eq!(
                f64_add(MAXD | S64, MAXD | S64, rm),
                (r | S64, OF | NX),
                "{rm:?}"
            );
        }
        // MAX + half an ulp is the overflow threshold; less than that is not.
        let p2_970 = 0x7c90_0000_0000_0000;
        let p2_969 = 0x7c80_0000_0000_0000;
        assert_eq!(f64_add(MAXD, p2_970, Rne), (INFD, OF | NX));
        // Not an overflow in RTZ: rounded with an unbounded exponent it is still MAX.
        assert_eq!(f64_add(MAXD, p2_970, Rtz), (MAXD, NX));
        assert_eq!(f64_add(MAXD, p2_970, Rdn), (MAXD, NX));
        assert_eq!(f64_add(MAXD, p2_970, Rmm), (INFD, OF | NX));
        assert_eq!(f64_add(MAXD, p2_969, Rne), (MAXD, NX));
        assert_eq!(f64_add(MAXD, p2_969, Rup), (INFD, OF | NX));
        assert_eq!(f64_add(MAXD, p2_969, Rmm), (MAXD, NX));
    }

    #[test]
    fn add_sub_f32() {
        assert_eq!(f32_add(ONES, ONES, Rne), (TWOS, 0));
        for rm in ALL {
            let z = if rm == Rdn { S32 } else { 0 };
            assert_eq!(f32_add(0, S32, rm), (z, 0));
            assert_eq!(f32_add(S32, S32, rm), (S32, 0));
            assert_eq!(f32_sub(ONES, ONES, rm), (z, 0));
        }
        assert_eq!(f32_add(INFS, INFS | S32, Rne), (F32_NAN, NV));
        assert_eq!(f32_add(QNS, ONES, Rne), (F32_NAN, 0));
        assert_eq!(f32_add(SNS, QNS, Rne), (F32_NAN, NV));
        for (rm, r) in [
            (Rne, ONES),
            (Rtz, ONES),
            (Rdn, ONES),
            (Rup, ONES + 1),
            (Rmm, ONES + 1),
        ] {
            assert_eq!(f32_add(ONES, P2M24, rm), (r, NX), "{rm:?}");
        }
        assert_eq!(f32_add(ONES + 1, P2M24, Rne), (ONES + 2, NX));
        assert_eq!(f32_add(1, 1, Rne), (2, 0));
        assert_eq!(f32_add(MINS - 1, 1, Rne), (MINS, 0));
        for (rm, r) in [
            (Rne, INFS),
            (Rtz, MAXS),
            (Rdn, MAXS),
            (Rup, INFS),
            (Rmm, INFS),
        ] {
            assert_eq!(f32_add(MAXS, MAXS, rm), (r, OF | NX), "{rm:?}");
            assert_eq!(
                f32_sub(MAXS | S32, MAXS, rm).0 ^ S32,
                match rm {
                    Rdn => INFS,
                    Rup => MAXS,
                    _ => r,
                }
            );
        }
    }

    #[test]
    fn mul_f64() {
        assert_eq!(f64_mul(TWO, HALF, Rne), (ONE, 0));
        assert_eq!(f64_mul(INFD, 0, Rne), (F64_NAN, NV));
        assert_eq!(f64_mul(S64, INFD, Rne), (F64_NAN, NV));
        assert_eq!(f64_mul(INFD, ONE | S64, Rne), (INFD | S64, 0));
        assert_eq!(f64_mul(S64, ONE, Rne), (S64, 0));
        assert_eq!(f64_mul(S64, S64, Rne), (0, 0));
        assert_eq!(f64_mul(0, MAXD | S64, Rup), (S64, 0));
        assert_eq!(f64_mul(QND, 0, Rne), (F64_NAN, 0));
        assert_eq!(f64_mul(SND, ONE, Rne), (F64_NAN, NV));
        // Exact subnormal result: no underflow.
        assert_eq!(f64_mul(MIND, HALF, Rne), (MIND >> 1, 0));
        // (1 - 2^-53) * 2^-1022 = 2^-1022 - 2^-1075: tiny after rounding (it has 53 bits), a tie.
        let a = 0x3fef_ffff_ffff_ffff;
        for (rm, r) in [
            (Rne, MIND),
            (Rtz, LSUBD),
            (Rdn, LSUBD),
            (Rup, MIND),
            (Rmm, MIND),
        ] {
            assert_eq!(f64_mul(a, MIND, rm), (r, UF | NX), "{rm:?}");
        }
        // (1 + 2^-52)(2^-1022 - 2^-1074) = 2^-1022 - 2^-1126: rounds to 2^-1022 with an
        // unbounded exponent, so it is not tiny in the modes that round up.
        for (rm, r, f) in [
            (Rne, MIND, NX),
            (Rtz, LSUBD, UF | NX),
            (Rdn, LSUBD, UF | NX),
            (Rup, MIND, NX),
            (Rmm, MIND, NX),
        ] {
            assert_eq!(f64_mul(ONE + 1, LSUBD, rm), (r, f), "{rm:?}");
        }
        for (rm, r, f) in [
            (Rne, MIND, NX),
            (Rtz, LSUBD, UF | NX),
            (Rdn, MIND, NX),
            (Rup, LSUBD, UF | NX),
            (Rmm, MIND, NX),
        ] {
            assert_eq!(f64_mul(ONE + 1, LSUBD | S64, rm), (r | S64, f), "{rm:?}");
        }
        // Underflow to zero: 2^-1075 is a tie between 0 and 2^-1074.
        for (rm, r) in [(Rne, 0), (Rtz, 0), (Rdn, 0), (Rup, 1), (Rmm, 1)] {
            assert_eq!(f64_mul(1, HALF, rm), (r, UF | NX), "{rm:?}");
        }
        assert_eq!(
            f64_mul(1 | S64, 0x3fd0_0000_0000_0000, Rdn),
            (1 | S64, UF | NX)
        );
        assert_eq!(f64_mul(1 | S64, 0x3fd0_0000_0000_0000, Rne), (S64, UF | NX));
        assert_eq!(f64_mul(1, 1, Rne), (0, UF | NX));
        // Overflow.
        for (rm, r) in [
            (Rne, INFD),
            (Rtz, MAXD),
            (Rdn, MAXD),
            (Rup, INFD),
            (Rmm, INFD),
        ] {
            assert_eq!(f64_mul(MAXD, TWO, rm), (r, OF | NX), "{rm:?}");
        }
        assert_eq!(f64_mul(MAXD, ONE, Rne), (MAXD, 0));
        // 3 * (1/3 rounded) is inexact.
        assert_eq!(
            f64_mul(0x4008_0000_0000_0000, 0x3fd5_5555_5555_5555, Rne),
            (ONE, NX)
        );
    }

    #[test]
    fn mul_f32() {
        assert_eq!(f32_mul(TWOS, 0x3f00_0000, Rne), (ONES, 0));
        assert_eq!(f32_mul(INFS, S32, Rne), (F32_NAN, NV));
        assert_eq!(f32_mul(S32, ONES, Rne), (S32, 0));
        assert_eq!(f32_mul(MINS, 0x3f00_0000, Rne), (MINS >> 1, 0));
        let a = 0x3f7f_ffff; // 1 - 2^-24
        for (rm, r) in [
            (Rne, MINS),
            (Rtz, MINS - 1),
            (Rdn, MINS - 1),
            (Rup, MINS),
            (Rmm, MINS),
        ] {
            assert_eq!(f32_mul(a, MINS, rm), (r, UF | NX), "{rm:?}");
        }
        for (rm, r, f) in [
            (Rne, MINS, NX),
            (Rtz, MINS - 1, UF | NX),
            (Rdn, MINS - 1, UF | NX),
            (Rup, MINS, NX),
            (Rmm, MINS, NX),
        ] {
            assert_eq!(f32_mul(ONES + 1, MINS - 1, rm), (r, f), "{rm:?}");
        }
        for (rm, r) in [(Rne, 0), (Rtz, 0), (Rdn, 0), (Rup, 1), (Rmm, 1)] {
            assert_eq!(f32_mul(1, 0x3f00_0000, rm), (r, UF | NX), "{rm:?}");
        }
        for (rm, r) in [
            (Rne, INFS),
            (Rtz, MAXS),
            (Rdn, MAXS),
            (Rup, INFS),
            (Rmm, INFS),
        ] {
            assert_eq!(f32_mul(MAXS, TWOS, rm), (r, OF | NX), "{rm:?}");
        }
    }

    #[test]
    fn div_and_sqrt() {
        let three = d(3.0);
        for (rm, r) in [
            (Rne, 0x3fd5_5555_5555_5555),
            (Rtz, 0x3fd5_5555_5555_5555),
            (Rdn, 0x3fd5_5555_5555_5555),
            (Rup, 0x3fd5_5555_5555_5556),
            (Rmm, 0x3fd5_5555_5555_5555),
        ] {
            assert_eq!(f64_div(ONE, three, rm), (r, NX), "{rm:?}");
        }
        assert_eq!(f64_div(three, three, Rne), (ONE, 0));
        assert_eq!(f64_div(ONE, 0, Rne), (INFD, DZ));
        assert_eq!(f64_div(ONE | S64, 0, Rne), (INFD | S64, DZ));
        assert_eq!(f64_div(ONE, S64, Rtz), (INFD | S64, DZ));
        assert_eq!(f64_div(0, 0, Rne), (F64_NAN, NV));
        assert_eq!(f64_div(INFD, INFD | S64, Rne), (F64_NAN, NV));
        assert_eq!(f64_div(INFD, 0, Rne), (INFD, 0));
        assert_eq!(f64_div(ONE, INFD | S64, Rne), (S64, 0));
        assert_eq!(f64_div(S64, three, Rne), (S64, 0));
        assert_eq!(f64_div(QND, 0, Rne), (F64_NAN, 0));
        assert_eq!(f64_div(ONE, SND, Rne), (F64_NAN, NV));
        assert_eq!(f64_div(MAXD, HALF, Rne), (INFD, OF | NX));
        assert_eq!(f64_div(MAXD, HALF, Rtz), (MAXD, OF | NX));
        assert_eq!(f64_div(1, TWO, Rne), (0, UF | NX));
        assert_eq!(f64_div(1, TWO, Rup), (1, UF | NX));
        assert_eq!(f64_div(MIND, TWO, Rne), (MIND >> 1, 0));
        // 2^-1022 / (1 + 2^-52) is tiny and rounds to the largest subnormal.
        assert_eq!(f64_div(MIND, ONE + 1, Rne), (LSUBD, UF | NX));
        assert_eq!(f32_div(ONES, s(3.0), Rne), (0x3eaa_aaab, NX));
        assert_eq!(f32_div(ONES, s(3.0), Rtz), (0x3eaa_aaaa, NX));
        assert_eq!(f32_div(ONES, 0, Rne), (INFS, DZ));
        assert_eq!(f32_div(S32, 0, Rne), (F32_NAN, NV));
        assert_eq!(f32_div(1, TWOS, Rmm), (1, UF | NX));

        // sqrt
        for rm in ALL {
            assert_eq!(f64_sqrt(S64, rm), (S64, 0));
            assert_eq!(f64_sqrt(0, rm), (0, 0));
            assert_eq!(f64_sqrt(ONE | S64, rm), (F64_NAN, NV));
            assert_eq!(f64_sqrt(1 | S64, rm), (F64_NAN, NV));
            assert_eq!(f64_sqrt(INFD | S64, rm), (F64_NAN, NV));
            assert_eq!(f64_sqrt(INFD, rm), (INFD, 0));
            assert_eq!(f64_sqrt(QND | S64, rm), (F64_NAN, 0));
            assert_eq!(f64_sqrt(SND, rm), (F64_NAN, NV));
            assert_eq!(f64_sqrt(d(4.0), rm), (TWO, 0));
            assert_eq!(f64_sqrt(1, rm), (d(2f64.powi(-537)), 0));
            assert_eq!(f32_sqrt(S32, rm), (S32, 0));
            assert_eq!(f32_sqrt(ONES | S32, rm), (F32_NAN, NV));
            assert_eq!(f32_sqrt(SNS, rm), (F32_NAN, NV));
            assert_eq!(f32_sqrt(s(0.25), rm), (s(0.5), 0));
        }
        for (rm, r) in [
            (Rne, 0x3ff6_a09e_667f_3bcd),
            (Rtz, 0x3ff6_a09e_667f_3bcc),
            (Rdn, 0x3ff6_a09e_667f_3bcc),
            (Rup, 0x3ff6_a09e_667f_3bcd),
            (Rmm, 0x3ff6_a09e_667f_3bcd),
        ] {
            assert_eq!(f64_sqrt(TWO, rm), (r, NX), "{rm:?}");
        }
        for (rm, r) in [
            (Rne, 0x3fb5_04f3),
            (Rtz, 0x3fb5_04f3),
            (Rdn, 0x3fb5_04f3),
            (Rup, 0x3fb5_04f4),
            (Rmm, 0x3fb5_04f3),
        ] {
            assert_eq!(f32_sqrt(TWOS, rm), (r, NX), "{rm:?}");
        }
        assert_eq!(f32_sqrt(1, Rne).1, NX); // 2^-74.5
        assert_eq!(f32_sqrt(2, Rne), (s(2f32.powi(-74)), 0)); // 2^-148
    }

    #[test]
    fn fused_multiply_add() {
        // RISC-V: inf * 0 + qNaN is invalid.
        assert_eq!(f64_madd(INFD, 0, QND, Rne), (F64_NAN, NV));
        assert_eq!(f64_madd(S64, INFD | S64, QND, Rne), (F64_NAN, NV));
        assert_eq!(f64_nmadd(INFD, 0, QND, Rne), (F64_NAN, NV));
        assert_eq!(f32_madd(INFS, 0, QNS, Rne), (F32_NAN, NV));
        assert_eq!(f32_msub(0, INFS, QNS, Rtz), (F32_NAN, NV));
        assert_eq!(f64_madd(INFD, 0, ONE, Rne), (F64_NAN, NV));
        assert_eq!(f64_madd(ONE, ONE, QND, Rne), (F64_NAN, 0));
        assert_eq!(f64_madd(QND, 0, ONE, Rne), (F64_NAN, 0));
        assert_eq!(f64_madd(QND, INFD, ONE, Rne), (F64_NAN, 0));
        assert_eq!(f64_madd(ONE, ONE, SND, Rne), (F64_NAN, NV));
        assert_eq!(f64_madd(ONE, NSND, ONE, Rne), (F64_NAN, NV));
        assert_eq!(f64_madd(INFD, ONE, INFD | S64, Rne), (F64_NAN, NV));
        assert_eq!(f64_msub(INFD, ONE, INFD, Rne), (F64_NAN, NV));
        assert_eq!(f64_madd(INFD, ONE, INFD, Rne), (INFD, 0));
        assert_eq!(f64_madd(ONE, MAXD, INFD | S64, Rne), (INFD | S64, 0));
        assert_eq!(f64_nmsub(INFD, ONE, ONE, Rne), (INFD | S64, 0));
        assert_eq!(f32_madd(INFS, ONES, INFS | S32, Rne), (F32_NAN, NV));
        // Exact zero results.
        for rm in ALL {
            let z = if rm == Rdn { S64 } else { 0 };
            let zs = if rm == Rdn { S32 } else { 0 };
            assert_eq!(f64_madd(ONE, ONE, ONE | S64, rm), (z, 0), "{rm:?}");
            assert_eq!(f64_msub(ONE, ONE, ONE, rm), (z, 0), "{rm:?}");
            assert_eq!(f64_nmsub(ONE, ONE, ONE, rm), (z, 0), "{rm:?}");
            assert_eq!(f64_nmadd(ONE, ONE | S64, ONE, rm), (z, 0), "{rm:?}");
            assert_eq!(f64_madd(0, ONE, S64, rm), (z, 0), "{rm:?}");
            assert_eq!(f64_madd(S64, ONE, S64, rm), (S64, 0), "{rm:?}");
            assert_eq!(f64_madd(S64, S64, 0, rm), (0, 0), "{rm:?}");
            assert_eq!(f64_nmadd(0, ONE, 0, rm), (S64, 0), "{rm:?}");
            assert_eq!(f64_nmsub(0, ONE, 0, rm), (z, 0), "{rm:?}");
            assert_eq!(f64_madd(0, INFD - 1, ONE, rm), (ONE, 0), "{rm:?}");
            assert_eq!(f32_madd(ONES, ONES, ONES | S32, rm), (zs, 0), "{rm:?}");
            assert_eq!(f32_nmadd(0, ONES, 0, rm), (S32, 0), "{rm:?}");
            assert_eq!(f32_madd(0, ONES, S32, rm), (zs, 0), "{rm:?}");
        }
        // Single rounding: (1 + 2^-52)(1 - 2^-52) - 1 = -2^-104 exactly.
        assert_eq!(
            f64_madd(ONE + 1, ONE - 2, ONE | S64, Rne),
            (d(-(2f64.powi(-104))), 0)
        );
        assert_eq!(
            f32_madd(ONES + 1, ONES - 2, ONES | S32, Rne),
            (s(-(2f32.powi(-46))), 0)
        );
        assert_eq!(f64_madd(MAXD, TWO, MAXD | S64, Rne), (MAXD, 0));
        assert_eq!(f32_madd(MAXS, TWOS, MAXS | S32, Rne), (MAXS, 0));
        for (rm, r) in [
            (Rne, ONE),
            (Rtz, ONE),
            (Rdn, ONE),
            (Rup, ONE + 1),
            (Rmm, ONE + 1),
        ] {
            assert_eq!(f64_madd(ONE, ONE, P2M53, rm), (r, NX), "{rm:?}");
        }
        for (rm, r) in [
            (Rne, ONES),
            (Rtz, ONES),
            (Rdn, ONES),
            (Rup, ONES + 1),
            (Rmm, ONES + 1),
        ] {
            assert_eq!(f32_madd(ONES, ONES, P2M24, rm), (r, NX), "{rm:?}");
        }
        // Overflow and underflow.
        for (rm, r) in [
            (Rne, INFD),
            (Rtz, MAXD),
            (Rdn, MAXD),
            (Rup, INFD),
            (Rmm, INFD),
        ] {
            assert_eq!(f64_madd(MAXD, TWO, 0, rm), (r, OF | NX), "{rm:?}");
            assert_eq!(
                f64_nmadd(MAXD, TWO, S64, rm).0 ^ S64,
                match rm {
                    Rdn => INFD,
                    Rup => MAXD,
                    _ => r,
                }
            );
        }
        assert_eq!(f64_madd(MIND, HALF, 0, Rne), (MIND >> 1, 0));
        assert_eq!(f64_madd(1, HALF, 0, Rne), (0, UF | NX));
        assert_eq!(f64_madd(1, HALF, S64, Rmm), (1, UF | NX));
        assert_eq!(
            f64_madd(0x3fef_ffff_ffff_ffff, MIND, 0, Rne),
            (MIND, UF | NX)
        );
        assert_eq!(f64_madd(ONE + 1, LSUBD, 0, Rne), (MIND, NX));
        assert_eq!(f64_madd(ONE + 1, LSUBD, S64, Rtz), (LSUBD, UF | NX));
        // A tiny product next to a large addend.
        assert_eq!(f64_madd(1, 1, ONE, Rne), (ONE, NX));
        assert_eq!(f64_madd(1, 1, ONE, Rup), (ONE + 1, NX));
        assert_eq!(f64_madd(1 | S64, 1, ONE, Rtz), (ONE - 1, NX));
        assert_eq!(f32_madd(1, 1, ONES, Rdn), (ONES, NX));
    }

    #[test]
    fn min_max() {
        assert_eq!(f64_min(S64, 0), (S64, 0));
        assert_eq!(f64_min(0, S64), (S64, 0));
        assert_eq!(f64_max(S64, 0), (0, 0));
        assert_eq!(f64_max(0, S64), (0, 0));
        assert_eq!(f64_min(QND, ONE), (ONE, 0));
        assert_eq!(f64_max(ONE | S64, QND), (ONE | S64, 0));
        assert_eq!(f64_min(SND, ONE), (ONE, NV));
        assert_eq!(f64_max(ONE, NSND), (ONE, NV));
        assert_eq!(f64_min(QND, QND | S64), (F64_NAN, 0));
        assert_eq!(f64_max(SND, QND), (F64_NAN, NV));
        assert_eq!(f64_min(INFD | S64, ONE), (INFD | S64, 0));
        assert_eq!(f64_max(INFD | S64, MAXD | S64), (MAXD | S64, 0));
        assert_eq!(f64_min(ONE | S64, TWO | S64), (TWO | S64, 0));
        assert_eq!(f64_max(1, 0), (1, 0));
        assert_eq!(f32_min(S32, 0), (S32, 0));
        assert_eq!(f32_max(S32, 0), (0, 0));
        assert_eq!(f32_min(QNS, ONES), (ONES, 0));
        assert_eq!(f32_min(SNS, ONES), (ONES, NV));
        assert_eq!(f32_max(SNS, SNS), (F32_NAN, NV));
        assert_eq!(f32_max(ONES | S32, TWOS | S32), (ONES | S32, 0));
    }

    #[test]
    fn comparisons() {
        assert_eq!(f64_eq(ONE, ONE), (true, 0));
        assert_eq!(f64_eq(0, S64), (true, 0));
        assert_eq!(f64_lt(S64, 0), (false, 0));
        assert_eq!(f64_le(S64, 0), (true, 0));
        assert_eq!(f64_le(0, S64), (true, 0));
        assert_eq!(f64_lt(ONE | S64, 1), (true, 0));
        assert_eq!(f64_lt(INFD | S64, MAXD | S64), (true, 0));
        assert_eq!(f64_lt(TWO | S64, ONE | S64), (true, 0));
        assert_eq!(f64_lt(ONE, ONE), (false, 0));
        assert_eq!(f64_le(TWO, ONE), (false, 0));
        assert_eq!(f64_eq(QND, ONE), (false, 0));
        assert_eq!(f64_eq(QND, QND), (false, 0));
        assert_eq!(f64_eq(SND, ONE), (false, NV));
        assert_eq!(f64_eq(ONE, NSND), (false, NV));
        assert_eq!(f64_lt(QND, ONE), (false, NV));
        assert_eq!(f64_le(ONE, QND), (false, NV));
        assert_eq!(f64_le(SND, SND), (false, NV));
        assert_eq!(f32_eq(0, S32), (true, 0));
        assert_eq!(f32_eq(QNS, QNS), (false, 0));
        assert_eq!(f32_eq(SNS, ONES), (false, NV));
        assert_eq!(f32_lt(ONES, QNS), (false, NV));
        assert_eq!(f32_le(S32, 0), (true, 0));
        assert_eq!(f32_lt(ONES | S32, S32), (true, 0));
        assert_eq!(f32_lt(1, 2), (true, 0));
    }

    #[test]
    fn classify_and_sign_injection() {
        let cases64 = [
            (INFD | S64, 0),
            (ONE | S64, 1),
            (1 | S64, 2),
            (S64, 3),
            (0, 4),
            (LSUBD, 5),
            (MIND, 6),
            (INFD, 7),
            (SND, 8),
            (NSND, 8),
            (QND, 9),
            (F64_NAN | S64, 9),
        ];
        for (x, bit) in cases64 {
            assert_eq!(f64_class(x), 1 << bit, "{x:#x}");
        }
        let cases32 = [
            (INFS | S32, 0),
            (MAXS | S32, 1),
            (1 | S32, 2),
            (S32, 3),
            (0, 4),
            (MINS - 1, 5),
            (MINS, 6),
            (INFS, 7),
            (SNS, 8),
            (F32_NAN, 9),
        ];
        for (x, bit) in cases32 {
            assert_eq!(f32_class(x), 1 << bit, "{x:#x}");
        }
        assert_eq!(f64_sgnj(ONE, S64), ONE | S64);
        assert_eq!(f64_sgnjn(ONE, S64), ONE);
        assert_eq!(f64_sgnjx(ONE | S64, S64), ONE);
        assert_eq!(f32_sgnj(ONES | S32, 0), ONES);
        assert_eq!(f32_sgnjn(ONES, 0), ONES | S32);
        assert_eq!(f32_sgnjx(ONES, S32), ONES | S32);
    }

    #[test]
    fn float_to_int() {
        let p31 = d(2147483648.0);
        assert_eq!(f64_to_i32(p31, Rne), (i32::MAX, NV));
        assert_eq!(f64_to_i32(p31 | S64, Rne), (i32::MIN, 0));
        assert_eq!(f64_to_i32(d(-2147483649.0), Rne), (i32::MIN, NV));
        assert_eq!(f64_to_i32(d(2147483647.0), Rne), (i32::MAX, 0));
        for (rm, r) in [
            (Rne, Some(i32::MIN)),
            (Rtz, Some(i32::MIN)),
            (Rdn, None),
            (Rup, Some(i32::MIN)),
            (Rmm, None),
        ] {
            let want = r.map_or((i32::MIN, NV), |v| (v, NX));
            assert_eq!(f64_to_i32(d(-2147483648.5), rm), want, "{rm:?}");
        }
        for (rm, r) in [
            (Rne, None),
            (Rtz, Some(i32::MAX)),
            (Rdn, Some(i32::MAX)),
            (Rup, None),
            (Rmm, None),
        ] {
            let want = r.map_or((i32::MAX, NV), |v| (v, NX));
            assert_eq!(f64_to_i32(d(2147483647.5), rm), want, "{rm:?}");
        }
        for rm in ALL {
            assert_eq!(f64_to_i32(QND, rm), (i32::MAX, NV));
            assert_eq!(f64_to_i32(F64_NAN | S64, rm), (i32::MAX, NV));
            assert_eq!(f64_to_u32(F64_NAN | S64, rm), (u32::MAX, NV));
            assert_eq!(f64_to_i64(SND, rm), (i64::MAX, NV));
            assert_eq!(f64_to_u64(QND, rm), (u64::MAX, NV));
            assert_eq!(f32_to_i32(QNS, rm), (i32::MAX, NV));
            assert_eq!(f32_to_u64(SNS | S32, rm), (u64::MAX, NV));
            assert_eq!(f64_to_i32(INFD, rm), (i32::MAX, NV));
            assert_eq!(f64_to_i32(INFD | S64, rm), (i32::MIN, NV));
            assert_eq!(f64_to_u32(INFD | S64, rm), (0, NV));
            assert_eq!(f64_to_u64(INFD, rm), (u64::MAX, NV));
            assert_eq!(f32_to_i64(INFS | S32, rm), (i64::MIN, NV));
            assert_eq!(f64_to_u32(S64, rm), (0, 0));
            assert_eq!(f64_to_u32(ONE | S64, rm), (0, NV));
            assert_eq!(f32_to_u32(ONES | S32, rm), (0, NV));
            assert_eq!(f64_to_u64(ONE | S64, rm), (0, NV));
            assert_eq!(f64_to_u32(d(4294967295.0), rm), (u32::MAX, 0));
            assert_eq!(f64_to_u32(d(4294967296.0), rm), (u32::MAX, NV));
            assert_eq!(f64_to_i64(d(9223372036854775808.0), rm), (i64::MAX, NV));
            assert_eq!(f64_to_i64(d(-9223372036854775808.0), rm), (i64::MIN, 0));
            assert_eq!(
                f64_to_i64(d(9223372036854774784.0), rm),
                (9223372036854774784, 0)
            );
            assert_eq!(f64_to_u64(d(18446744073709551616.0), rm), (u64::MAX, NV));
            assert_eq!(
                f64_to_u64(d(18446744073709549568.0), rm),
                (18446744073709549568, 0)
            );
            assert_eq!(f32_to_i32(s(2147483648.0), rm), (i32::MAX, NV));
            assert_eq!(f32_to_i32(s(-2147483648.0), rm), (i32::MIN, 0));
            assert_eq!(f32_to_u32(s(4294967296.0), rm), (u32::MAX, NV));
            assert_eq!(f32_to_u32(s(4294967040.0), rm), (4294967040, 0));
            assert_eq!(f32_to_i64(s(9223372036854775808.0), rm), (i64::MAX, NV));
            assert_eq!(f32_to_u64(s(18446744073709551616.0), rm), (u64::MAX, NV));
            assert_eq!(f64_to_i64(MAXD | S64, rm), (i64::MIN, NV));
        }
        // -0.5 in each mode.
        for (rm, i, u) in [
            (Rne, (0, NX), (0, NX)),
            (Rtz, (0, NX), (0, NX)),
            (Rdn, (-1, NX), (0, NV)),
            (Rup, (0, NX), (0, NX)),
            (Rmm, (-1, NX), (0, NV)),
        ] {
            assert_eq!(f64_to_i32(d(-0.5), rm), i, "{rm:?}");
            assert_eq!(f32_to_i32(s(-0.5), rm), i, "{rm:?}");
            assert_eq!(f64_to_i64(d(-0.5), rm), (i.0 as i64, i.1), "{rm:?}");
            assert_eq!(f64_to_u32(d(-0.5), rm), u, "{rm:?}");
            assert_eq!(f32_to_u32(s(-0.5), rm), u, "{rm:?}");
            assert_eq!(f64_to_u64(d(-0.5), rm), (u.0 as u64, u.1), "{rm:?}");
        }
        for (rm, a, b, c) in [
            (Rne, 2, 2, -2),
            (Rtz, 2, 1, -1),
            (Rdn, 2, 1, -2),
            (Rup, 3, 2, -1),
            (Rmm, 3, 2, -2),
        ] {
            assert_eq!(f64_to_i32(d(2.5), rm), (a, NX), "{rm:?}");
            assert_eq!(f32_to_i64(s(1.5), rm), (b, NX), "{rm:?}");
            assert_eq!(f64_to_i64(d(-1.5), rm), (c, NX), "{rm:?}");
        }
        assert_eq!(f64_to_u32(d(4294967295.5), Rne), (u32::MAX, NV));
        assert_eq!(f64_to_u32(d(4294967295.5), Rtz), (u32::MAX, NX));
        assert_eq!(f64_to_u32(d(4294967295.5), Rdn), (u32::MAX, NX));
        assert_eq!(f64_to_u32(d(4294967295.4), Rne), (u32::MAX, NX));
        assert_eq!(f32_to_i32(1, Rne), (0, NX));
        assert_eq!(f32_to_i32(1, Rup), (1, NX));
        assert_eq!(f32_to_i32(1 | S32, Rdn), (-1, NX));
        assert_eq!(f64_to_u64(1, Rup), (1, NX));
        assert_eq!(f64_to_u64(1, Rmm), (0, NX));
    }

    #[test]
    fn int_to_float() {
        for rm in ALL {
            assert_eq!(i32_to_f64(i32::MIN, rm), (d(-2147483648.0), 0));
            assert_eq!(u32_to_f64(u32::MAX, rm), (d(4294967295.0), 0));
            assert_eq!(i64_to_f64(0, rm), (0, 0));
            assert_eq!(i32_to_f32(0, rm), (0, 0));
            assert_eq!(i64_to_f64(-1, rm), (ONE | S64, 0));
            assert_eq!(i64_to_f64(i64::MIN, rm), (d(-9223372036854775808.0), 0));
            assert_eq!(i64_to_f32(i64::MIN, rm), (s(-9223372036854775808.0), 0));
            assert_eq!(u64_to_f64(1 << 63, rm), (d(9223372036854775808.0), 0));
            assert_eq!(i32_to_f32(16777216, rm), (0x4b80_0000, 0));
        }
        let p63 = d(9223372036854775808.0);
        for (rm, r) in [
            (Rne, p63),
            (Rtz, p63 - 1),
            (Rdn, p63 - 1),
            (Rup, p63),
            (Rmm, p63),
        ] {
            assert_eq!(i64_to_f64(i64::MAX, rm), (r, NX), "{rm:?}");
            assert_eq!(
                i64_to_f64(-i64::MAX, rm).0 ^ S64,
                match rm {
                    Rdn => p63,
                    Rup => p63 - 1,
                    _ => r,
                }
            );
        }
        let p64 = d(18446744073709551616.0);
        for (rm, r) in [
            (Rne, p64),
            (Rtz, p64 - 1),
            (Rdn, p64 - 1),
            (Rup, p64),
            (Rmm, p64),
        ] {
            assert_eq!(u64_to_f64(u64::MAX, rm), (r, NX), "{rm:?}");
        }
        let p32 = s(4294967296.0);
        for (rm, r) in [
            (Rne, p32),
            (Rtz, p32 - 1),
            (Rdn, p32 - 1),
            (Rup, p32),
            (Rmm, p32),
        ] {
            assert_eq!(u32_to_f32(u32::MAX, rm), (r, NX), "{rm:?}");
        }
        // 2^24 + 1 is a tie.
        let p24 = 0x4b80_0000;
        for (rm, r) in [
            (Rne, p24),
            (Rtz, p24),
            (Rdn, p24),
            (Rup, p24 + 1),
            (Rmm, p24 + 1),
        ] {
            assert_eq!(i32_to_f32(16777217, rm), (r, NX), "{rm:?}");
            assert_eq!(
                i32_to_f32(-16777217, rm).0 ^ S32,
                match rm {
                    Rdn => p24 + 1,
                    Rup => p24,
                    _ => r,
                }
            );
        }
        assert_eq!(i32_to_f32(16777219, Rne), (p24 + 2, NX)); // tie to even, upwards
        assert_eq!(u64_to_f32(u64::MAX, Rtz), (0x5f7f_ffff, NX));
        assert_eq!(u64_to_f32(1, Rtz), (ONES, 0));
    }

    #[test]
    fn format_conversions() {
        for (rm, r) in [
            (Rne, INFS),
            (Rtz, MAXS),
            (Rdn, MAXS),
            (Rup, INFS),
            (Rmm, INFS),
        ] {
            assert_eq!(f64_to_f32(d(1e300), rm), (r, OF | NX), "{rm:?}");
            assert_eq!(f64_to_f32(MAXD, rm), (r, OF | NX), "{rm:?}");
        }
        assert_eq!(f64_to_f32(d(-1e300), Rdn), (INFS | S32, OF | NX));
        assert_eq!(f64_to_f32(d(-1e300), Rup), (MAXS | S32, OF | NX));
        // 2^-150 is a tie between 0 and 2^-149.
        let p150 = d(2f64.powi(-150));
        for (rm, r) in [(Rne, 0), (Rtz, 0), (Rdn, 0), (Rup, 1), (Rmm, 1)] {
            assert_eq!(f64_to_f32(p150, rm), (r, UF | NX), "{rm:?}");
        }
        assert_eq!(f64_to_f32(p150 | S64, Rdn), (1 | S32, UF | NX));
        assert_eq!(f64_to_f32(p150 | S64, Rne), (S32, UF | NX));
        assert_eq!(f64_to_f32(1, Rne), (0, UF | NX));
        assert_eq!(f64_to_f32(d(2f64.powi(-149)), Rne), (1, 0));
        assert_eq!(f64_to_f32(d(2f64.powi(-127)), Rne), (MINS >> 1, 0));
        // (1 - 2^-25) * 2^-126 (25 ones): to 24 bits with an unbounded exponent RNE rounds it
        // up to 2^-126 (not tiny), RTZ down to (1 - 2^-24) * 2^-126 (tiny).
        let x = d((1.0 - 2f64.powi(-25)) * 2f64.powi(-126));
        assert_eq!(f64_to_f32(x, Rne), (MINS, NX));
        assert_eq!(f64_to_f32(x, Rtz), (MINS - 1, UF | NX));
        // (1 - 2^-24) * 2^-126 (24 ones) is tiny in every mode; bounded, it is a tie.
        let x = d((1.0 - 2f64.powi(-24)) * 2f64.powi(-126));
        assert_eq!(f64_to_f32(x, Rne), (MINS, UF | NX));
        assert_eq!(f64_to_f32(x, Rmm), (MINS, UF | NX));
        assert_eq!(f64_to_f32(x, Rdn), (MINS - 1, UF | NX));
        let one_tie = d(1.0 + 2f64.powi(-24));
        for (rm, r) in [
            (Rne, ONES),
            (Rtz, ONES),
            (Rdn, ONES),
            (Rup, ONES + 1),
            (Rmm, ONES + 1),
        ] {
            assert_eq!(f64_to_f32(one_tie, rm), (r, NX), "{rm:?}");
        }
        assert_eq!(f64_to_f32(SND, Rne), (F32_NAN, NV));
        assert_eq!(f64_to_f32(QND | S64, Rne), (F32_NAN, 0));
        assert_eq!(f64_to_f32(INFD | S64, Rtz), (INFS | S32, 0));
        assert_eq!(f64_to_f32(S64, Rne), (S32, 0));
        assert_eq!(f64_to_f32(ONE, Rup), (ONES, 0));
        assert_eq!(f32_to_f64(SNS), (F64_NAN, NV));
        assert_eq!(f32_to_f64(QNS | S32), (F64_NAN, 0));
        assert_eq!(f32_to_f64(1), (d(2f64.powi(-149)), 0));
        assert_eq!(f32_to_f64(MAXS | S32), (d(-(f32::MAX as f64)), 0));
        assert_eq!(f32_to_f64(INFS), (INFD, 0));
        assert_eq!(f32_to_f64(S32), (S64, 0));
    }

    // ---------------------------------------------------------------- random operands

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            // splitmix64
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        fn coin(&mut self) -> bool {
            self.next() & 1 != 0
        }
    }

    /// A reference description of a format.
    #[derive(Clone, Copy)]
    struct RF {
        p: u32,
        ebits: u32,
    }
    const RF32: RF = RF { p: 24, ebits: 8 };
    const RF64: RF = RF { p: 53, ebits: 11 };
    impl RF {
        fn bias(self) -> i64 {
            (1 << (self.ebits - 1)) - 1
        }
        fn emaxb(self) -> u64 {
            (1 << self.ebits) - 1
        }
        fn sign(self) -> u64 {
            1 << (self.p - 1 + self.ebits)
        }
        fn frac_mask(self) -> u64 {
            (1 << (self.p - 1)) - 1
        }
        fn is_finite(self, x: u64) -> bool {
            (x >> (self.p - 1)) & self.emaxb() != self.emaxb()
        }
    }

    /// A random operand biased towards special exponents and significands.
    fn gen_op(r: &mut Rng, f: RF, finite: bool) -> u64 {
        let bias = f.bias() as u64;
        let emaxb = f.emaxb();
        let e = match r.below(16) {
            0 => 0,
            1 => 1,
            2 => 2,
            3 if !finite => emaxb,
            4 => emaxb - 1,
            5 => emaxb - 2,
            6 => bias - 2 + r.below(5),
            7 => bias - f.p as u64 - 2 + r.below(5),
            8 => r.below(f.p as u64 + 3),
            9 => emaxb - 1 - r.below(f.p as u64 + 3),
            _ => r.below(emaxb),
        };
        let fm = f.frac_mask();
        let m = match r.below(10) {
            0 => 0,
            1 => fm,
            2 => 1,
            3 => 1 << (f.p - 2),
            4 => r.next() & r.next() & r.next() & fm,
            5 => fm & !(r.next() & r.next()),
            6 => (r.next() & fm) & !((1 << r.below(f.p as u64)) - 1),
            _ => r.next() & fm,
        };
        let sign = if r.coin() { f.sign() } else { 0 };
        sign | (e << (f.p - 1)) | m
    }

    /// `x` nudged by a few units in the last place, possibly with its sign flipped.
    fn nudge(r: &mut Rng, f: RF, x: u64) -> u64 {
        let mag = x & !f.sign();
        let delta = r.below(5);
        let mag = if r.coin() {
            mag.saturating_add(delta)
        } else {
            mag.saturating_sub(delta)
        };
        let mag = mag.min(f.sign() - 1);
        let sign = if r.below(4) == 0 {
            x & f.sign()
        } else {
            (x ^ f.sign()) & f.sign()
        };
        sign | mag
    }

    fn operand_pair(r: &mut Rng, f: RF, finite: bool) -> (u64, u64) {
        let a = gen_op(r, f, finite);
        let b = match r.below(4) {
            0 => nudge(r, f, a),
            _ => gen_op(r, f, finite),
        };
        if finite && !f.is_finite(b) {
            (a, a)
        } else {
            (a, b)
        }
    }

    /// Three fma operands; often the addend nearly cancels the product.
    fn fma_operands(r: &mut Rng, f: RF, finite: bool) -> (u64, u64, u64) {
        let a = gen_op(r, f, finite);
        let b = gen_op(r, f, finite);
        let c = match r.below(3) {
            0 => {
                let p = if f.p == 53 {
                    (f64::from_bits(a) * f64::from_bits(b)).to_bits()
                } else {
                    (f32::from_bits(a as u32) * f32::from_bits(b as u32)).to_bits() as u64
                };
                if f.is_finite(p) {
                    nudge(r, f, p)
                } else {
                    gen_op(r, f, finite)
                }
            }
            1 => {
                // Cancel the rounded product exactly: the result is its rounding error.
                let p = if f.p == 53 {
                    (f64::from_bits(a) * f64::from_bits(b)).to_bits()
                } else {
                    (f32::from_bits(a as u32) * f32::from_bits(b as u32)).to_bits() as u64
                };
                if f.is_finite(p) {
                    p ^ f.sign()
                } else {
                    gen_op(r, f, finite)
                }
            }
            _ => gen_op(r, f, finite),
        };
        (a, b, c)
    }

    fn iterations(n: u64) -> u64 {
        if cfg!(debug_assertions) { n / 20 } else { n }
    }

    // ---------------------------------------------------------------- fast path == soft path

    #[test]
    fn fast_path_matches_soft_path_f64() {
        let mut r = Rng(0x5eed_0001);
        let n = iterations(1_000_000);
        for _ in 0..n {
            let (a, b) = operand_pair(&mut r, RF64, false);
            assert_eq!(f64_add(a, b, Rne), add::<D>(a, b, Rne), "add {a:#x} {b:#x}");
            assert_eq!(
                f64_sub(a, b, Rne),
                add::<D>(a, b ^ S64, Rne),
                "sub {a:#x} {b:#x}"
            );
            assert_eq!(f64_mul(a, b, Rne), mul::<D>(a, b, Rne), "mul {a:#x} {b:#x}");
            assert_eq!(f64_div(a, b, Rne), div::<D>(a, b, Rne), "div {a:#x} {b:#x}");
            assert_eq!(f64_sqrt(a, Rne), sqrt::<D>(a, Rne), "sqrt {a:#x}");
            assert_eq!(
                f64_to_f32(a, Rne),
                soft32(convert::<D, S>(a, Rne)),
                "cvt {a:#x}"
            );
            let (a, b, c) = fma_operands(&mut r, RF64, false);
            assert_eq!(
                f64_madd(a, b, c, Rne),
                fma::<D>(a, b, c, Rne),
                "fma {a:#x} {b:#x} {c:#x}"
            );
            let x = r.next() >> r.below(64);
            let neg = r.coin();
            let i = if neg {
                (x as i64).wrapping_neg()
            } else {
                x as i64
            };
            assert_eq!(
                i64_to_f64(i, Rne),
                from_int::<D>(i < 0, i.unsigned_abs(), Rne)
            );
            assert_eq!(u64_to_f64(x, Rne), from_int::<D>(false, x, Rne));
        }
    }

    #[test]
    fn fast_path_matches_soft_path_f32() {
        let mut r = Rng(0x5eed_0002);
        let n = iterations(1_000_000);
        for _ in 0..n {
            let (a, b) = operand_pair(&mut r, RF32, false);
            let (a, b) = (a as u32, b as u32);
            let (a6, b6) = (a as u64, b as u64);
            assert_eq!(
                f32_add(a, b, Rne),
                soft32(add::<S>(a6, b6, Rne)),
                "add {a:#x} {b:#x}"
            );
            assert_eq!(
                f32_mul(a, b, Rne),
                soft32(mul::<S>(a6, b6, Rne)),
                "mul {a:#x} {b:#x}"
            );
            assert_eq!(
                f32_div(a, b, Rne),
                soft32(div::<S>(a6, b6, Rne)),
                "div {a:#x} {b:#x}"
            );
            assert_eq!(f32_sqrt(a, Rne), soft32(sqrt::<S>(a6, Rne)), "sqrt {a:#x}");
            assert_eq!(f32_to_f64(a), convert::<S, D>(a6, Rne), "cvt {a:#x}");
            let (a, b, c) = fma_operands(&mut r, RF32, false);
            assert_eq!(
                f32_madd(a as u32, b as u32, c as u32, Rne),
                soft32(fma::<S>(a, b, c, Rne)),
                "fma {a:#x} {b:#x} {c:#x}"
            );
            let x = r.next() >> r.below(64);
            let i = x as i64;
            assert_eq!(
                i64_to_f32(i, Rne),
                soft32(from_int::<S>(i < 0, i.unsigned_abs(), Rne))
            );
            assert_eq!(u64_to_f32(x, Rne), soft32(from_int::<S>(false, x, Rne)));
            let w = x as u32;
            assert_eq!(
                u32_to_f32(w, Rne),
                soft32(from_int::<S>(false, w as u64, Rne))
            );
            let w = w as i32;
            assert_eq!(
                i32_to_f32(w, Rne),
                soft32(from_int::<S>(w < 0, w.unsigned_abs() as u64, Rne))
            );
        }
    }

    #[test]
    fn never_panics_on_raw_bits() {
        let mut r = Rng(0x5eed_0003);
        for _ in 0..iterations(100_000) {
            let (a, b, c) = (r.next(), r.next(), r.next());
            let (x, y, z) = (a as u32, b as u32, c as u32);
            for rm in ALL {
                let _ = (f64_add(a, b, rm), f64_mul(a, b, rm), f64_div(a, b, rm));
                let _ = (f64_sqrt(a, rm), f64_madd(a, b, c, rm), f64_to_f32(a, rm));
                let _ = (f64_to_i32(a, rm), f64_to_u32(a, rm), f64_to_i64(a, rm));
                let _ = (
                    f64_to_u64(a, rm),
                    i64_to_f64(a as i64, rm),
                    u64_to_f32(a, rm),
                );
                let _ = (f32_add(x, y, rm), f32_mul(x, y, rm), f32_div(x, y, rm));
                let _ = (f32_sqrt(x, rm), f32_nmsub(x, y, z, rm), f32_to_u64(x, rm));
                let _ = (
                    f32_to_i32(x, rm),
                    i32_to_f32(x as i32, rm),
                    f32_to_u32(x, rm),
                );
            }
            let _ = (
                f64_min(a, b),
                f64_le(a, b),
                f64_class(a),
                f32_max(x, y),
                f32_eq(x, y),
            );
        }
    }

    // ---------------------------------------------------------------- independent reference
    //
    // Exact big-integer arithmetic: every finite operand is `M * 2^E` with an integer M, sums
    // and products are formed exactly (quotients with > 64 correct bits and a sticky bit), and
    // `ref_round` rounds to the format from first principles, including tininess after
    // rounding judged on a separate unbounded-exponent rounding.

    #[derive(Clone, Debug)]
    struct Big(Vec<u64>);

    impl Big {
        fn from_u128(x: u128) -> Big {
            let mut b = Big(vec![x as u64, (x >> 64) as u64]);
            b.trim();
            b
        }
        fn trim(&mut self) {
            while self.0.last() == Some(&0) {
                self.0.pop();
            }
        }
        fn is_zero(&self) -> bool {
            self.0.is_empty()
        }
        fn bits(&self) -> u64 {
            match self.0.last() {
                None => 0,
                Some(top) => (self.0.len() as u64 - 1) * 64 + 64 - top.leading_zeros() as u64,
            }
        }
        fn bit(&self, i: u64) -> bool {
            let w = (i / 64) as usize;
            self.0.get(w).is_some_and(|x| (x >> (i % 64)) & 1 == 1)
        }
        fn any_below(&self, i: u64) -> bool {
            (0..i).any(|k| self.bit(k))
        }
        fn low_u128_after_shr(&self, n: u64) -> u128 {
            (0..128)
                .filter(|k| self.bit(n + k))
                .fold(0, |acc, k| acc | 1u128 << k)
        }
        fn shl(&self, n: u64) -> Big {
            let (w, b) = ((n / 64) as usize, n % 64);
            let mut out = vec![0u64; self.0.len() + w + 1];
            for (i, &x) in self.0.iter().enumerate() {
                out[i + w] |= x << b;
                if b > 0 {
                    out[i + w + 1] |= x >> (64 - b);
                }
            }
            let mut r = Big(out);
            r.trim();
            r
        }
        fn add(&self, o: &Big) -> Big {
            let n = self.0.len().max(o.0.len()) + 1;
            let mut out = vec![0u64; n];
            let mut carry = 0u128;
            for (i, slot) in out.iter_mut().enumerate() {
                let s = *self.0.get(i).unwrap_or(&0) as u128
                    + *o.0.get(i).unwrap_or(&0) as u128
                    + carry;
                *slot = s as u64;
                carry = s >> 64;
            }
            let mut r = Big(out);
            r.trim();
            r
        }
        /// self - o, for self >= o.
        fn sub(&self, o: &Big) -> Big {
            let mut out = self.0.clone();
            let mut borrow = 0i128;
            for (i, slot) in out.iter_mut().enumerate() {
                let v = *slot as i128 - *o.0.get(i).unwrap_or(&0) as i128 - borrow;
                borrow = (v < 0) as i128;
                *slot = v.rem_euclid(1 << 64) as u64;
            }
            assert_eq!(borrow, 0);
            let mut r = Big(out);
            r.trim();
            r
        }
        fn cmp(&self, o: &Big) -> Ordering {
            self.0
                .len()
                .cmp(&o.0.len())
                .then_with(|| self.0.iter().rev().cmp(o.0.iter().rev()))
        }
        fn mul(&self, o: &Big) -> Big {
            let mut out = vec![0u64; self.0.len() + o.0.len() + 1];
            for (i, &x) in self.0.iter().enumerate() {
                let mut carry = 0u128;
                for (j, &y) in o.0.iter().enumerate() {
                    let t = x as u128 * y as u128 + out[i + j] as u128 + carry;
                    out[i + j] = t as u64;
                    carry = t >> 64;
                }
                let mut k = i + o.0.len();
                while carry != 0 {
                    let t = out[k] as u128 + carry;
                    out[k] = t as u64;
                    carry = t >> 64;
                    k += 1;
                }
            }
            let mut r = Big(out);
            r.trim();
            r
        }
    }

    fn bitlen(x: u128) -> i64 {
        128 - x.leading_zeros() as i64
    }

    /// Rounds `(-1)^neg * m * 2^e` (m > 0) to format `f`.
    fn ref_round(f: RF, neg: bool, m: &Big, e: i64, rm: Rm) -> (u64, u8) {
        assert!(!m.is_zero());
        let p = f.p as i64;
        let bias = f.bias();
        let (emin, emax) = (1 - bias, bias);
        let lead = e + m.bits() as i64 - 1;
        // Round to a multiple of 2^q: (integer multiple, inexact).
        let round_at = |q: i64| -> (u128, bool) {
            if q <= e {
                (m.shl((e - q) as u64).low_u128_after_shr(0), false)
            } else {
                let sh = (q - e) as u64;
                let n = m.low_u128_after_shr(sh);
                let half = m.bit(sh - 1);
                let sticky = m.any_below(sh - 1);
                let up = match rm {
                    Rne => half && (sticky || n & 1 == 1),
                    Rtz => false,
                    Rdn => neg && (half || sticky),
                    Rup => !neg && (half || sticky),
                    Rmm => half,
                };
                (n + up as u128, half || sticky)
            }
        };
        let qu = lead - (p - 1);
        let (nu, _) = round_at(qu);
        let tiny = qu + bitlen(nu) - 1 < emin;
        let overflow = qu + bitlen(nu) - 1 > emax;
        let sign = if neg { f.sign() } else { 0 };
        if overflow {
            let to_inf = match rm {
                Rne | Rmm => true,
                Rtz => false,
                Rdn => neg,
                Rup => !neg,
            };
            let inf = f.emaxb() << (p - 1);
            return (sign | if to_inf { inf } else { inf - 1 }, OF | NX);
        }
        let q = qu.max(emin - (p - 1));
        let (n, inexact) = round_at(q);
        let (n, q) = if bitlen(n) > p {
            (n >> 1, q + 1)
        } else {
            (n, q)
        };
        let bits = if bitlen(n) == p {
            (((q + p - 1 + bias) as u64) << (p - 1)) | (n as u64 & f.frac_mask())
        } else {
            assert_eq!(q, emin - (p - 1));
            n as u64
        };
        let flags = if inexact {
            NX | if tiny { UF } else { 0 }
        } else {
            0
        };
        (sign | bits, flags)
    }

    /// A finite operand as (sign, integer significand, exponent of its unit).
    fn dec(f: RF, x: u64) -> (bool, u128, i64) {
        let be = (x >> (f.p - 1)) & f.emaxb();
        let frac = (x & f.frac_mask()) as u128;
        let p = f.p as i64;
        if be == 0 {
            (x & f.sign() != 0, frac, 1 - f.bias() - (p - 1))
        } else {
            (
                x & f.sign() != 0,
                frac | 1 << (p - 1),
                be as i64 - f.bias() - (p - 1),
            )
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn ref_sum(f: RF, sa: bool, ma: Big, ea: i64, sb: bool, mb: Big, eb: i64, rm: Rm) -> (u64, u8) {
        let e0 = ea.min(eb);
        let a = ma.shl((ea - e0) as u64);
        let b = mb.shl((eb - e0) as u64);
        let (neg, m) = if sa == sb {
            (sa, a.add(&b))
        } else {
            match a.cmp(&b) {
                Ordering::Greater => (sa, a.sub(&b)),
                Ordering::Less => (sb, b.sub(&a)),
                Ordering::Equal => (false, Big(vec![])),
            }
        };
        if m.is_zero() {
            let neg = if sa == sb { sa } else { rm == Rdn };
            return (if neg { f.sign() } else { 0 }, 0);
        }
        ref_round(f, neg, &m, e0, rm)
    }

    fn ref_add(f: RF, a: u64, b: u64, rm: Rm) -> (u64, u8) {
        let (sa, ma, ea) = dec(f, a);
        let (sb, mb, eb) = dec(f, b);
        ref_sum(
            f,
            sa,
            Big::from_u128(ma),
            ea,
            sb,
            Big::from_u128(mb),
            eb,
            rm,
        )
    }

    fn ref_mul(f: RF, a: u64, b: u64, rm: Rm) -> (u64, u8) {
        let (sa, ma, ea) = dec(f, a);
        let (sb, mb, eb) = dec(f, b);
        let m = Big::from_u128(ma * mb);
        if m.is_zero() {
            return (if sa != sb { f.sign() } else { 0 }, 0);
        }
        ref_round(f, sa != sb, &m, ea + eb, rm)
    }

    fn ref_fma(f: RF, a: u64, b: u64, c: u64, rm: Rm) -> (u64, u8) {
        let (sa, ma, ea) = dec(f, a);
        let (sb, mb, eb) = dec(f, b);
        let (sc, mc, ec) = dec(f, c);
        let prod = Big::from_u128(ma * mb);
        ref_sum(f, sa != sb, prod, ea + eb, sc, Big::from_u128(mc), ec, rm)
    }

    /// a / b for finite a and finite nonzero b.
    fn ref_div(f: RF, a: u64, b: u64, rm: Rm) -> (u64, u8) {
        let (sa, ma, ea) = dec(f, a);
        let (sb, mb, eb) = dec(f, b);
        if ma == 0 {
            return (if sa != sb { f.sign() } else { 0 }, 0);
        }
        let k = 70 + bitlen(mb) - bitlen(ma);
        let n = ma << k;
        let (q, r) = (n / mb, n % mb);
        let m = Big::from_u128((q << 1) | (r != 0) as u128);
        ref_round(f, sa != sb, &m, ea - eb - k - 1, rm)
    }

    fn ref_to_float(f: RF, neg: bool, mag: u64, rm: Rm) -> (u64, u8) {
        if mag == 0 {
            return (0, 0);
        }
        ref_round(f, neg, &Big::from_u128(mag as u128), 0, rm)
    }

    /// Checks a square root result `r` of a positive finite `x` by squaring: r must bracket
    /// sqrt(x) as the mode requires (exact ties are impossible for square roots).
    fn check_sqrt(f: RF, x: u64, rm: Rm, got: (u64, u8)) {
        let (r, flags) = got;
        assert!(
            r & f.sign() == 0 && f.is_finite(r) && r != 0,
            "sqrt {x:#x} {rm:?}: {r:#x}"
        );
        // Values as (Big, exp); comparison of v^2 against x.
        let val = |y: u64| {
            let (_, m, e) = dec(f, y);
            (Big::from_u128(m), e)
        };
        let cmp_sq = |(m, e): (Big, i64)| -> Ordering {
            // (m * 2^e)^2 vs x
            let (mx, ex) = val(x);
            let (m2, e2) = (m.mul(&m), 2 * e);
            let e0 = e2.min(ex);
            m2.shl((e2 - e0) as u64).cmp(&mx.shl((ex - e0) as u64))
        };
        let mid = |lo: u64, hi: u64| -> (Big, i64) {
            let ((ml, el), (mh, eh)) = (val(lo), val(hi));
            let e0 = el.min(eh);
            (
                ml.shl((el - e0) as u64).add(&mh.shl((eh - e0) as u64)),
                e0 - 1,
            )
        };
        let here = cmp_sq(val(r));
        let (pred, succ) = (r - 1, r + 1);
        let ok = match rm {
            Rtz | Rdn => here != Ordering::Greater && cmp_sq(val(succ)) == Ordering::Greater,
            Rup => here != Ordering::Less && cmp_sq(val(pred)) == Ordering::Less,
            Rne | Rmm => {
                cmp_sq(mid(r, succ)) == Ordering::Greater
                    && (pred == 0 || cmp_sq(mid(pred, r)) == Ordering::Less)
            }
        };
        assert!(ok, "sqrt {x:#x} {rm:?}: {r:#x}");
        let want = if here == Ordering::Equal { 0 } else { NX };
        assert_eq!(flags, want, "sqrt {x:#x} {rm:?} flags");
    }

    fn cross_check(f: RF, seed: u64, n: u64) {
        let mut r = Rng(seed);
        let is64 = f.p == 53;
        for _ in 0..n {
            let (a, b) = operand_pair(&mut r, f, true);
            let (fa, fb, fc) = fma_operands(&mut r, f, true);
            let fc = if f.is_finite(fc) { fc } else { 0 };
            for rm in ALL {
                let (add_, sub_, mul_, div_, fma_, sqrt_) = if is64 {
                    (
                        f64_add(a, b, rm),
                        f64_sub(a, b, rm),
                        f64_mul(a, b, rm),
                        f64_div(a, b, rm),
                        f64_madd(fa, fb, fc, rm),
                        f64_sqrt(a & !f.sign(), rm),
                    )
                } else {
                    let w = |x: (u32, u8)| (x.0 as u64, x.1);
                    let (a, b) = (a as u32, b as u32);
                    (
                        w(f32_add(a, b, rm)),
                        w(f32_sub(a, b, rm)),
                        w(f32_mul(a, b, rm)),
                        w(f32_div(a, b, rm)),
                        w(f32_madd(fa as u32, fb as u32, fc as u32, rm)),
                        w(f32_sqrt(a & 0x7fff_ffff, rm)),
                    )
                };
                assert_eq!(add_, ref_add(f, a, b, rm), "add {a:#x} {b:#x} {rm:?}");
                assert_eq!(
                    sub_,
                    ref_add(f, a, b ^ f.sign(), rm),
                    "sub {a:#x} {b:#x} {rm:?}"
                );
                assert_eq!(mul_, ref_mul(f, a, b, rm), "mul {a:#x} {b:#x} {rm:?}");
                if b & !f.sign() != 0 {
                    assert_eq!(div_, ref_div(f, a, b, rm), "div {a:#x} {b:#x} {rm:?}");
                }
                assert_eq!(
                    fma_,
                    ref_fma(f, fa, fb, fc, rm),
                    "fma {fa:#x} {fb:#x} {fc:#x} {rm:?}"
                );
                if a & !f.sign() != 0 {
                    check_sqrt(f, a & !f.sign(), rm, sqrt_);
                }
            }
        }
    }

    #[test]
    fn reference_cross_check_f64() {
        cross_check(RF64, 0x5eed_0004, iterations(20_000));
    }

    #[test]
    fn reference_cross_check_f32() {
        cross_check(RF32, 0x5eed_0005, iterations(20_000));
    }

    #[test]
    fn reference_cross_check_conversions() {
        let mut r = Rng(0x5eed_0006);
        for _ in 0..iterations(20_000) {
            // binary64 -> binary32, with exponents around binary32's range.
            let mut x = gen_op(&mut r, RF64, true);
            if r.coin() {
                let e = 1023 - 160 + r.below(300);
                x = (x & !(0x7ff << 52)) | (e << 52);
            }
            // Integers of all sizes.
            let mag = r.next() >> r.below(64);
            let mag = if r.below(8) == 0 { mag | 1 << 63 } else { mag };
            let neg = r.coin();
            for rm in ALL {
                let (v, fl) = f64_to_f32(x, rm);
                let (s, m, e) = dec(RF64, x);
                let want = if m == 0 {
                    (if s { S32 as u64 } else { 0 }, 0)
                } else {
                    ref_round(RF32, s, &Big::from_u128(m), e, rm)
                };
                assert_eq!((v as u64, fl), want, "f64_to_f32 {x:#x} {rm:?}");
                let y = f64_to_f32(x, Rne).0;
                assert_eq!(f32_to_f64(y), ((f32::from_bits(y) as f64).to_bits(), 0));

                assert_eq!(
                    u64_to_f64(mag, rm),
                    ref_to_float(RF64, false, mag, rm),
                    "{mag}"
                );
                let w = |x: (u32, u8)| (x.0 as u64, x.1);
                assert_eq!(
                    w(u64_to_f32(mag, rm)),
                    ref_to_float(RF32, false, mag, rm),
                    "{mag}"
                );
                let m63 = mag >> 1;
                let i = if neg { -(m63 as i64) } else { m63 as i64 };
                assert_eq!(i64_to_f64(i, rm), ref_to_float(RF64, neg, m63, rm), "{i}");
                assert_eq!(
                    w(i64_to_f32(i, rm)),
                    ref_to_float(RF32, neg, m63, rm),
                    "{i}"
                );
                let m31 = (mag >> 33) as i32;
                let i = if neg { -m31 } else { m31 };
                assert_eq!(
                    w(i32_to_f32(i, rm)),
                    ref_to_float(RF32, neg, m31 as u64, rm)
                );
                assert_eq!(i32_to_f64(i, rm), ref_to_float(RF64, neg, m31 as u64, rm));
                let u = (mag >> 32) as u32;
                assert_eq!(
                    w(u32_to_f32(u, rm)),
                    ref_to_float(RF32, false, u as u64, rm)
                );
                assert_eq!(u32_to_f64(u, rm), ref_to_float(RF64, false, u as u64, rm));
            }
        }
    }

    /// Float to integer against the host's own rounding functions (another independent method).
    fn ref_to_int(x: f64, rm: Rm, min: f64, max_plus_one: f64, max: i128) -> (i128, u8) {
        if x.is_nan() {
            return (max, NV);
        }
        let t = match rm {
            Rne => x.round_ties_even(),
            Rtz => x.trunc(),
            Rdn => x.floor(),
            Rup => x.ceil(),
            Rmm => x.round(),
        };
        if t < min || t >= max_plus_one {
            return (if x < 0.0 { min as i128 } else { max }, NV);
        }
        (t as i128, if t != x { NX } else { 0 })
    }

    #[test]
    fn float_to_int_against_host_rounding() {
        let mut r = Rng(0x5eed_0007);
        let bounds: [(f64, f64, i128); 4] = [
            (-2147483648.0, 2147483648.0, i32::MAX as i128),
            (0.0, 4294967296.0, u32::MAX as i128),
            (
                -9223372036854775808.0,
                9223372036854775808.0,
                i64::MAX as i128,
            ),
            (0.0, 18446744073709551616.0, u64::MAX as i128),
        ];
        for i in 0..iterations(200_000) {
            let x: f64 = match r.below(4) {
                0 => f64::from_bits(gen_op(&mut r, RF64, false)),
                1 => {
                    let (lo, hi, _) = bounds[r.below(4) as usize];
                    let base = if r.coin() { lo } else { hi };
                    let base = if r.coin() { -base } else { base };
                    base + (r.below(9) as f64 - 4.0) * 0.25
                }
                2 => {
                    let (lo, hi, _) = bounds[r.below(4) as usize];
                    let base = if r.coin() { lo } else { hi };
                    let bits = base.to_bits();
                    f64::from_bits(if r.coin() {
                        bits + r.below(3)
                    } else {
                        bits.saturating_sub(r.below(3))
                    })
                }
                _ => (r.below(64) as f64 - 32.0) * 0.25,
            };
            let x = if i % 2 == 0 { x } else { (x as f32) as f64 };
            let a = x.to_bits();
            let a32 = (x as f32).to_bits();
            let x32 = f32::from_bits(a32) as f64;
            for rm in ALL {
                let got64 = [
                    {
                        let (v, f) = f64_to_i32(a, rm);
                        (v as i128, f)
                    },
                    {
                        let (v, f) = f64_to_u32(a, rm);
                        (v as i128, f)
                    },
                    {
                        let (v, f) = f64_to_i64(a, rm);
                        (v as i128, f)
                    },
                    {
                        let (v, f) = f64_to_u64(a, rm);
                        (v as i128, f)
                    },
                ];
                let got32 = [
                    {
                        let (v, f) = f32_to_i32(a32, rm);
                        (v as i128, f)
                    },
                    {
                        let (v, f) = f32_to_u32(a32, rm);
                        (v as i128, f)
                    },
                    {
                        let (v, f) = f32_to_i64(a32, rm);
                        (v as i128, f)
                    },
                    {
                        let (v, f) = f32_to_u64(a32, rm);
                        (v as i128, f)
                    },
                ];
                for (k, &(lo, hi, max)) in bounds.iter().enumerate() {
                    assert_eq!(
                        got64[k],
                        ref_to_int(x, rm, lo, hi, max),
                        "{x:e} {rm:?} #{k}"
                    );
                    assert_eq!(
                        got32[k],
                        ref_to_int(x32, rm, lo, hi, max),
                        "{x32:e}f {rm:?} #{k}"
                    );
                }
            }
        }
    }
}
