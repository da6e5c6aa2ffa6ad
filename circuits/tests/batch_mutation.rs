//! Mutation campaign on a valid batch (an oracle tick in the tick lane, then a trade and a
//! liquidation, `soundness::subjects::tick_trade_liquidate`): single advice cells are
//! overwritten with a random value, ±1, p−1 and values at 2^n bounds, with the public inputs
//! fixed to the native ones. Every mutation must be rejected, unless it hits a free cell: the
//! inverse witness of halo2-base's `is_zero` at a zero input, which does not change the
//! statement proven (the accepted witness proves the same public inputs, so the reference
//! model's batch is unchanged). The campaign runs on the production circuit (`Pow5`) and on
//! `Pow5Msm`, whose signatures go through the `msm` chip; it samples as many Pow5 chip cells
//! (cells a chip gate uses) as context cells, and on `Pow5Msm` as many cells that an msm gate
//! reads. Each test prints "M mutations, R rejected, F free, 0 unexplained".

use collar_circuits::batch::build_batch;
use collar_circuits::msm;
use collar_circuits::poseidon::Hashing;
use collar_circuits::pow5::ChipMutation;
use collar_circuits::soundness::subjects;
use collar_circuits::testing::{MockRun, Mutation};
use collar_protocol::ProtocolParams;
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::halo2_proofs::halo2curves::ff::Field;
use rand::{Rng, SeedableRng};

const K: u32 = 18;

/// The value written for mutation `i` of a cell holding `v`.
fn mutated(i: usize, v: Fr, rng: &mut impl Rng) -> Fr {
    match i % 8 {
        0 => Fr::random(&mut *rng),
        1 => v + Fr::one(),
        2 => v - Fr::one(),
        3 => -Fr::one(),
        4 => Fr::from(2).pow_vartime([64]),
        5 => Fr::from(2).pow_vartime([63]) - Fr::one(),
        6 => Fr::from(2).pow_vartime([40]),
        _ => Fr::from(2).pow_vartime([rng.gen_range(1..250u64)]),
    }
}

