//! The short random-code soak (issue 9): four seeds (M, S, U and S with Sv39) for one second
//! each on the real main loop with QMP; the full run is `bench/soak.sh` (64 seeds x 10 s).
//! The engine is `examples/soak.rs`, included here.

#[path = "../examples/soak.rs"]
mod soak;

use std::time::Duration;

#[test]
fn test_random_code_soak_short() {
    let bound = Duration::from_secs(1);
    for seed in [0, 1, 2, 4] {
        let r = soak::run_seed(seed, 1.0, bound);
        soak::print_report(&r);
        assert!(r.panic.is_none(), "seed {seed}: {:?}", r.panic);
        assert!(r.instret > 0, "seed {seed}: the guest did not run");
        assert!(r.traps > 0, "seed {seed}: random code never trapped");
        assert!(
            r.mismatches.is_empty(),
            "seed {seed}: traps contradict the ISA: {:?}",
            r.mismatches
        );
        assert!(r.qmp_sent > 0, "seed {seed}: no QMP query was sent");
        assert_eq!(
            r.qmp_answered, r.qmp_sent,
            "seed {seed}: QMP did not answer"
        );
        assert!(
            r.qmp_max <= bound,
            "seed {seed}: a query-status answer took {:?}",
            r.qmp_max
        );
    }
}