/// Mutations a campaign samples from each group of cells (context, Pow5 rows, msm rows).
fn samples() -> usize {
    std::env::var("COLLAR_MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24)
}

/// Runs the campaign on the batch circuit with `hashing`: `samples()` mutations of context
/// cells, as many of the Pow5 rows' gated cells and, with [`Hashing::Pow5Msm`], as many of the
/// multiplication rows' gated cells ([`msm::gated_cells`]); prints the tally and asserts that
/// nothing unexplained was accepted.
fn campaign(hashing: Hashing) {
    let subject = subjects::tick_trade_liquidate(&ProtocolParams::small());
    let w = subject.witness;
    let expected = subject.public.to_vec();
    let run = MockRun::new(K, 16).with_hashing(hashing);
    let base = run.run(
        |ctx, range| {
            let public = build_batch(ctx, range, &w);
            let values: Vec<Fr> = ctx.advice.iter().map(|a| a.evaluate()).collect();
            (values, public)
        },
        None,
        Some(expected.clone()),
    );
    assert!(base.is_satisfied(), "{:?}", base.failures);
    let (region, msm_region) = (base.chip_region, base.msm_region);
    let values = base.output;
    // The value of chip row `row` (hash rows, then multiplication rows), column `column`.
    let chip_value = |row: usize, column: usize| match region.get(row) {
        Some((cells, _)) => cells[column],
        None => msm_region[row - region.len()][column],
    };
    let hash_cells: Vec<(usize, usize)> = region
        .iter()
        .enumerate()
        .flat_map(|(row, (_, kind))| kind.used_columns().iter().map(move |c| (row, *c)))
        .collect();
    assert!(
        !hash_cells.is_empty(),
        "the batch hashes with the Pow5 chip"
    );
    let msm_cells: Vec<(usize, usize)> = (0..msm_region.len() / msm::ROWS)
        .flat_map(|i| {
            let first = region.len() + i * msm::ROWS;
            msm::gated_cells()
                .into_iter()
                .map(move |(row, column)| (first + row, column))
        })
        .collect();
    assert_eq!(
        msm_cells.is_empty(),
        !hashing.msm(),
        "multiplication rows exactly on the msm circuit"
    );

    let samples = samples();
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(0xc011a5);
    let plan: Vec<(usize, Fr)> = (0..samples)
        .map(|i| {
            let offset = rng.gen_range(0..values.len());
            (offset, mutated(i, values[offset], &mut rng))
        })
        .filter(|(o, v)| values[*o] != *v)
        .collect();
    let mut sample_chip = |cells: &[(usize, usize)]| -> Vec<ChipMutation> {
        if cells.is_empty() {
            return Vec::new();
        }
        (0..samples)
            .map(|i| {
                let (row, column) = cells[rng.gen_range(0..cells.len())];
                let value = mutated(i, chip_value(row, column), &mut rng);
                ChipMutation { row, column, value }
            })
            .filter(|m| chip_value(m.row, m.column) != m.value)
            .collect()
    };
    let hash_plan = sample_chip(&hash_cells);
    let msm_plan = sample_chip(&msm_cells);
    let chip_plan: Vec<ChipMutation> = hash_plan.iter().chain(&msm_plan).copied().collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let accepted = std::sync::Mutex::new(Vec::new());
    let chip_accepted = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for t in 0..threads {
            let (plan, chip_plan, w, expected) = (&plan, &chip_plan, &w, &expected);
            let (accepted, chip_accepted) = (&accepted, &chip_accepted);
            scope.spawn(move || {
                for &(offset, value) in plan.iter().skip(t).step_by(threads) {
                    let out = run.run(
                        |ctx, range| ((), build_batch(ctx, range, w)),
                        Some(Mutation { offset, value }),
                        Some(expected.clone()),
                    );
                    if out.is_satisfied() {
                        accepted.lock().unwrap().push(offset);
                    }
                }
                for &m in chip_plan.iter().skip(t).step_by(threads) {
                    let out = run.run_mutating(
                        |ctx, range| ((), build_batch(ctx, range, w)),
                        None,
                        Some(m),
                        Some(expected.clone()),
                    );
                    if out.is_satisfied() {
                        chip_accepted.lock().unwrap().push((m.row, m.column));
                    }
                }
            });
        }
    });
    let accepted = accepted.into_inner().unwrap();
    // A free cell: halo2-base's is_zero lays out [.., x, inv, ..] and sets inv = 1 when x = 0;
    // any inverse then satisfies the gate and the output is unchanged.
    let free = |o: usize| o > 0 && values[o - 1] == Fr::zero() && values[o] == Fr::one();
    let unexplained: Vec<usize> = accepted.iter().copied().filter(|o| !free(*o)).collect();
    let chip_accepted = chip_accepted.into_inner().unwrap();
    println!(
        "{hashing:?}: {} mutations of {} context advice cells, {} rejected, {} accepted at free \
         is_zero inverses, {} unexplained; {} mutations of {} Pow5 chip cells and {} of {} msm \
         chip cells, {} rejected, {} accepted",
        plan.len(),
        values.len(),
        plan.len() - accepted.len(),
        accepted.len() - unexplained.len(),
        unexplained.len(),
        hash_plan.len(),
        hash_cells.len(),
        msm_plan.len(),
        msm_cells.len(),
        chip_plan.len() - chip_accepted.len(),
        chip_accepted.len()
    );
    assert!(
        unexplained.is_empty(),
        "accepted mutations at {unexplained:?}"
    );
    assert!(
        chip_accepted.is_empty(),
        "accepted chip mutations at {chip_accepted:?}"
    );
}

#[test]
fn sampled_mutations_are_rejected_or_free() {
    campaign(Hashing::Pow5);
}

#[test]
fn sampled_mutations_of_the_msm_circuit_are_rejected_or_free() {
    campaign(Hashing::Pow5Msm);
}
